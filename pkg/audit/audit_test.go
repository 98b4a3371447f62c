package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/db"
	"portail/pkg/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func newTenant(t *testing.T, d *sqlx.DB, slug string) int64 {
	t.Helper()
	var id int64
	if err := d.Get(&id, `INSERT INTO tenants (slug, name, primary_host, payfip_numcli)
		VALUES ($1, $1, $1 || '.example.fr', '123456') RETURNING id`, slug); err != nil {
		t.Fatal(err)
	}
	return id
}

func count(t *testing.T, d *sqlx.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := d.Get(&n, q, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

// The entry is written in the transaction of the change it records: both
// are kept, or neither.
func TestEntryCommitsAndRollsBackWithTheChange(t *testing.T) {
	d := dbtest.New(t)
	ten := newTenant(t, d, "sistec")
	ctx := audit.WithActor(context.Background(), audit.Actor{Kind: audit.KindStaff, ID: 7, IP: "192.0.2.10"})
	change := func(name string, fail bool) error {
		return db.InTx(ctx, d, func(tx *sqlx.Tx) error {
			if _, err := tx.Exec(`UPDATE tenants SET name = $2 WHERE id = $1`, ten, name); err != nil {
				return err
			}
			if err := audit.Record(ctx, tx, ten, "tenant.renamed", audit.Of(audit.ObjectTenant, ten), map[string]any{"name": name}); err != nil {
				return err
			}
			if fail {
				return errors.New("later step failed")
			}
			return nil
		})
	}
	if err := change("Rolled back", true); err == nil {
		t.Fatal("the failing change reported success")
	}
	if n := count(t, d, `SELECT count(*) FROM audit_log WHERE tenant_id = $1`, ten); n != 0 {
		t.Fatalf("%d entries kept for a change rolled back", n)
	}
	if n := count(t, d, `SELECT count(*) FROM tenants WHERE name = 'Rolled back'`); n != 0 {
		t.Fatal("the change was kept")
	}
	if err := change("Committed", false); err != nil {
		t.Fatal(err)
	}
	entries, total, err := audit.Search(context.Background(), d, ten, audit.Filter{}, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(entries) != 1 {
		t.Fatalf("%d entries (%d in all), want the committed one", len(entries), total)
	}
	e := entries[0]
	if e.ActorKind != audit.KindStaff || e.ActorID != 7 || e.IP != "192.0.2.10" || e.Action != "tenant.renamed" ||
		e.ObjectType != "tenant" || e.ObjectID == "" || string(e.Details) != `{"name": "Committed"}` {
		t.Fatalf("entry %+v (details %s)", e, e.Details)
	}
}

func TestActorComesFromContext(t *testing.T) {
	d := dbtest.New(t)
	ten := newTenant(t, d, "sistec")
	bg := context.Background()
	record := func(ctx context.Context, action string) audit.Entry {
		t.Helper()
		if err := audit.Record(ctx, d, ten, action, audit.Object{}, nil); err != nil {
			t.Fatal(err)
		}
		es, _, err := audit.Search(bg, d, ten, audit.Filter{Action: action}, 1, 1)
		if err != nil || len(es) != 1 {
			t.Fatalf("%s: %v %v", action, es, err)
		}
		return es[0]
	}
	if e := record(bg, "job.ran"); e.ActorKind != audit.KindSystem || e.ActorID != 0 || e.IP != "" {
		t.Errorf("no actor in context: %+v, want the system without IP", e)
	}
	anon := audit.WithActor(bg, audit.Actor{Kind: audit.KindAnonymous, IP: "::ffff:198.51.100.4"})
	if e := record(anon, "login.failed"); e.ActorKind != audit.KindAnonymous || e.IP != "198.51.100.4" {
		t.Errorf("anonymous caller: %+v, want its IPv4 address unmapped", e)
	}
	if e := record(audit.As(anon, audit.KindResident, 42), "login.ok"); e.ActorKind != audit.KindResident || e.ActorID != 42 || e.IP != "198.51.100.4" {
		t.Errorf("As keeps the IP: %+v", e)
	}
	if e := record(audit.WithActor(bg, audit.Actor{Kind: audit.KindAPIKey, ID: 3, IP: "not an address"}), "api.put"); e.IP != "" || e.ActorKind != audit.KindAPIKey {
		t.Errorf("unreadable IP: %+v, want none recorded", e)
	}
}

func TestSearchByActorObjectActionAndDate(t *testing.T) {
	d := dbtest.New(t)
	ten, other := newTenant(t, d, "sistec"), newTenant(t, d, "autre")
	bg := context.Background()
	staff := audit.WithActor(bg, audit.Actor{Kind: audit.KindStaff, ID: 3, IP: "192.0.2.1"})
	resident := audit.WithActor(bg, audit.Actor{Kind: audit.KindResident, ID: 9, IP: "192.0.2.2"})
	type rec struct {
		ctx    context.Context
		tenant int64
		action string
		obj    audit.Object
		at     time.Time
	}
	day := func(n int) time.Time { return time.Date(2026, 11, n, 12, 0, 0, 0, time.UTC) }
	for _, r := range []rec{
		{staff, ten, "invoice.status_changed", audit.Of(audit.ObjectInvoice, 1), day(1)},
		{staff, ten, "invoice.suspended", audit.Of(audit.ObjectInvoice, 1), day(2)},
		{resident, ten, "payment.started", audit.Of(audit.ObjectPayment, 5), day(3)},
		{bg, ten, "payment.paid", audit.Of(audit.ObjectPayment, 5), day(4)},
		{staff, ten, "invoice.status_changed", audit.Of(audit.ObjectInvoice, 2), day(5)},
		{staff, other, "invoice.status_changed", audit.Of(audit.ObjectInvoice, 1), day(2)},
	} {
		if err := audit.Record(r.ctx, d, r.tenant, r.action, r.obj, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(`UPDATE audit_log SET at = $1 WHERE id = (SELECT max(id) FROM audit_log)`, r.at); err != nil {
			t.Fatal(err)
		}
	}
	actions := func(f audit.Filter) []string {
		t.Helper()
		es, total, err := audit.Search(bg, d, ten, f, 1, 50)
		if err != nil {
			t.Fatal(err)
		}
		if total != len(es) {
			t.Fatalf("total %d for %d entries", total, len(es))
		}
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.Action + "@" + e.At.UTC().Format("02")
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    audit.Filter
		want []string
	}{
		{"everything of the commune, most recent first", audit.Filter{},
			[]string{"invoice.status_changed@05", "payment.paid@04", "payment.started@03", "invoice.suspended@02", "invoice.status_changed@01"}},
		{"one staff user", audit.Filter{ActorKind: audit.KindStaff, ActorID: 3},
			[]string{"invoice.status_changed@05", "invoice.suspended@02", "invoice.status_changed@01"}},
		{"residents", audit.Filter{ActorKind: audit.KindResident}, []string{"payment.started@03"}},
		{"an invoice's history", audit.Filter{ObjectType: audit.ObjectInvoice, ObjectID: "1"},
			[]string{"invoice.suspended@02", "invoice.status_changed@01"}},
		{"a payment's history", audit.Filter{ObjectType: audit.ObjectPayment, ObjectID: "5"},
			[]string{"payment.paid@04", "payment.started@03"}},
		{"action prefix", audit.Filter{Action: "payment."}, []string{"payment.paid@04", "payment.started@03"}},
		{"dates: From included, To excluded", audit.Filter{From: day(2), To: day(4)},
			[]string{"payment.started@03", "invoice.suspended@02"}},
		{"nothing", audit.Filter{ActorKind: audit.KindOperator}, []string{}},
	} {
		if got := actions(c.f); !equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Pages.
	es, total, err := audit.Search(bg, d, ten, audit.Filter{}, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if total != 5 || len(es) != 2 || es[0].Action != "payment.started" {
		t.Fatalf("page 2 of 2: total %d, %+v", total, es)
	}
	if es, total, _ = audit.Search(bg, d, ten, audit.Filter{}, 1<<30, 50); len(es) != 0 || total != 5 {
		t.Fatalf("a page past the end: %d entries, total %d", len(es), total)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
