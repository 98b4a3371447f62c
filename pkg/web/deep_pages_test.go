package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// pageBuffers fetches path as the resident and returns the status, and the
// PostgreSQL buffers (pages of tables and indexes, from the cache or the
// disk) that the page's reads of invoices and payments touched: each such
// statement the portal ran is run again under EXPLAIN (ANALYZE, BUFFERS).
// A count of work done, not a time: it does not depend on the machine.
func (b *bigResident) pageBuffers(t *testing.T, path string) (int, int64) {
	t.Helper()
	b.counter.Reset()
	res, _ := fetch(t, b.c, b.e.URL("sistec.localhost", path))
	var total int64
	for _, st := range b.counter.Statements() {
		q := strings.TrimSpace(st.Query)
		if !strings.HasPrefix(strings.ToUpper(q), "SELECT") || strings.Contains(q, "river_") || strings.Contains(q, "FOR UPDATE") ||
			!(strings.Contains(q, "invoices") || strings.Contains(q, "payments")) {
			continue
		}
		var raw string
		if err := b.e.App.DB.QueryRow("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+q, st.Args...).Scan(&raw); err != nil {
			t.Fatalf("%s: EXPLAIN of\n%s\n%v", path, q, err)
		}
		var plans []struct {
			Plan struct {
				Hit  int64 `json:"Shared Hit Blocks"`
				Read int64 `json:"Shared Read Blocks"`
			} `json:"Plan"`
		}
		if err := json.Unmarshal([]byte(raw), &plans); err != nil || len(plans) != 1 {
			t.Fatalf("EXPLAIN output: %v\n%s", err, raw)
		}
		total += plans[0].Plan.Hit + plans[0].Plan.Read // the top node counts its children's
	}
	return res.StatusCode, total
}

// F3 of the probe after issue 9: a resident with 30,000 unpaid invoices
// (and as many past payment attempts) asked for deep pages of the payment
// selection: each cost a read of every invoice before the page, with its
// attempts (0.5–1 s at page 1500; four looping clients slowed every other
// resident). A page's cost must not grow with its number: the rows before
// it are skipped in an index, and only the page's rows are read. Checked on
// the three paginated lists, the last page and past the end against the
// first, by the buffers PostgreSQL touched.
func TestDeepPagesCostWhatTheFirstDoes(t *testing.T) {
	const n = 30000
	b := newResidentWith(t, n)
	// As many abandoned attempts, one per invoice, long over (no retry
	// delay): "Mes paiements" has 1,500 pages and every invoice an attempt
	// the selection page looks at. Their dates are shuffled against the
	// order they are stored in, as other residents' attempts interleave
	// with one resident's in a real table.
	d := b.e.App.DB
	if _, err := d.Exec(`
		WITH p AS (
			INSERT INTO payments (tenant_id, account_id, refdet, id_op, mode, amount_cents, email, status,
				created_at, resolved_at, resolved_by, resultrans)
			SELECT $1, $2, 'DEEP' || lpad(g::text, 6, '0'), 'op-' || g, 'ws', 1000 + g, 'demo@demo.fr', 'cancelled',
				timestamptz '2016-01-01 10:00+01' + (g * 7919 % $3) * interval '1 minute',
				timestamptz '2016-01-01 10:05+01' + (g * 7919 % $3) * interval '1 minute', 'notification', 'A'
			FROM generate_series(1, $3::int) g
			RETURNING id, amount_cents, refdet
		)
		INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents, status)
		SELECT $1, p.id, i.id, p.amount_cents, 'cancelled'
		FROM p JOIN invoices i ON i.tenant_id = $1 AND i.number = 'G-' || right(p.refdet, 5)`, b.tenant, b.account, n); err != nil {
		t.Fatal(err)
	}
	// What autovacuum does after such an import: statistics and the
	// visibility map, which lets index-only scans skip the table. A page
	// is marked all-visible only once no transaction could still miss its
	// rows: River's pollers run meanwhile, hence the retries.
	for _, table := range []string{"invoices", "payments", "payment_invoices"} {
		for try := 0; ; try++ {
			if _, err := d.Exec(`VACUUM (ANALYZE) ` + table); err != nil {
				t.Fatal(err)
			}
			var pages, visible int
			if err := d.QueryRow(`SELECT relpages, relallvisible FROM pg_class WHERE oid = $1::regclass`, table).Scan(&pages, &visible); err != nil {
				t.Fatal(err)
			}
			if visible >= pages*9/10 {
				break
			}
			if try == 50 {
				t.Fatalf("%s: %d pages of %d all-visible after VACUUM", table, visible, pages)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	for _, list := range []struct {
		name                string
		first, last, beyond string
	}{
		{"payment selection", "/paiement", "/paiement?page=1501", "/paiement?page=999999"},
		{"Mes factures", "/factures?statut=non-reglees", "/factures?statut=non-reglees&page=1501", "/factures?statut=non-reglees&page=999999"},
		{"Mes paiements", "/paiements", "/paiements?page=1500", "/paiements?page=999999"},
	} {
		status, first := b.pageBuffers(t, list.first)
		if status != http.StatusOK || first == 0 {
			t.Fatalf("%s, first page: %d, %d buffers", list.name, status, first)
		}
		for _, deep := range []string{list.last, list.beyond} {
			status, cost := b.pageBuffers(t, deep)
			t.Logf("%s: %d buffers on the first page, %d on %s", list.name, first, cost, deep)
			if status != http.StatusOK {
				t.Fatalf("%s: %d", deep, status)
			}
			// Skipping 30,000 index entries reads a few hundred index
			// pages; reading 30,000 rows and their attempts, tens of
			// thousands of buffers.
			if cost > 3*first {
				t.Errorf("%s: %s touched %d buffers, the first page %d: a page's cost grows with its number", list.name, deep, cost, first)
			}
		}
	}
}
