package payment

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/dbtest"
)

// searchFixture writes attempts straight into the tables: these tests are
// about the queries (the state machine has its own).
type searchFixture struct {
	t  *testing.T
	d  *sqlx.DB
	s  *Service
	tn int64
}

func newSearchFixture(t *testing.T, d *sqlx.DB, slug string) *searchFixture {
	t.Helper()
	f := &searchFixture{t: t, d: d, s: &Service{DB: d}}
	if err := d.Get(&f.tn, `INSERT INTO tenants (slug, name, primary_host, payfip_numcli)
		VALUES ($1, $1, $1 || '.example.fr', '123456') RETURNING id`, slug); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *searchFixture) payer(ref, name string) int64 {
	f.t.Helper()
	var id int64
	if err := f.d.Get(&id, `INSERT INTO accounts (tenant_id, external_ref, display_name, email, status)
		VALUES ($1, $2, $3, lower($2) || '@example.fr', 'active') RETURNING id`, f.tn, ref, name); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// attempt stores an attempt of account over invoices (numbers, created if
// needed) at created, with status.
func (f *searchFixture) attempt(account int64, refdet, idop string, status Status, cents int64, created time.Time, numbers ...string) int64 {
	f.t.Helper()
	var id int64
	resolved, by, paid := any(nil), "", any(nil)
	if status != StatusPending {
		resolved, by = created.Add(time.Minute), SourceNotification
	}
	if status == StatusPaid {
		paid = created.Add(time.Minute)
	}
	op := any(nil)
	if idop != "" {
		op = idop
	}
	if err := f.d.Get(&id, `INSERT INTO payments (tenant_id, account_id, refdet, id_op, mode, amount_cents, email, status,
			created_at, resolved_at, resolved_by, paid_at)
		VALUES ($1, $2, $3, $4, 'ws', $5, 'x@example.fr', $6, $7, $8, $9, $10) RETURNING id`,
		f.tn, account, refdet, op, cents, status, created, resolved, by, paid); err != nil {
		f.t.Fatal(err)
	}
	for _, n := range numbers {
		var inv int64
		if err := f.d.Get(&inv, `INSERT INTO invoices (tenant_id, account_id, number, issued_on, due_on, amount_cents)
			VALUES ($1, $2, $3, '2017-01-01', '2017-02-01', $4)
			ON CONFLICT (tenant_id, number) DO UPDATE SET number = EXCLUDED.number RETURNING id`, f.tn, account, n, cents); err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.d.Exec(`INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents, status)
			VALUES ($1, $2, $3, $4, $5)`, f.tn, id, inv, cents, status); err != nil {
			f.t.Fatal(err)
		}
	}
	return id
}

func refdets(rows []Row) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, r.RefDet)
	}
	return out
}

func TestSearchAttemptsAcrossTheCommune(t *testing.T) {
	d := dbtest.New(t)
	f := newSearchFixture(t, d, "sistec")
	other := newSearchFixture(t, d, "autre")
	helene, jean := f.payer("SISTEC560", "Hélène DUPONT"), f.payer("SISTEC561", "Jean Martin")
	day := func(n int) time.Time { return time.Date(2026, 11, n, 10, 0, 0, 0, time.UTC) }
	f.attempt(helene, "REFDET000001", "OP-1", StatusPaid, 1000, day(1), "F-1")
	f.attempt(helene, "REFDET000002", "OP-2", StatusRefused, 2000, day(2), "F-2", "F-3")
	f.attempt(jean, "REFDET000003", "", StatusPending, 3000, day(3), "F-4")
	f.attempt(jean, "REFDET000004", "OP-4", StatusPaid, 4000, day(4), "F-2")
	other.attempt(other.payer("SISTEC560", "Hélène DUPONT"), "REFDET000001", "OP-1", StatusPaid, 1000, day(1), "F-1")
	for _, c := range []struct {
		name string
		q    Query
		want []string
	}{
		{"everything, most recent first", Query{}, []string{"REFDET000004", "REFDET000003", "REFDET000002", "REFDET000001"}},
		{"one payer", Query{AccountID: helene}, []string{"REFDET000002", "REFDET000001"}},
		{"statuses", Query{Status: []Status{StatusPaid}}, []string{"REFDET000004", "REFDET000001"}},
		{"dates: From included, To excluded", Query{From: day(2), To: day(4)}, []string{"REFDET000003", "REFDET000002"}},
		{"amounts", Query{AmountMin: 2000, AmountMax: 3000}, []string{"REFDET000003", "REFDET000002"}},
		{"an invoice paid twice", Query{InvoiceNumber: "F-2"}, []string{"REFDET000004", "REFDET000002"}},
		{"payer, accents and case aside", Query{Payer: "helene"}, []string{"REFDET000002", "REFDET000001"}},
		{"refdet", Query{Reference: "REFDET000003"}, []string{"REFDET000003"}},
		{"idOp", Query{Reference: "OP-4"}, []string{"REFDET000004"}},
		{"by amount", Query{Sort: "amount"}, []string{"REFDET000001", "REFDET000002", "REFDET000003", "REFDET000004"}},
	} {
		rows, total, err := f.s.Search(context.Background(), f.tn, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := refdets(rows); !slices.Equal(got, c.want) || total != len(c.want) {
			t.Errorf("%s: %v (total %d), want %v", c.name, got, total, c.want)
		}
		var streamed []string
		if err := f.s.Each(context.Background(), f.tn, c.q, func(r Row) error { streamed = append(streamed, r.RefDet); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(streamed, c.want) {
			t.Errorf("%s: Each gave %v", c.name, streamed)
		}
	}
	rows, _, _ := f.s.Search(context.Background(), f.tn, Query{Reference: "REFDET000002"})
	if len(rows) != 1 || rows[0].PayerRef != "SISTEC560" || rows[0].PayerName != "Hélène DUPONT" ||
		!slices.Equal([]string(rows[0].InvoiceNumbers), []string{"F-2", "F-3"}) {
		t.Fatalf("row %+v", rows)
	}
	d2, err := f.s.GetInCommune(context.Background(), f.tn, rows[0].ID)
	if err != nil || d2.PayerEmail != "sistec560@example.fr" || len(d2.Invoices) != 2 || d2.IdOp != "OP-2" {
		t.Fatalf("detail %+v %v", d2, err)
	}
	var foreign int64
	d.Get(&foreign, `SELECT id FROM payments WHERE tenant_id = $1`, other.tn)
	if _, err := f.s.GetInCommune(context.Background(), f.tn, foreign); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another commune's attempt: %v", err)
	}
	if _, _, err := f.s.Search(context.Background(), f.tn, Query{Sort: "id; --"}); err == nil {
		t.Fatal("unknown sort accepted")
	}
}
