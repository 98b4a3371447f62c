package privacy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/dbtest"
	"portail/pkg/privacy"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const password = "Cerf-volant sous la pluie 42"

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// portal runs the portal with the demo communes on a clock the test moves
// forward from four years ago (PostgreSQL's now(), which dates the audit
// entries, stays ahead of it); the tests run the privacy job themselves.
func portal(t *testing.T) (*apptest.Env, *clock, *tenant.Tenant) {
	t.Helper()
	c := &clock{now: time.Now().AddDate(-4, 0, 0)}
	e := apptest.Start(t, apptest.Options{Demo: true, Now: c.Now, NoPeriodicJobs: true})
	sistec, err := e.App.Tenants.BySlug(context.Background(), "sistec")
	if err != nil {
		t.Fatal(err)
	}
	return e, c, sistec
}

func activate(t *testing.T, e *apptest.Env, email string) {
	t.Helper()
	res, _, err := apptest.PostForm(e.Client(), e.URL("sistec.localhost", "/activation"), url.Values{"email": {email}})
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("activation of %s: %v", email, err)
	}
	link := apptest.LinkIn(t, e.WaitMail(email, "Accès au portail des factures", "/activation/"), e.URL("sistec.localhost", "/activation/"))
	if _, body, err := apptest.PostForm(e.Client(), link, url.Values{"password": {password}, "confirm": {password}}); err != nil ||
		!strings.Contains(body, "Le nouveau mot de passe a été enregistré avec succès.") {
		t.Fatalf("password of %s: %v", email, err)
	}
}

func login(t *testing.T, e *apptest.Env, email string) {
	t.Helper()
	res, _, err := apptest.PostForm(e.Client(), e.URL("sistec.localhost", "/connexion"), url.Values{"email": {email}, "password": {password}})
	if err != nil || res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/accueil" {
		t.Fatalf("login of %s: %v %v", email, err, res)
	}
}

// emailJobs counts the emails of template enqueued so far, per recipient.
func emailJobs(t *testing.T, e *apptest.Env, template string) map[string]int {
	t.Helper()
	rows, err := e.App.DB.Query(`SELECT args->'email'->>'to', count(*) FROM river_job
		WHERE kind = 'send_email' AND args->'email'->>'template' = $1 GROUP BY 1`, template)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var to string
		var n int
		if err := rows.Scan(&to, &n); err != nil {
			t.Fatal(err)
		}
		out[to] = n
	}
	return out
}

