package demo_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/dbtest"
	"portail/pkg/demo"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// Restarting `make run` calls Load again: what was changed since the first
// run must survive it, and a commune without payers still gets its demo.
func TestDemoLoadsOnlyIntoCommunesWithoutPayers(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	ctx := context.Background()
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := e.App.DB.Get(&n, q, args...); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const communePayers = `SELECT count(*) FROM accounts a JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = $1`
	const communeInvoices = `SELECT count(*) FROM invoices i JOIN tenants t ON t.id = i.tenant_id WHERE t.slug = $1`
	sistecPayers, sistecInvoices := count(communePayers, "sistec"), count(communeInvoices, "sistec")
	belcastelPayers, belcastelInvoices := count(communePayers, "belcastel"), count(communeInvoices, "belcastel")
	if sistecPayers == 0 || sistecInvoices == 0 || belcastelPayers == 0 || belcastelInvoices == 0 {
		t.Fatalf("first run: sistec %d/%d, belcastel %d/%d", sistecPayers, sistecInvoices, belcastelPayers, belcastelInvoices)
	}
	// Since the first run: a sistec resident changed address and name, and
	// belcastel's data is gone (as in a commune added to tenants/ since).
	if _, err := e.App.DB.Exec(`UPDATE accounts SET email = 'nouvelle.adresse@demo.fr', display_name = 'Marie DURAND-MOREL'
		WHERE external_ref = 'SISTEC561'`); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"import_errors", "import_batches", "invoices", "accounts"} {
		if _, err := e.App.DB.Exec(`DELETE FROM ` + table + ` x USING tenants t WHERE t.id = x.tenant_id AND t.slug = 'belcastel'`); err != nil {
			t.Fatal(err)
		}
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := demo.Load(ctx, e.App, filepath.Join(apptest.RepoDir(), "tenants"), log); err != nil {
		t.Fatal(err)
	}
	var email, name string
	if err := e.App.DB.QueryRow(`SELECT email, display_name FROM accounts WHERE external_ref = 'SISTEC561'`).Scan(&email, &name); err != nil {
		t.Fatal(err)
	}
	if email != "nouvelle.adresse@demo.fr" || name != "Marie DURAND-MOREL" {
		t.Errorf("the restart undid the resident's change: %s, %s", email, name)
	}
	if p, i := count(communePayers, "sistec"), count(communeInvoices, "sistec"); p != sistecPayers || i != sistecInvoices {
		t.Errorf("sistec: %d payers and %d invoices, then %d and %d", sistecPayers, sistecInvoices, p, i)
	}
	if p, i := count(communePayers, "belcastel"), count(communeInvoices, "belcastel"); p != belcastelPayers || i != belcastelInvoices {
		t.Errorf("belcastel without payers: %d payers and %d invoices loaded, want %d and %d", p, i, belcastelPayers, belcastelInvoices)
	}
}

// make run's demo staff: an admin, an agent and a viewer per commune, who
// log in with the printed password; created only into a commune without
// staff, so a restart changes nothing.
func TestDemoStaffOnlyIntoCommunesWithoutStaff(t *testing.T) {
	e := apptest.Start(t, apptest.Options{DemoStaff: true})
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, slug := range []string{"sistec", "belcastel"} {
		ten, err := e.App.Tenants.BySlug(ctx, slug)
		if err != nil {
			t.Fatal(err)
		}
		members, err := e.App.Staff.Members(ctx, ten.ID)
		if err != nil || len(members) != 3 {
			t.Fatalf("%s: %d members, %v", slug, len(members), err)
		}
		for _, want := range demo.StaffOf(slug) {
			m, err := e.App.Staff.Authenticate(ctx, ten, want.Email, demo.StaffPassword, "")
			if err != nil || m.Role != want.Role || m.TOTPEnrolled {
				t.Errorf("%s: %+v %v", want.Email, m, err)
			}
		}
	}
	// A team set up since (a demo member disabled) is left alone.
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	agent, _ := e.App.Staff.MemberByEmail(ctx, sistec.ID, demo.StaffOf("sistec")[1].Email)
	if err := e.App.Staff.SetMembershipActive(ctx, sistec, agent.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := demo.LoadStaff(ctx, e.App, log); err != nil {
		t.Fatal(err)
	}
	var n int
	e.App.DB.Get(&n, `SELECT count(*) FROM staff_users`)
	if got, _ := e.App.Staff.Member(ctx, sistec.ID, agent.ID); n != 6 || got.Active() {
		t.Fatalf("after a restart: %d users, agent active %v", n, got.Active())
	}
}
