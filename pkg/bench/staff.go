package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"portail/pkg/invoice"
	"portail/pkg/pgcluster"
	"portail/pkg/staff"
)

// The back office's rows (issue 10):
//
//   - staff invoice search on the largest commune: invoice.Store.Search
//     (the query of the staff's "Factures" screen) as staff use it — the
//     first page of the whole commune, a payer's name, an invoice number —
//     timed in this process at the page scenarios' concurrency (bounded by
//     the pool), beside pgbench running the same SQL;
//   - a streamed CSV export through the server process (GET
//     /admin/paiements/export: payment.Service.Each into pkg/csvexport, one
//     line per invoice paid), at exportSmall and exportLarge lines: lines/s
//     and the server's peak RSS, which must stay flat whatever the size.
const (
	exportSmall     = 10_000
	exportLarge     = 100_000
	exportFlatRatio = 1.20 // peak RSS at exportLarge over exportSmall
	staffEmail      = "tresorerie@example.fr"
	staffPassword   = "Trois chats sur le toit du lavoir"
)

// staffSearchResult is the search row.
type staffSearchResult struct {
	slug     string
	invoices int
	clients  int
	m        measure
	ceil     ceiling
}

// exportResult is one export through the server.
type exportResult struct {
	lines   int
	bytes   int64
	elapsed time.Duration
	peakRSS int64
	err     string
}

func (e exportResult) rate() float64 { return float64(e.lines) / max(e.elapsed.Seconds(), 1e-9) }

// staffRows measures the back office's rows on srv and adds them to the
// report.
func (r *run) staffRows(ctx context.Context, srv *server, sd *seeder) error {
	c := sd.communes[0] // the largest: a fifth of every step
	var n int
	if err := r.db.GetContext(ctx, &n, `SELECT count(*) FROM invoices WHERE tenant_id = $1`, c.t.ID); err != nil {
		return err
	}
	search, err := r.staffSearch(ctx, sd, c)
	if err != nil {
		return err
	}
	search.invoices = n
	r.rep.staffSearch = &search

	// The export through the server, as an agent of c.
	if _, err := sd.a.Staff.CreateMember(ctx, c.t, staffEmail, "Agent du banc", staffPassword, staff.RoleAgent); err != nil {
		return fmt.Errorf("bench: staff member: %w", err)
	}
	cl := newClient(1, 10*time.Minute)
	res, body, err := do(ctx, cl, http.MethodPost, srv.url(""), c.host, "/admin/connexion", "",
		url.Values{"email": {staffEmail}, "password": {staffPassword}})
	if err != nil {
		return err
	}
	cookie := ""
	for _, ck := range res.Cookies() {
		if ck.Name == "portail_admin" {
			cookie = ck.Value
		}
	}
	if res.StatusCode != http.StatusSeeOther || cookie == "" {
		return fmt.Errorf("bench: staff login: %d %.300s", res.StatusCode, body)
	}
	for _, size := range []int{exportSmall, exportLarge} {
		if err := r.seedPaidInvoices(ctx, c, size); err != nil {
			return err
		}
		// Once unmeasured (caches, connections), then measured.
		r.export(ctx, cl, srv, c, cookie)
		e := r.export(ctx, cl, srv, c, cookie)
		if e.err == "" && e.lines != size {
			e.err = fmt.Sprintf("%d lines exported, want %d", e.lines, size)
		}
		r.progress("CSV export of %s invoice lines: %s in %s (%.0f lines/s), server peak RSS %s %s",
			num(size), mb(e.bytes), e.elapsed.Round(time.Millisecond), e.rate(), mb(e.peakRSS), e.err)
		r.rep.exports = append(r.rep.exports, e)
	}
	// The attempts were the export's input only: later rows count payments.
	_, err = r.db.ExecContext(ctx, `
		WITH p AS (SELECT tenant_id, id FROM payments WHERE tenant_id = $1 AND refdet LIKE 'BENCHEXP%'),
		pi AS (DELETE FROM payment_invoices x USING p WHERE x.tenant_id = p.tenant_id AND x.payment_id = p.id)
		SELECT 1`, c.t.ID)
	if err == nil {
		_, err = r.db.ExecContext(ctx, `DELETE FROM payments WHERE tenant_id = $1 AND refdet LIKE 'BENCHEXP%'`, c.t.ID)
	}
	return err
}

