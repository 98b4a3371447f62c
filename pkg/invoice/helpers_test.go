package invoice

import (
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"portail/pkg/dbtest"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type fixture struct {
	d     *sqlx.DB
	t     *tenant.Tenant
	store *Store
	ctx   context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	d := dbtest.New(t)
	return fixtureOn(t, d, "sistec")
}

func fixtureOn(t testing.TB, d *sqlx.DB, slug string) *fixture {
	t.Helper()
	f := &fixture{d: d, ctx: context.Background(), store: &Store{DB: d}}
	var id int64
	err := d.Get(&id, `
		INSERT INTO tenants (slug, name, service_label, primary_host, payfip_numcli)
		VALUES ($1, 'MAIRIE DE ' || upper($1), 'Facturation Restauration scolaire', $1 || '.localhost', '004200')
		RETURNING id`, slug)
	if err != nil {
		t.Fatal(err)
	}
	if f.t, err = tenant.NewStore(d).ByID(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return f
}

// account creates an active payer.
func (f *fixture) account(t testing.TB, ref, name string) int64 {
	t.Helper()
	var id int64
	err := f.d.Get(&id, `
		INSERT INTO accounts (tenant_id, external_ref, display_name, email, status)
		VALUES ($1, $2, $3, $4, 'active') RETURNING id`, f.t.ID, ref, name, strings.ToLower(ref)+"@example.fr")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

const header = "Numéro;Référence redevable;Objet;Date;Echeance;Montant\n"

const manualLine = "2017-020-002059;SISTEC560;Multi Services;10/07/2017;21/07/2017;243,11"

func csvOf(lines ...string) string {
	return header + strings.Join(lines, "\n") + "\n"
}

// seed inserts the invoices of a small CSV (number, payer, object, date,
// due date, amount and an optional status word) straight into the table:
// these tests are about the queries; the import has its own (pkg/imports).
func (f *fixture) seed(t testing.TB, text string) {
	t.Helper()
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	words := map[string]Status{"": StatusUnpaid, "non réglée": StatusUnpaid, "réglée": StatusPaid,
		"trésorerie": StatusTreasury, "annulée": StatusCancelled}
	for _, row := range rows[1:] {
		issued, err1 := ParseDate(row[3])
		due, err2 := ParseDate(row[4])
		cents, err3 := ParseAmount(row[5])
		status := StatusUnpaid
		if len(row) > 6 {
			status = words[row[6]]
		}
		if err1 != nil || err2 != nil || err3 != nil || status == "" {
			t.Fatalf("seed line %v", row)
		}
		_, err := f.d.Exec(`
			INSERT INTO invoices (tenant_id, account_id, number, object, issued_on, due_on, amount_cents, status, paid_at, paid_how)
			SELECT $1, a.id, $3, $4, $5, $6, $7, $8, CASE WHEN $8 = 'paid' THEN now() END, CASE WHEN $8 = 'paid' THEN 'elsewhere' ELSE '' END
			FROM accounts a WHERE a.tenant_id = $1 AND a.external_ref = $2`,
			f.t.ID, row[1], row[0], row[2], issued, due, cents, status)
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) invoiceByNumber(t testing.TB, number string) Invoice {
	t.Helper()
	var inv Invoice
	if err := f.d.Get(&inv, `SELECT `+invoiceColumns+` FROM invoices WHERE tenant_id = $1 AND number = $2`, f.t.ID, number); err != nil {
		t.Fatalf("invoice %s: %v", number, err)
	}
	return inv
}
