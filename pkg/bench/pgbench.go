package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portail/pkg/auth"
	"portail/pkg/pgcluster"
)

// The SQL each page runs, copied from the stores (account.Sessions.Load,
// account.Service.Get, invoice.Store.Counts/Search/Get, payment.Service
// Verdict/Get, payment.ResolveWS), as pgbench scripts. Each
// transaction first picks a random resident (and invoice) from the bench's
// tables: one indexed read more than the page does.
const (
	pickSession = `\set n random(1, :rows)
SELECT tenant_id AS t, account_id AS a, h FROM bench.sessions WHERE n = :n \gset
`
	pickPage = `\set n random(1, :rows)
SELECT tenant_id AS t, account_id AS a, h, invoice_id AS i FROM bench.pages WHERE n = :n \gset
`
	pickReturn = `\set n random(1, :rows)
SELECT tenant_id AS t, account_id AS a, h, id_op AS op, payment_id AS p FROM bench.returns WHERE n = :n \gset
`
	// loadResident: the session, then the account.
	sqlResident = `SELECT s.account_id, s.created_at, s.last_seen_at, s.flags, a.status
	FROM sessions s JOIN accounts a ON a.tenant_id = s.tenant_id AND a.id = s.account_id
	WHERE s.tenant_id = :t AND s.id_hash = :h;
SELECT tenant_id, id, external_ref, display_name, email, status, paperless,
	paperless_at, invoice_alerts, due_reminders, password_changed_at, created_at, updated_at FROM accounts
	WHERE tenant_id = :t AND id = :a;
`
	invoiceColumns = `tenant_id, id, account_id, number, object, issued_on, due_on, amount_cents,
	status, paid_at, paid_how, direct_debit, payment_suspended, declared_paid_at,
	pdf_key, pdf_sha256, pdf_size, import_batch_id, created_at, updated_at`
	attemptColumns = `p.tenant_id, p.id, p.account_id, p.refdet, coalesce(p.id_op, '') AS id_op, p.mode,
	p.amount_cents, p.email, p.status, p.created_at, p.resolved_at, p.resolved_by, p.resultrans,
	p.numauto, p.dattrans, p.heurtrans, p.paid_at, p.error_message, p.refund_needed, p.refund_cents`
	sqlInvoiceGet = `SELECT ` + invoiceColumns + ` FROM invoices
	WHERE tenant_id = :t AND account_id = :a AND id = :i AND status <> 'cancelled';
`
	scriptHome = pickSession + sqlResident
	// The list's page is invoice.Store.Search with the account and one
	// status set: its empty filters written out as PostgreSQL folds them.
	scriptList = pickSession + sqlResident + `SELECT status, count(*) AS n FROM invoices
	WHERE tenant_id = :t AND account_id = :a AND status <> 'cancelled'
	GROUP BY status;
SELECT count(*) FROM invoices
	WHERE tenant_id = :t AND account_id = :a AND status = ANY ('{unpaid}'::text[]);
SELECT i.tenant_id, i.id, i.account_id, i.number, i.object, i.issued_on, i.due_on, i.amount_cents,
	i.status, i.paid_at, i.paid_how, i.direct_debit, i.payment_suspended, i.declared_paid_at,
	i.pdf_key, i.pdf_sha256, i.pdf_size, i.import_batch_id, i.created_at, i.updated_at,
	a.external_ref AS payer_ref, a.display_name AS payer_name
	FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id
	WHERE i.tenant_id = :t AND i.id IN (
		SELECT i.id FROM invoices i
		WHERE i.tenant_id = :t AND i.account_id = :a AND i.status = 'unpaid'
		ORDER BY i.issued_on DESC, i.id DESC
		LIMIT 20 OFFSET 0)
	ORDER BY i.issued_on DESC, i.id DESC;
`
	scriptDetail = pickPage + sqlResident + sqlInvoiceGet + `SELECT i.tenant_id, i.id, i.account_id, i.number, i.object, i.issued_on,
	i.due_on, i.amount_cents, i.status, i.paid_at, i.paid_how, i.direct_debit, i.payment_suspended, i.declared_paid_at,
	i.pdf_key, i.pdf_sha256, i.pdf_size, i.import_batch_id, i.created_at, i.updated_at,
	EXISTS (SELECT 1 FROM payment_invoices pi
	        WHERE pi.tenant_id = i.tenant_id AND pi.invoice_id = i.id AND pi.status = 'pending') AS pending,
	(SELECT max(p.resolved_at) FROM payment_invoices pi
	 JOIN payments p ON p.tenant_id = pi.tenant_id AND p.id = pi.payment_id
	 WHERE pi.tenant_id = i.tenant_id AND pi.invoice_id = i.id AND p.status IN ('refused', 'cancelled', 'expired', 'error')
	   AND (p.mode = 'classic' OR p.id_op IS NOT NULL)) AS last_failure_at
	FROM invoices i
	WHERE i.tenant_id = :t AND i.account_id = :a AND i.id = ANY (ARRAY[:i]::bigint[])
	ORDER BY i.id;
`
	scriptPDF    = pickPage + sqlResident + sqlInvoiceGet
	scriptReturn = pickReturn + sqlResident + `SELECT ` + attemptColumns + ` FROM payments p
	WHERE p.tenant_id = :t AND p.id_op = :op;
SELECT ` + attemptColumns + ` FROM payments p
	WHERE p.tenant_id = :t AND p.account_id = :a AND p.id = :p;
SELECT pi.payment_id, pi.invoice_id, i.number, i.object, pi.amount_cents
	FROM payment_invoices pi
	JOIN invoices i ON i.tenant_id = pi.tenant_id AND i.id = pi.invoice_id
	WHERE pi.tenant_id = :t AND pi.payment_id = ANY (ARRAY[:p]::bigint[])
	ORDER BY pi.payment_id, i.number;
`
)