// staffSearch times invoice.Store.Search on c and runs its SQL in pgbench.
func (r *run) staffSearch(ctx context.Context, sd *seeder, c *commune) (staffSearchResult, error) {
	// The searches staff make: the commune's first page (newest first),
	// unpaid invoices of a payer found by part of their name, and an
	// invoice number's first characters.
	var queries []invoice.Query
	for k := 1; k <= 200; k++ {
		payer := 2 + (k*7919)%max(c.payers-1, 1)
		queries = append(queries,
			invoice.Query{},
			invoice.Query{Payer: fmt.Sprintf("Payeur %d %s", payer, c.slug), Status: []invoice.Status{invoice.StatusUnpaid}},
			invoice.Query{Number: "F" + strconv.Itoa(1+(k*104729)%max(c.next, 1))})
	}
	if _, err := r.db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS bench;
		DROP TABLE IF EXISTS bench.staff_searches;
		CREATE TABLE bench.staff_searches (n int PRIMARY KEY, tenant_id bigint, kind int, payer text, number text)`); err != nil {
		return staffSearchResult{}, err
	}
	for i, q := range queries {
		kind, payer, number := 0, "", ""
		switch {
		case q.Payer != "":
			kind, payer = 1, "%"+q.Payer+"%"
		case q.Number != "":
			kind, number = 2, q.Number+"%"
		}
		if _, err := r.db.ExecContext(ctx, `INSERT INTO bench.staff_searches VALUES ($1, $2, $3, $4, $5)`,
			i+1, c.t.ID, kind, payer, number); err != nil {
			return staffSearchResult{}, err
		}
	}
	if _, err := r.db.ExecContext(ctx, `ANALYZE bench.staff_searches`); err != nil {
		return staffSearchResult{}, err
	}

	// In this process, through the store, at the page scenarios'
	// concurrency within the pool's connections.
	clients := min(r.o.Clients, 8)
	run := func(d time.Duration) ([]time.Duration, int, time.Duration) {
		var mu sync.Mutex
		var lat []time.Duration
		errs := 0
		deadline := time.Now().Add(d)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range clients {
			wg.Go(func() {
				for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i += clients {
					q := queries[i%len(queries)]
					q.Page, q.PerPage = 1, 25
					t := time.Now()
					_, _, err := sd.a.Invoices.Search(ctx, c.t.ID, q)
					el := time.Since(t)
					mu.Lock()
					lat = append(lat, el)
					if err != nil {
						errs++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return lat, errs, time.Since(start)
	}
	if r.o.Warmup > 0 {
		run(r.o.Warmup)
	}
	r.progress("staff invoice search on %s: %d clients in process, %s …", c.slug, clients, r.o.Duration)
	lat, errs, elapsed := run(r.o.Duration)
	m := measure{requests: len(lat), errors: errs}
	if len(lat) > 0 {
		slices.Sort(lat)
		m.p50, m.p99, m.max = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]
	}
	m.rps = float64(len(lat)-errs) / elapsed.Seconds()
	r.progress("staff invoice search: %.0f searches/s, p50 %s, p99 %s, %d errors", m.rps, ms(m.p50), ms(m.p99), errs)
	saved := r.o.Clients
	r.o.Clients = clients
	ceil, err := r.pgbench(ctx, "staff search", scriptStaffSearch, "staff_searches")
	r.o.Clients = saved
	if err != nil {
		return staffSearchResult{}, err
	}
	return staffSearchResult{slug: c.slug, clients: clients, m: m, ceil: ceil}, nil
}

// scriptStaffSearch is invoice.Store.Search of the three kinds of
// search, its empty filters written out as PostgreSQL folds them: the
// count, then the page's ids and rows (25 a page).
const scriptStaffSearch = `\set n random(1, :rows)
SELECT tenant_id AS t, kind, payer, number FROM bench.staff_searches WHERE n = :n \gset
SELECT count(*) FROM invoices i
	WHERE i.tenant_id = :t
	AND (:kind <> 1 OR (i.status = 'unpaid' AND i.account_id = ANY (ARRAY(SELECT pa.id FROM accounts pa
		WHERE pa.tenant_id = :t
		  AND portail_fold(pa.external_ref || ' ' || pa.display_name || ' ' || pa.email) LIKE portail_fold(:payer)))))
	AND (:kind <> 2 OR i.number LIKE :number);
SELECT i.tenant_id, i.id, i.account_id, i.number, i.object, i.issued_on, i.due_on, i.amount_cents,
	i.status, i.paid_at, i.paid_how, i.direct_debit, i.payment_suspended, i.declared_paid_at,
	i.pdf_key, i.pdf_sha256, i.pdf_size, i.import_batch_id, i.created_at, i.updated_at,
	a.external_ref AS payer_ref, a.display_name AS payer_name
	FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id
	WHERE i.tenant_id = :t AND i.id IN (
		SELECT i.id FROM invoices i
		WHERE i.tenant_id = :t
		AND (:kind <> 1 OR (i.status = 'unpaid' AND i.account_id = ANY (ARRAY(SELECT pa.id FROM accounts pa
			WHERE pa.tenant_id = :t
			  AND portail_fold(pa.external_ref || ' ' || pa.display_name || ' ' || pa.email) LIKE portail_fold(:payer)))))
		AND (:kind <> 2 OR i.number LIKE :number)
		ORDER BY i.issued_on DESC, i.id DESC
		LIMIT 25 OFFSET 0)
	ORDER BY i.issued_on DESC, i.id DESC;
`

// seedPaidInvoices makes the first n "other" invoices of c paid online,
// one attempt each (written directly: the export's input, not a payment
// flow under test).
func (r *run) seedPaidInvoices(ctx context.Context, c *commune, n int) error {
	_, err := r.db.ExecContext(ctx, `
		WITH inv AS (
			SELECT i.tenant_id, i.id, i.account_id, i.amount_cents FROM invoices i
			WHERE i.tenant_id = $1 AND i.number LIKE 'F%'
			  AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.tenant_id = i.tenant_id AND p.refdet = 'BENCHEXP' || i.id)
			ORDER BY i.id LIMIT $2 - (SELECT count(*) FROM payments WHERE tenant_id = $1 AND refdet LIKE 'BENCHEXP%')),
		ins AS (
			INSERT INTO payments (tenant_id, account_id, refdet, id_op, mode, amount_cents, email, status, created_at,
				resolved_at, resolved_by, resultrans, numauto, dattrans, heurtrans, paid_at)
			SELECT tenant_id, account_id, 'BENCHEXP' || id, 'exp-' || id, 'ws', amount_cents, 'banc@example.fr', 'paid', now(),
				now(), 'notification', 'P', '123456', to_char(now() AT TIME ZONE 'Europe/Paris', 'DDMMYYYY'),
				to_char(now() AT TIME ZONE 'Europe/Paris', 'HH24MI'), now()
			FROM inv
			RETURNING tenant_id, id, refdet)
		INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents, status)
		SELECT ins.tenant_id, ins.id, inv.id, inv.amount_cents, 'paid' FROM ins JOIN inv ON ins.refdet = 'BENCHEXP' || inv.id`, c.t.ID, n)
	if err != nil {
		return fmt.Errorf("bench: paid invoices for the export: %w", err)
	}
	_, err = r.db.ExecContext(ctx, `ANALYZE payments, payment_invoices`)
	return err
}

// export downloads the payments CSV of c's bench attempts from srv,
// counting its lines as they stream, with the server's peak RSS.
func (r *run) export(ctx context.Context, cl *http.Client, srv *server, c *commune, cookie string) exportResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.url("/admin/paiements/export"), nil)
	if err != nil {
		return exportResult{err: err.Error()}
	}
	req.Host = c.host
	req.Header.Set("Cookie", "portail_admin="+cookie)
	w := watchRSS(srv)
	start := time.Now()
	res, err := cl.Do(req)
	var e exportResult
	if err == nil {
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(res.Body, 300))
			e.err = fmt.Sprintf("HTTP %d %s", res.StatusCode, b)
		} else {
			br := bufio.NewReaderSize(res.Body, 64<<10)
			for {
				line, rerr := br.ReadSlice('\n')
				e.bytes += int64(len(line))
				if bytes.Contains(line, []byte("BENCHEXP")) {
					e.lines++
				}
				if rerr == bufio.ErrBufferFull {
					continue
				}
				if rerr != nil {
					if rerr != io.EOF {
						e.err = rerr.Error()
					}
					break
				}
			}
		}
	} else {
		e.err = err.Error()
	}
	e.elapsed = time.Since(start)
	e.peakRSS = w.peak()
	return e
}

// printStaff writes the back office's rows.
func (rep *report) printStaff(w io.Writer) {
	if s := rep.staffSearch; s != nil {
		m := s.m
		fmt.Fprintf(w, "%-14s %-27s %7d %8.0f %8s %8s %7d %9s %18s │ %-27s %8.0f %8s %6.2f │ %-27s %s\n",
			"staff search", clip(fmt.Sprintf("Search, %s (%s inv.)", s.slug, short(s.invoices)), 27), s.clients, m.rps, ms(m.p50), ms(m.p99), m.errors,
			"in-proc.", "", clip(s.ceil.label, 27), s.ceil.rate, ms(s.ceil.p99), m.rps/max(s.ceil.rate, 1e-9), "(beside pgbench)", verdict(m.errors == 0))
	}
	if len(rep.exports) == 2 {
		small, large := rep.exports[0], rep.exports[1]
		for i, e := range rep.exports {
			what := fmt.Sprintf("  %s lines, %s in %s", num([]int{exportSmall, exportLarge}[i]), mb(e.bytes), e.elapsed.Round(time.Millisecond))
			if e.err != "" {
				what = "  " + e.err
			}
			fmt.Fprintf(w, "%-14s %-27s %7s %8.0f %-55s │ %-27s %8s %8s %6s │ %-27s %s\n",
				"CSV export", "GET /admin/paiements/export", "lines/s", e.rate(), clip(what, 55),
				"server peak RSS", mb(e.peakRSS), "", "", "RSS ≤ 150 MB", verdict(e.err == "" && e.peakRSS > 0 && e.peakRSS <= targetRSS))
		}
		ratio := float64(large.peakRSS) / float64(max(small.peakRSS, 1))
		fmt.Fprintf(w, "%-14s %-27s %7s %8s %-55s │ %-27s %8s %8s %6.2f │ %-27s %s\n",
			"flat memory", "export RSS, by lines", "", "",
			fmt.Sprintf("  %s: %s → %s: %s", short(exportSmall), mb(small.peakRSS), short(exportLarge), mb(large.peakRSS)),
			"", "", "", ratio, "ratio ≤ 1.20", verdict(small.err == "" && large.err == "" && ratio <= exportFlatRatio))
	}
}

// onlyStaff is a run of the back office's rows alone (--only staff): the
// data at --invoices, one server, the rows.
func (r *run) onlyStaff(ctx context.Context, sd *seeder) error {
	if err := sd.grow(ctx, r.o.Invoices); err != nil {
		return err
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return err
	}
	srv, err := r.startServer(ctx, "server", port, port)
	if err != nil {
		return err
	}
	defer srv.stop()
	_, idle := srv.memory()
	r.rep.idleRSS = idle
	r.progress("server pid %d (RSS %s)", srv.pid(), mb(idle))
	return r.staffRows(ctx, srv, sd)
}
