package invoice

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"portail/pkg/dbtest"
)

func numbers(rows []Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Number
	}
	return out
}

func TestSearchAcrossTheCommune(t *testing.T) {
	d := dbtest.New(t)
	f := fixtureOn(t, d, "sistec")
	other := fixtureOn(t, d, "autreville")
	f.account(t, "SISTEC560", "Hélène DUPONT")
	f.account(t, "SISTEC561", "Jean Martin")
	f.account(t, "REF_9", "Zoé Lefèvre")
	other.account(t, "SISTEC560", "Hélène DUPONT")
	f.seed(t, csvOf(
		"2017-020-000001;SISTEC560;Cantine;10/01/2017;21/01/2017;10,00",
		"2017-020-000002;SISTEC561;Cantine;10/02/2017;21/02/2017;20,00;réglée",
		"2017-021-000003;SISTEC560;Garderie;10/03/2017;21/03/2017;30,00;trésorerie",
		"2017-021-000004;REF_9;Garderie;10/04/2017;21/04/2017;40,00;annulée",
		"2017_020_000005;SISTEC561;Eau;10/05/2017;21/05/2017;50,00",
	))
	other.seed(t, csvOf("2017-020-000001;SISTEC560;Cantine;10/01/2017;21/01/2017;10,00"))
	day := func(m int) time.Time { return time.Date(2017, time.Month(m), 10, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		name string
		q    Query
		want []string
	}{
		{"everything, most recent first", Query{},
			[]string{"2017_020_000005", "2017-021-000004", "2017-021-000003", "2017-020-000002", "2017-020-000001"}},
		{"number prefix", Query{Number: "2017-020"}, []string{"2017-020-000002", "2017-020-000001"}},
		{"an underscore is a character, not a wildcard", Query{Number: "2017_"}, []string{"2017_020_000005"}},
		{"payer name without accents nor case", Query{Payer: "helene dup"}, []string{"2017-021-000003", "2017-020-000001"}},
		{"payer reference, any part", Query{Payer: "c561"}, []string{"2017_020_000005", "2017-020-000002"}},
		{"payer email", Query{Payer: "sistec561@example"}, []string{"2017_020_000005", "2017-020-000002"}},
		{"payer: a percent sign matches itself only", Query{Payer: "%"}, []string{}},
		{"payer reference with an underscore", Query{Payer: "ref_"}, []string{"2017-021-000004"}},
		{"statuses", Query{Status: []Status{StatusPaid, StatusTreasury}}, []string{"2017-021-000003", "2017-020-000002"}},
		{"one status", Query{Status: []Status{StatusCancelled}}, []string{"2017-021-000004"}},
		{"issued between, ends included", Query{IssuedFrom: day(2), IssuedTo: day(4)},
			[]string{"2017-021-000004", "2017-021-000003", "2017-020-000002"}},
		{"due after", Query{DueFrom: time.Date(2017, 4, 21, 0, 0, 0, 0, time.UTC)}, []string{"2017_020_000005", "2017-021-000004"}},
		{"amounts, ends included", Query{AmountMin: 2000, AmountMax: 4000},
			[]string{"2017-021-000004", "2017-021-000003", "2017-020-000002"}},
		{"by amount, largest first", Query{Sort: "-amount", AmountMin: 3000}, []string{"2017_020_000005", "2017-021-000004", "2017-021-000003"}},
		{"by payer name", Query{Sort: "payer", Status: []Status{StatusUnpaid, StatusTreasury}},
			[]string{"2017-020-000001", "2017-021-000003", "2017_020_000005"}},
		{"one account", Query{AccountID: f.accountID(t, "SISTEC560"), Sort: "issued"}, []string{"2017-020-000001", "2017-021-000003"}},
		{"filters together", Query{Payer: "dupont", Status: []Status{StatusUnpaid}, Number: "2017-020"}, []string{"2017-020-000001"}},
	} {
		rows, total, err := f.store.Search(f.ctx, f.t.ID, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := numbers(rows); !slices.Equal(got, c.want) || total != len(c.want) {
			t.Errorf("%s: %v (total %d), want %v", c.name, got, total, c.want)
		}
		for _, r := range rows {
			if r.TenantID != f.t.ID || r.PayerRef == "" || r.PayerName == "" {
				t.Errorf("%s: row %+v", c.name, r)
			}
		}
		// Each streams the same rows in the same order.
		var streamed []string
		if err := f.store.Each(f.ctx, f.t.ID, c.q, func(r Row) error { streamed = append(streamed, r.Number); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(streamed, c.want) && !(len(streamed) == 0 && len(c.want) == 0) {
			t.Errorf("%s: Each gave %v", c.name, streamed)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := f.store.Each(f.ctx, f.t.ID, Query{}, func(Row) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Each after fn's error: %v, %d calls", err, n)
	}
	for _, s := range Sorts() {
		for _, key := range []string{s, "-" + s} {
			if _, _, err := f.store.Search(f.ctx, f.t.ID, Query{Sort: key}); err != nil {
				t.Errorf("sort %s: %v", key, err)
			}
		}
	}
}

func (f *fixture) accountID(t *testing.T, ref string) int64 {
	t.Helper()
	var id int64
	if err := f.d.Get(&id, `SELECT id FROM accounts WHERE tenant_id = $1 AND external_ref = $2`, f.t.ID, ref); err != nil {
		t.Fatal(err)
	}
	return id
}

// The resident's list is the commune's search with the account set, and
// keeps its cost: the per-account index gives the rows in order (no sort
// of the account's invoices) and the payer is read once.
func TestResidentSearchUsesTheAccountIndex(t *testing.T) {
	f := newFixture(t)
	for _, ref := range []string{"P1", "P2", "P3", "P4"} {
		f.account(t, ref, "Payeur "+ref)
	}
	if _, err := f.d.Exec(`
		INSERT INTO invoices (tenant_id, account_id, number, issued_on, due_on, amount_cents, status)
		SELECT $1, a.id, a.external_ref || '-' || g, DATE '2010-01-01' + g, DATE '2010-02-01' + g, 100,
			(ARRAY['unpaid', 'treasury'])[1 + g % 2]
		FROM accounts a, generate_series(1, 5000) g WHERE a.tenant_id = $1`, f.t.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Exec(`ANALYZE invoices; ANALYZE accounts`); err != nil {
		t.Fatal(err)
	}
	q := Query{AccountID: f.accountID(t, "P2"), Status: []Status{StatusUnpaid}, Page: 3, PerPage: 20}
	where, args := q.where(f.t.ID)
	order, _ := orderBy(q.Sort)
	var plan []string
	err := f.d.Select(&plan, `EXPLAIN SELECT `+searchColumns+searchFrom+where+` ORDER BY `+order+` LIMIT $12 OFFSET $13`,
		append(args, 20, 40)...)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	// The payer's row is found by its id, known from the query's own
	// account id, once: not looked up per invoice through the join.
	if !strings.Contains(text, "invoices_account_list") || strings.Contains(text, "Sort") ||
		strings.Count(text, " on accounts a") != 1 || !strings.Contains(text, "id = '") {
		t.Fatalf("resident's page plan:\n%s", text)
	}
	rows, total, err := f.store.Search(f.ctx, f.t.ID, q)
	if err != nil || total != 2500 || len(rows) != 20 || rows[0].PayerRef != "P2" {
		t.Fatalf("%d rows of %d: %v", len(rows), total, err)
	}
}