// ceiling is the raw database's answer to a scenario's SQL.
type ceiling struct {
	label    string  // what was measured
	rate     float64 // transactions (pages) per second
	avg, p99 time.Duration
}

// pgbench runs script against the bench database with the page
// scenarios' concurrency, over TCP with the extended protocol (as lib/pq).
func (r *run) pgbench(ctx context.Context, name, script, table string) (ceiling, error) {
	bin, err := pgbenchPath()
	if err != nil {
		return ceiling{}, err
	}
	var rows int
	if err := r.db.GetContext(ctx, &rows, `SELECT count(*) FROM bench.`+table); err != nil {
		return ceiling{}, err
	}
	if rows == 0 {
		return ceiling{}, fmt.Errorf("bench: pgbench %s: no rows in bench.%s", name, table)
	}
	file := filepath.Join(r.dir, "pgbench-"+name+".sql")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return ceiling{}, err
	}
	secs := max(1, int(r.o.Duration.Seconds()))
	cctx, cancel := context.WithTimeout(ctx, r.o.Duration+2*time.Minute)
	defer cancel()
	logDir := filepath.Join(r.dir, "pgbench-"+strings.ReplaceAll(name, " ", "-"))
	os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return ceiling{}, err
	}
	cmd := exec.CommandContext(cctx, bin, "-n", "-M", "extended",
		"-c", strconv.Itoa(r.o.Clients), "-j", "2", "-T", strconv.Itoa(secs),
		"-l", "--log-prefix="+filepath.Join(logDir, "tx"),
		"-D", "rows="+strconv.Itoa(rows), "-f", file,
		"-h", "127.0.0.1", "-p", strconv.Itoa(r.pg.Port), "-U", "postgres", r.dbName)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return ceiling{}, fmt.Errorf("bench: pgbench %s: %w\n%s", name, err, out)
	}
	m := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`).FindSubmatch(out)
	l := regexp.MustCompile(`latency average = ([0-9.]+) ms`).FindSubmatch(out)
	if m == nil || l == nil {
		return ceiling{}, fmt.Errorf("bench: pgbench %s: no tps in output:\n%s", name, out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	lat, _ := strconv.ParseFloat(string(l[1]), 64)
	c := ceiling{label: "pgbench, same SQL", rate: tps, avg: time.Duration(lat * 1e6), p99: logP99(logDir)}
	r.progress("pgbench %s: %.0f tps, latency avg %s, p99 %s", name, tps, ms(c.avg), ms(c.p99))
	return c, nil
}

// logP99 reads pgbench's per-transaction logs (third field: latency in µs).
func logP99(dir string) time.Duration {
	files, _ := filepath.Glob(filepath.Join(dir, "tx*"))
	var lat []time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 3 {
				if us, err := strconv.ParseInt(f[2], 10, 64); err == nil {
					lat = append(lat, time.Duration(us)*time.Microsecond)
				}
			}
		}
	}
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*99/100)]
}

// pgbenchPath finds pgbench beside the server binaries (initdb on PATH may
// be a lone symbolic link), then on PATH.
func pgbenchPath() (string, error) {
	var dirs []string
	if d, err := pgcluster.FindBin(); err == nil {
		if real, err := filepath.EvalSymlinks(filepath.Join(d, "initdb")); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "pgbench"); fileExists(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("bench: pgbench not found (Debian package postgresql-contrib or postgresql)")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// argon2Ceiling is how many password verifications per second the machine
// does with the server's concurrency bound: the ceiling of logins.
func (r *run) argon2Ceiling(ctx context.Context, hash string, bound int, d time.Duration) ceiling {
	h := auth.NewHasher(bound)
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range bound {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if ok, _, err := h.Verify(ctx, benchPassword, hash); err == nil && ok {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	rate := float64(n.Load()) / time.Since(start).Seconds()
	r.progress("argon2id: %.0f verifications/s with %d at once", rate, bound)
	return ceiling{label: fmt.Sprintf("argon2id verify, %d at once", bound), rate: rate}
}