func count(t *testing.T, e *apptest.Env, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.App.DB.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInactiveAccountsAreWarnedThenClosed moves the clock: an account
// without a login for inactive_after − notice is warned once (two runs at
// once, then a rerun, send one email), then closed after the notice, its
// invoices and payments kept; an account whose resident logged in after
// the warning is spared.
func TestInactiveAccountsAreWarnedThenClosed(t *testing.T) {
	e, c, sistec := portal(t)
	activate(t, e, "demo@demo.fr")
	activate(t, e, "marie.durand@demo.fr")
	set := e.App.Config.Privacy
	var demoID int64
	if err := e.App.DB.Get(&demoID, `SELECT id FROM accounts WHERE tenant_id = $1 AND email = 'demo@demo.fr'`, sistec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.DB.Exec(`INSERT INTO payments (tenant_id, account_id, refdet, mode, amount_cents, email, status, resolved_at, resolved_by, paid_at)
		VALUES ($1, $2, 'REF0000001', 'ws', 24311, 'demo@demo.fr', 'paid', now(), 'notification', now())`, sistec.ID, demoID); err != nil {
		t.Fatal(err)
	}
	invoices := count(t, e, `SELECT count(*) FROM invoices WHERE account_id = $1`, demoID)
	ctx := context.Background()

	// A day before the warning: nothing.
	c.add(set.InactiveAfter - set.InactiveNotice - 24*time.Hour)
	if r, err := e.App.Privacy.Run(ctx); err != nil || r.Warned != 0 || r.Closed != 0 {
		t.Fatalf("before the warning: %+v %v", r, err)
	}
	// The day of the warning, two instances at once, then a rerun.
	c.add(48 * time.Hour)
	var wg sync.WaitGroup
	results := make([]privacy.Result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.App.Privacy.Run(ctx)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	if results[0].Warned+results[1].Warned != 2 {
		t.Fatalf("two accounts to warn, runs warned %d and %d", results[0].Warned, results[1].Warned)
	}
	if r, err := e.App.Privacy.Run(ctx); err != nil || r.Warned != 0 {
		t.Fatalf("rerun: %+v %v", r, err)
	}
	if got := emailJobs(t, e, privacy.WarningTemplate); got["demo@demo.fr"] != 1 || got["marie.durand@demo.fr"] != 1 || len(got) != 2 {
		t.Fatalf("warnings: %v", got)
	}
	m := e.WaitMail("demo@demo.fr", "Votre compte sur le portail des factures sera fermé le")
	if !strings.Contains(m.Text, "connecter avant cette date") {
		t.Errorf("warning email:\n%s", m.Text)
	}

	// Marie logs in during the notice; demo does not.
	c.add(10 * 24 * time.Hour)
	login(t, e, "marie.durand@demo.fr")
	if r, err := e.App.Privacy.Run(ctx); err != nil || r.Closed != 0 || r.Warned != 0 {
		t.Fatalf("during the notice: %+v %v", r, err)
	}
	c.add(set.InactiveNotice)
	r, err := e.App.Privacy.Run(ctx)
	if err != nil || r.Closed != 1 || r.Warned != 0 {
		t.Fatalf("after the notice: %+v %v", r, err)
	}
	if n := count(t, e, `SELECT count(*) FROM accounts WHERE id = $1 AND status = 'closed' AND display_name = 'Compte fermé'
		AND email NOT LIKE '%demo%' AND password_hash = ''`, demoID); n != 1 {
		t.Fatal("inactive account not closed and erased")
	}
	if n := count(t, e, `SELECT count(*) FROM accounts WHERE tenant_id = $1 AND email = 'marie.durand@demo.fr'
		AND status = 'active' AND inactivity_warned_at IS NULL`, sistec.ID); n != 1 {
		t.Fatal("the account that logged in meanwhile was not spared")
	}
	// The commune's accounting records stay.
	if n := count(t, e, `SELECT count(*) FROM invoices WHERE account_id = $1`, demoID); n != invoices || n == 0 {
		t.Errorf("invoices: %d, were %d", n, invoices)
	}
	if n := count(t, e, `SELECT count(*) FROM payments WHERE account_id = $1 AND refdet = 'REF0000001' AND amount_cents = 24311
		AND status = 'paid' AND email = ''`, demoID); n != 1 {
		t.Error("the payment was not kept without its address")
	}
	if n := count(t, e, `SELECT count(*) FROM audit_log WHERE action = 'account.closed' AND object_id = $1::text
		AND actor_kind = 'system' AND details->>'reason' = 'inactivity'`, demoID); n != 1 {
		var got []string
		e.App.DB.Select(&got, `SELECT action || actor_kind || object_id || details::text FROM audit_log WHERE action LIKE 'account.%'`)
		t.Errorf("no audit entry of the closure: %q", got)
	}
	e.WaitMail("demo@demo.fr", "Votre compte sur le portail des factures est fermé", "Faute de connexion")
	if r, err := e.App.Privacy.Run(ctx); err != nil || r.Closed != 0 || r.Warned != 0 {
		t.Fatalf("rerun after the closure: %+v %v", r, err)
	}
	// Pending accounts (never activated) are the commune's list: untouched.
	if n := count(t, e, `SELECT count(*) FROM accounts WHERE tenant_id = $1 AND status = 'pending' AND inactivity_warned_at IS NOT NULL`, sistec.ID); n != 0 {
		t.Errorf("%d pending accounts warned", n)
	}
}

// TestRetentionDeletesOnlyWhatIsOld: threads whose last message is older
// than privacy.messages go with their messages, a long thread still going
// on stays whole; audit
// entries older than privacy.audit go but those about payments stay until
// privacy.audit_payments; expired sessions go, live ones stay.
func TestRetentionDeletesOnlyWhatIsOld(t *testing.T) {
	e, c, sistec := portal(t)
	activate(t, e, "demo@demo.fr")
	activate(t, e, "marie.durand@demo.fr")
	now := c.Now()
	set := e.App.Config.Privacy
	day := 24 * time.Hour
	ids := map[string]int64{}
	for _, email := range []string{"demo@demo.fr", "marie.durand@demo.fr"} {
		var id int64
		if err := e.App.DB.Get(&id, `SELECT id FROM accounts WHERE tenant_id = $1 AND email = $2`, sistec.ID, email); err != nil {
			t.Fatal(err)
		}
		ids[email] = id
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := e.App.DB.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	// A thread per resident: demo's is over (its last message is old),
	// marie's started long ago but its last message is recent.
	thread := func(account int64, messages ...time.Time) {
		t.Helper()
		var id int64
		if err := e.App.DB.Get(&id, `INSERT INTO message_threads (tenant_id, account_id, subject, created_at, last_message_at)
			VALUES ($1, $2, 'Question', $3, $4) RETURNING id`, sistec.ID, account, messages[0], messages[len(messages)-1]); err != nil {
			t.Fatal(err)
		}
		for i, at := range messages {
			exec(`INSERT INTO messages (tenant_id, account_id, thread_id, direction, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				sistec.ID, account, id, []string{"resident", "staff"}[i%2], fmt.Sprintf("message %d", account*10+int64(i)), at)
		}
	}
	thread(ids["demo@demo.fr"], now.Add(-set.Messages-10*day), now.Add(-set.Messages-day))
	thread(ids["marie.durand@demo.fr"], now.Add(-set.Messages-10*day), now.Add(-set.Messages+day))

	audit := `INSERT INTO audit_log (tenant_id, actor_kind, action, object_type, object_id, at) VALUES ($1, 'system', $2, $3, 'x', $4)`
	exec(audit, sistec.ID, "test.old", "account", now.Add(-set.Audit-day))
	exec(audit, sistec.ID, "test.recent", "account", now.Add(-set.Audit+day))
	exec(audit, sistec.ID, "payment.paid", "payment", now.Add(-set.Audit-day))
	exec(audit, sistec.ID, "payment.refused", "payment", now.Add(-set.AuditPayments-day))

	session := `INSERT INTO sessions (tenant_id, id_hash, account_id, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)`
	exec(session, sistec.ID, []byte(strings.Repeat("a", 32)), ids["demo@demo.fr"], now.Add(-2*day))
	exec(session, sistec.ID, []byte(strings.Repeat("b", 32)), ids["demo@demo.fr"], now.Add(-time.Minute))

	threads, audits, err := e.App.Privacy.Retention(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if threads != 1 || audits != 2 {
		t.Errorf("deleted %d threads and %d audit entries, want 1 and 2", threads, audits)
	}
	var left []int64
	if err := e.App.DB.Select(&left, `SELECT DISTINCT account_id FROM messages WHERE tenant_id = $1`, sistec.ID); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != ids["marie.durand@demo.fr"] ||
		count(t, e, `SELECT count(*) FROM messages WHERE account_id = $1`, ids["marie.durand@demo.fr"]) != 2 {
		t.Errorf("messages left of accounts %v, want marie's two", left)
	}
	var actions []string
	if err := e.App.DB.Select(&actions, `SELECT action FROM audit_log WHERE tenant_id = $1 AND object_id = 'x' ORDER BY action`, sistec.ID); err != nil {
		t.Fatal(err)
	}
	if strings.Join(actions, "|") != "payment.paid|test.recent" {
		t.Errorf("audit entries left: %q", actions)
	}
	if n := count(t, e, `SELECT count(*) FROM sessions WHERE tenant_id = $1 AND account_id = $2`, sistec.ID, ids["demo@demo.fr"]); n != 1 {
		t.Errorf("sessions left: %d, want the live one", n)
	}
	// The activations' own audit entries are recent: kept.
	if n := count(t, e, `SELECT count(*) FROM audit_log WHERE action = 'account.activated'`); n != 2 {
		t.Errorf("recent audit entries deleted: %d left", n)
	}
}
