package invoice

import (
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
)

func TestZZPhases(t *testing.T) {
	const n = 1_000_000
	f := newFixture(t)
	createPayers(t, f.d, f.t.ID, 2000)
	rows, _, _ := parseAll(bigFile(n, 2000, "M-"))
	setup := func() {
		f.d.MustExec(`DROP TABLE IF EXISTS stg`)
		f.d.MustExec(`CREATE TABLE stg (line integer NOT NULL, number text COLLATE "C" NOT NULL, payer_ref text NOT NULL, object text NOT NULL, issued_on date NOT NULL, due_on date NOT NULL, amount_cents bigint NOT NULL, status text, direct_debit boolean, payment_suspended boolean, pdf_key text, pdf_sha256 text, pdf_size bigint)`)
		tx := f.d.MustBegin()
		stmt, _ := tx.Prepare(pq.CopyIn("stg", "line", "number", "payer_ref", "object", "issued_on", "due_on", "amount_cents"))
		for _, r := range rows {
			stmt.Exec(int64(r.line), r.number, r.payerRef, r.object, r.issuedOn.Format(time.DateOnly), r.dueOn.Format(time.DateOnly), r.amountCents)
		}
		stmt.Exec()
		stmt.Close()
		tx.Commit()
		f.d.MustExec(`ANALYZE stg`)
	}
	setup()
	ins := strings.ReplaceAll(insertNew, "invoice_import_staging", "stg")
	ins = ins[:strings.Index(ins, "RETURNING")]
	try := func(name, pre, q string) {
		tx := f.d.MustBegin()
		tx.MustExec(`SET LOCAL work_mem = '128MB'`)
		if pre != "" {
			tx.MustExec(pre)
		}
		f.d.MustExec(`CHECKPOINT`)
		st := time.Now()
		if _, err := tx.Exec(q, f.t.ID, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", name, time.Since(st))
		tx.Rollback()
	}
	try("plain", "", ins)
	try("order by account", "", strings.Replace(ins, "WHERE NOT EXISTS", "WHERE NOT EXISTS", 1)+" ORDER BY 2, 5")
	try("no list index", "DROP INDEX invoices_account_list", ins)
	try("no fk", "ALTER TABLE invoices DROP CONSTRAINT invoices_tenant_id_account_id_fkey", ins)
	try("no unique", "ALTER TABLE invoices DROP CONSTRAINT invoices_tenant_id_number_key", ins)
	try("plain again", "", ins)
}
