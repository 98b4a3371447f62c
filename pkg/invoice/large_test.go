package invoice

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/db"
	"portail/pkg/dbtest"
)

// bigFile writes an invoice file of n lines spread over payers P1…Ppayers.
func bigFile(n, payers int, prefix string) []byte {
	var b bytes.Buffer
	b.Grow(n * 64)
	b.WriteString("numero;reference;objet;date;echeance;montant\n")
	line := make([]byte, 0, 128)
	for i := range n {
		line = append(line[:0], prefix...)
		line = strconv.AppendInt(line, int64(i), 10)
		line = append(line, ";P"...)
		line = strconv.AppendInt(line, int64(i%payers+1), 10)
		line = append(line, ";Restauration scolaire;"...)
		day := i%28 + 1
		if day < 10 {
			line = append(line, '0')
		}
		line = strconv.AppendInt(line, int64(day), 10)
		line = append(line, "/07/2017;31/07/2017;"...)
		line = strconv.AppendInt(line, int64(i%50000+100), 10)
		line = append(line, ",11\n"...)
		b.Write(line)
	}
	return b.Bytes()
}

func createPayers(t testing.TB, d *sqlx.DB, tenantID int64, n int) {
	t.Helper()
	_, err := d.Exec(`
		INSERT INTO accounts (tenant_id, external_ref, display_name, email, status)
		SELECT $1, 'P' || g, 'Payeur ' || g, 'p' || g || '@example.fr', 'active'
		FROM generate_series(1, $2) g`, tenantID, n)
	if err != nil {
		t.Fatal(err)
	}
}

// A million lines: imported in one go, fast; then refused whole when over
// the limit. Not skipped in -short: the limit and the speed are features.
func TestImportMillionLines(t *testing.T) {
	const n = 1_000_000
	f := newFixture(t)
	createPayers(t, f.d, f.t.ID, 2000)
	file := bigFile(n, 2000, "M-")

	start := time.Now()
	rep, err := f.im.Import(f.ctx, f.t, bytes.NewReader(file), nil, ImportOptions{Filename: "million.csv"})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("%v %+v", err, rep)
	}
	t.Logf("imported %d lines (%d MB) in %v: %.0f lines/s", n, len(file)>>20, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if rep.Inserted != n || rep.Lines != n || rep.Alerts != 2000 {
		t.Fatalf("report %+v", rep)
	}
	if got := count(t, f.d, `SELECT count(*) FROM invoices WHERE tenant_id = $1`, f.t.ID); got != n {
		t.Fatalf("%d invoices", got)
	}

	// The resident's list uses its index however large the table.
	if _, err := f.d.Exec(`ANALYZE invoices`); err != nil {
		t.Fatal(err)
	}
	var plan []string
	if err := f.d.Select(&plan, `EXPLAIN SELECT * FROM invoices WHERE tenant_id = $1 AND account_id = $2 AND status = ANY ('{unpaid}')
		ORDER BY issued_on DESC, id DESC LIMIT 20 OFFSET 20`, f.t.ID, 7); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "invoices_account_list") {
		t.Fatalf("list plan without the index:\n%s", strings.Join(plan, "\n"))
	}
	store := &Store{DB: f.d}
	var acc int64
	f.d.Get(&acc, `SELECT id FROM accounts WHERE tenant_id = $1 AND external_ref = 'P7'`, f.t.ID)
	qs := time.Now()
	list, total, err := store.List(f.ctx, f.t.ID, acc, Filter{Status: StatusUnpaid}, 3, 20)
	if err != nil || total != n/2000 || len(list) != 20 {
		t.Fatalf("List: %d %d %v", total, len(list), err)
	}
	t.Logf("List page 3 of an account among %d invoices: %v", n, time.Since(qs).Round(time.Microsecond))

	state := func() string {
		var s string
		f.d.Get(&s, `SELECT count(*) || '/' || sum(amount_cents) || '/' || max(updated_at) FROM invoices`)
		return s + "/" + strconv.Itoa(count(t, f.d, `SELECT count(*) FROM import_batches WHERE status = 'imported'`))
	}
	before := state()

	// The same file again: recognised by its hash.
	start = time.Now()
	again, err := f.im.Import(f.ctx, f.t, bytes.NewReader(file), nil, ImportOptions{})
	if err != nil || !again.AlreadyImported {
		t.Fatalf("again: %v %+v", err, again)
	}
	t.Logf("same file again: %v", time.Since(start).Round(time.Millisecond))

	// Over the limit: refused at once, nothing changed.
	f.im.MaxLines = n - 1
	start = time.Now()
	over, err := f.im.Import(f.ctx, f.t, bytes.NewReader(bigFile(n, 2000, "O-")), nil, ImportOptions{})
	if !errors.Is(err, ErrRejected) || len(over.Errors) != 1 || !strings.Contains(over.Errors[0].Reason, "plus de 999999 lignes") {
		t.Fatalf("over the limit: %v %+v", err, over.Errors)
	}
	t.Logf("%d lines over a limit of %d refused in %v", n, n-1, time.Since(start).Round(time.Millisecond))
	if state() != before {
		t.Fatal("a refused file changed invoices")
	}
}

// PostgreSQL killed in the middle of an import, at two stages; the same
// import run again after the restart leaves every line exactly once.
func TestImportSurvivesPostgresCrash(t *testing.T) {
	cluster := dbtest.Cluster(t)
	if cluster == nil {
		t.Skip("PORTAIL_TEST_DATABASE_URL is set: the shared server cannot be killed")
	}
	ctx := context.Background()
	url := dbtest.NewURL(t)
	open := func() *sqlx.DB {
		d, err := db.Open(ctx, url, 10)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	f := fixtureOn(t, d, "sistec")
	const n = 200_000
	createPayers(t, d, f.t.ID, 500)
	file := bigFile(n, 500, "K-")
	// The test cluster runs with synchronous_commit=off: make the setup
	// durable, or the kill could take it away along with the import.
	if _, err := d.Exec(`CHECKPOINT`); err != nil {
		t.Fatal(err)
	}

	for _, stage := range []string{"copy", "merged", "commit"} {
		var once sync.Once
		kill := func() {
			once.Do(func() {
				if err := cluster.Kill(); err != nil {
					t.Errorf("kill: %v", err)
				}
			})
		}
		im := *f.im
		opts := ImportOptions{}
		if stage == "copy" {
			opts.Progress = func(done, total int) {
				if done >= n/2 {
					kill()
				}
			}
		} else {
			im.hook = func(s string) {
				if s == stage {
					kill()
				}
			}
		}
		rep, err := im.Import(ctx, f.t, bytes.NewReader(file), nil, opts)
		if err == nil || errors.Is(err, ErrRejected) {
			t.Fatalf("%s: import survived the kill: %v %+v", stage, err, rep)
		}
		t.Logf("killed at %s: %v", stage, err)
		d.Close()
		if err := cluster.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		d = open()
		f.d, f.im.DB = d, d
		if got := count(t, d, `SELECT count(*) FROM invoices`); got != 0 {
			t.Fatalf("%s: %d invoices after the crash", stage, got)
		}
		if got := count(t, d, `SELECT count(*) FROM import_batches`); got != 0 {
			t.Fatalf("%s: %d batches after the crash", stage, got)
		}
	}
	defer d.Close()
	rep, err := f.im.Import(ctx, f.t, bytes.NewReader(file), nil, ImportOptions{})
	if err != nil || rep.Inserted != n {
		t.Fatalf("re-run: %v %+v", err, rep)
	}
	if got := count(t, d, `SELECT count(DISTINCT number) FROM invoices WHERE number LIKE 'K-%'`); got != n {
		t.Fatalf("%d distinct invoices", got)
	}
	if got := count(t, d, `SELECT count(*) FROM invoices`); got != n {
		t.Fatalf("%d invoices", got)
	}
	if again, err := f.im.Import(ctx, f.t, bytes.NewReader(file), nil, ImportOptions{}); err != nil || !again.AlreadyImported {
		t.Fatalf("third run: %v %+v", err, again)
	}
}

// BenchmarkImport imports files of 200,000 lines into fresh tenants and
// reports lines/s; the raw_copy sub-benchmark COPYs the same, already
// parsed rows into a table shaped like invoices (same indexes and checks,
// no foreign key): the ceiling to compare with.
func BenchmarkImport(b *testing.B) {
	const n = 200_000
	d := dbtest.New(b)
	file := bigFile(n, 1000, "B-")
	b.Run("import", func(b *testing.B) {
		var total time.Duration
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			f := fixtureOn(b, d, "bench"+strconv.Itoa(i))
			createPayers(b, d, f.t.ID, 1000)
			b.StartTimer()
			start := time.Now()
			rep, err := f.im.Import(context.Background(), f.t, bytes.NewReader(file), nil, ImportOptions{})
			total += time.Since(start)
			if err != nil || rep.Inserted != n {
				b.Fatalf("%v %+v", err, rep)
			}
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "lines/s")
	})
	b.Run("raw_copy", func(b *testing.B) {
		rows, _, problem := parseAll(file)
		if problem != "" {
			b.Fatal(problem)
		}
		var total time.Duration
		for b.Loop() {
			start := time.Now()
			err := db.InTx(context.Background(), d, func(tx *sqlx.Tx) error {
				if _, err := tx.Exec(`CREATE TEMP TABLE raw_copy (LIKE invoices INCLUDING ALL) ON COMMIT DROP`); err != nil {
					return err
				}
				stmt, err := tx.Prepare(pq.CopyIn("raw_copy", "tenant_id", "account_id", "number", "object", "issued_on", "due_on", "amount_cents"))
				if err != nil {
					return err
				}
				for i, r := range rows {
					if _, err := stmt.Exec(int64(1), int64(i%1000+1), r.number, r.object,
						r.issuedOn.Format(time.DateOnly), r.dueOn.Format(time.DateOnly), r.amountCents); err != nil {
						return err
					}
				}
				if _, err := stmt.Exec(); err != nil {
					return err
				}
				return stmt.Close()
			})
			total += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "lines/s")
	})
}
