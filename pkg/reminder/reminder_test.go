package reminder_test

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
	"portail/pkg/imports"
	"portail/pkg/paris"
	"portail/pkg/reminder"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const password = "Cerf-volant sous la pluie 42"

// clock is the portal's moved clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(day string) {
	d, err := time.ParseInLocation("02/01/2006 15:04", day+" 08:00", paris.Location)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.now = d
	c.mu.Unlock()
}

// portal runs the whole portal with the demo communes on a clock starting
// on 10/10/2017, when none of the demo invoices falls due soon. The tests
// run the reminders themselves (through River or not): the daily schedule
// would add a run at start that the counts could not tell apart.
func portal(t *testing.T) (*apptest.Env, *clock, *tenant.Tenant) {
	t.Helper()
	c := &clock{}
	c.set("10/10/2017")
	e := apptest.Start(t, apptest.Options{Demo: true, Now: c.Now, NoPeriodicJobs: true})
	sistec, err := e.App.Tenants.BySlug(context.Background(), "sistec")
	if err != nil {
		t.Fatal(err)
	}
	return e, c, sistec
}

func importInvoices(t *testing.T, e *apptest.Env, tn *tenant.Tenant, lines ...string) {
	t.Helper()
	csv := "Numéro;Référence redevable;Objet;Date;Echéance;Montant;Statut;Prélèvement;Suspendu\n" + strings.Join(lines, "\n") + "\n"
	rep, err := e.App.Imports.ImportNow(context.Background(), tn.ID, imports.KindInvoices, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "factures.csv", Body: strings.NewReader(csv)}, nil)
	if err != nil || rep.Status != imports.StatusImported {
		t.Fatalf("import: %v %s %+v", err, rep.Status, rep.Errors)
	}
}

// activate walks the activation of email as a resident does.
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

// reminded lists the invoice numbers reminded so far, in number order.
func reminded(t *testing.T, e *apptest.Env) []string {
	t.Helper()
	var out []string
	if err := e.App.DB.Select(&out, `SELECT i.number FROM invoice_reminders r
		JOIN invoices i ON i.tenant_id = r.tenant_id AND i.id = r.invoice_id ORDER BY i.number`); err != nil {
		t.Fatal(err)
	}
	return out
}

// reminderJobs counts the reminder emails enqueued so far, per recipient.
func reminderJobs(t *testing.T, e *apptest.Env) map[string]int {
	t.Helper()
	rows, err := e.App.DB.Query(`SELECT args->'email'->>'to', count(*) FROM river_job
		WHERE kind = 'send_email' AND args->'email'->>'template' = $1 GROUP BY 1`, reminder.Template)
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

func run(t *testing.T, e *apptest.Env) reminder.Result {
	t.Helper()
	r, err := e.App.Reminders.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRemindersBeforeTheDueDate moves the clock through October 2017 in a
// commune that reminds five days before the due date: the right invoices
// are reminded, each once, after a missed day too, and never after the
// resident unsubscribed; the email is caught and its pay link leads to
// paying the invoice.
func TestRemindersBeforeTheDueDate(t *testing.T) {
	e, clk, sistec := portal(t)
	ctx := context.Background()
	activate(t, e, "demo@demo.fr")        // SISTEC560, the manual's resident
	activate(t, e, "jean.martin@demo.fr") // SISTEC562
	// SISTEC561 (marie.durand@demo.fr) never activates her account.
	importInvoices(t, e, sistec,
		"R-PAYABLE;SISTEC560;Cantine octobre;01/10/2017;22/10/2017;40,00;non réglée;non;non",
		"R-PAID;SISTEC560;Garderie octobre;01/10/2017;22/10/2017;30,00;réglée;non;non",
		"R-TREASURY;SISTEC560;Cantine juin;01/06/2017;22/10/2017;25,00;trésorerie;non;non",
		"R-CANCELLED;SISTEC560;Erreur;01/10/2017;22/10/2017;25,00;annulée;non;non",
		"R-PENDING;SISTEC560;Étude surveillée;01/10/2017;23/10/2017;18,00;non réglée;non;non",
		"R-DECLARED;SISTEC560;Transport scolaire;01/10/2017;23/10/2017;12,00;non réglée;non;non",
		"R-LATER;SISTEC560;Accueil du mercredi;05/10/2017;27/10/2017;33,30;non réglée;non;non",
		"R-OVERDUE;SISTEC560;Cantine septembre;01/09/2017;19/10/2017;61,20;non réglée;non;non",
		"R-PENDING-ACCOUNT;SISTEC561;Cantine octobre;01/10/2017;22/10/2017;38,90;non réglée;non;non",
		"J-1;SISTEC562;Cantine octobre;01/10/2017;21/10/2017;112,00;non réglée;non;non",
	)
	// The demo's own invoices due then: on direct debit (21/10), suspended
	// (23/10) and below the 1 € minimum (24/10) are never reminded.
	ids := map[string]int64{}
	rows, _ := e.App.DB.Query(`SELECT number, id, account_id FROM invoices`)
	accountOf := map[string]int64{}
	for rows.Next() {
		var n string
		var id, acc int64
		rows.Scan(&n, &id, &acc)
		ids[n], accountOf[n] = id, acc
	}
	rows.Close()
	// A payment in progress, and the resident's own "paid by other means".
	if _, _, err := e.App.Payments.Start(ctx, sistec, accountOf["R-PENDING"], []int64{ids["R-PENDING"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.DB.Exec(`UPDATE invoices SET declared_paid_at = now() WHERE id = $1`, ids["R-DECLARED"]); err != nil {
		t.Fatal(err)
	}

	if r := run(t, e); r.Emails != 0 || len(reminded(t, e)) != 0 {
		t.Fatalf("10/10, nothing due before 15/10: %+v, %v", r, reminded(t, e))
	}

	// 20/10: due from 20/10 to 25/10. Through River, as the daily job runs.
	clk.set("20/10/2017")
	if _, err := e.App.Jobs.Insert(ctx, reminder.Args{}, nil); err != nil {
		t.Fatal(err)
	}
	m := e.WaitMail("demo@demo.fr", "Rappel : votre facture n° R-PAYABLE arrive à échéance le 22/10/2017")
	jm := e.WaitMail("jean.martin@demo.fr", "Rappel : votre facture n° J-1 arrive à échéance le 21/10/2017")
	if got := strings.Join(reminded(t, e), " "); got != "J-1 R-PAYABLE" {
		t.Fatalf("reminded on 20/10: %s; want J-1 R-PAYABLE", got)
	}
	for _, want := range []string{"Bonjour Test SISTEC560", "facture n° R-PAYABLE (Cantine octobre) : 40,00 €, échéance le 22/10/2017",
		"Payer en ligne : " + e.URL("sistec.localhost", fmt.Sprintf("/paiement?facture=%d", ids["R-PAYABLE"])),
		"Pour ne plus recevoir ces rappels : " + e.URL("sistec.localhost", "/desabonnement/")} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("reminder lacks %q:\n%s", want, m.Text)
		}
	}
	for _, other := range []string{"R-PAID", "R-TREASURY", "R-CANCELLED", "R-PENDING", "R-DECLARED", "R-LATER", "R-OVERDUE", "2017-020-002300", "2017-020-002350", "2017-020-002360"} {
		if strings.Contains(m.Text, other) {
			t.Errorf("reminder mentions %s", other)
		}
	}
	if h := m.Header("List-Unsubscribe"); !strings.Contains(h, "/desabonnement/") || !strings.Contains(h, "liste=rappels") {
		t.Errorf("List-Unsubscribe %q", h)
	}
	if !strings.Contains(m.HTML, "Payer la facture n° R-PAYABLE en ligne") || !strings.Contains(m.HTML, "MAIRIE DE SISTEC") {
		t.Errorf("HTML part:\n%s", m.HTML)
	}

	// The pay link, opened before logging in: the login brings the
	// resident back to it, the invoice selected, and the payment starts.
	pay := apptest.LinkIn(t, m, e.URL("sistec.localhost", "/paiement?"))
	c := e.Client()
	res, _, _ := apptest.Get(c, pay)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("pay link before login: %d", res.StatusCode)
	}
	login, _ := url.Parse(res.Header.Get("Location"))
	next := login.Query().Get("suite")
	if login.Path != "/" || e.URL("sistec.localhost", next) != pay {
		t.Fatalf("pay link before login goes to %s", res.Header.Get("Location"))
	}
	res, _, _ = apptest.PostForm(c, e.URL("sistec.localhost", "/connexion"), url.Values{"email": {"demo@demo.fr"}, "password": {password}, "suite": {next}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != next {
		t.Fatalf("login from the pay link: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, body, _ := apptest.Get(c, pay)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Nombre de factures <strong>1</strong>") || !strings.Contains(body, "Montant à régler <strong>40,00 €</strong>") {
		t.Fatalf("pay link after login: %d\n%s", res.StatusCode, body)
	}
	res, _, _ = apptest.PostForm(c, e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(ids["R-PAYABLE"])}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), e.PayFiP.URL) {
		t.Fatalf("payment from the reminder: %d %s", res.StatusCode, res.Header.Get("Location"))
	}

	// The same day again: nothing twice.
	if r := run(t, e); r.Emails != 0 {
		t.Fatalf("second run on 20/10 sent %d emails", r.Emails)
	}

	// Jean stops the reminders from his email (a mail client's one-click
	// POST), then gets a new invoice due soon.
	stop := apptest.LinkIn(t, jm, e.URL("sistec.localhost", "/desabonnement/"))
	if res, _, _ := apptest.PostForm(e.Client(), stop, url.Values{"List-Unsubscribe": {"One-Click"}}); res.StatusCode != http.StatusOK {
		t.Fatalf("unsubscribe: %d", res.StatusCode)
	}
	clk.set("21/10/2017")
	importInvoices(t, e, sistec, "J-2;SISTEC562;Garderie octobre;01/10/2017;24/10/2017;20,00;non réglée;non;non")

	// No run on 21/10 (a day missed); 22/10: due from 22/10 to 27/10.
	clk.set("22/10/2017")
	r := run(t, e)
	if got := strings.Join(reminded(t, e), " "); r.Emails != 1 || got != "J-1 R-LATER R-PAYABLE" {
		t.Fatalf("22/10: %+v, reminded %s; want R-LATER alone added", r, got)
	}
	e.WaitMail("demo@demo.fr", "Rappel : votre facture n° R-LATER arrive à échéance le 27/10/2017")
	if got := reminderJobs(t, e); got["demo@demo.fr"] != 2 || got["jean.martin@demo.fr"] != 1 || len(got) != 2 {
		t.Fatalf("reminder emails per recipient: %v", got)
	}
}

// TestRemindersRaceOnTwoInstances runs the reminders of 120 residents from
// four instances at once, each a page of 7 accounts at a time: every
// resident gets one email with both of their invoices, whoever sent it.
func TestRemindersRaceOnTwoInstances(t *testing.T) {
	e, clk, sistec := portal(t)
	ctx := context.Background()
	const residents = 120
	payers := "Référence;Nom;Email\n"
	var invoices []string
	for i := range residents {
		payers += fmt.Sprintf("R%03d;Résident %d;resident%03d@demo.fr\n", i, i, i)
		invoices = append(invoices,
			fmt.Sprintf("RACE-%03d-A;R%03d;Cantine;01/10/2017;22/10/2017;10,00;non réglée;non;non", i, i),
			fmt.Sprintf("RACE-%03d-B;R%03d;Garderie;01/10/2017;24/10/2017;20,00;non réglée;non;non", i, i))
	}
	if rep, err := e.App.Imports.ImportNow(ctx, sistec.ID, imports.KindPayers, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "payeurs.csv", Body: strings.NewReader(payers)}, nil); err != nil || rep.Status != imports.StatusImported {
		t.Fatalf("payers: %v %+v", err, rep)
	}
	importInvoices(t, e, sistec, invoices...)
	// Activated as if each had walked the activation.
	if _, err := e.App.DB.Exec(`UPDATE accounts SET status = 'active' WHERE tenant_id = $1 AND external_ref LIKE 'R%'`, sistec.ID); err != nil {
		t.Fatal(err)
	}
	clk.set("20/10/2017")

	const instances = 4
	results := make([]reminder.Result, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range instances {
		svc := *e.App.Reminders // another instance: its own service on the same database
		svc.PageSize = 7
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = svc.Run(ctx)
		}()
	}
	close(start)
	wg.Wait()
	emails, invs := 0, 0
	for i := range instances {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		emails += results[i].Emails
		invs += results[i].Invoices
		t.Logf("instance %d: %+v", i, results[i])
	}
	if emails != residents || invs != 2*residents {
		t.Fatalf("%d emails for %d invoices; want %d for %d", emails, invs, residents, 2*residents)
	}
	jobs := reminderJobs(t, e)
	for i := range residents {
		if to := fmt.Sprintf("resident%03d@demo.fr", i); jobs[to] != 1 {
			t.Errorf("%s: %d reminder emails", to, jobs[to])
		}
	}
	var invoicesPerEmail []int
	if err := e.App.DB.Select(&invoicesPerEmail, `SELECT DISTINCT jsonb_array_length(args->'email'->'data'->'Invoices') FROM river_job
		WHERE kind = 'send_email' AND args->'email'->>'template' = $1`, reminder.Template); err != nil {
		t.Fatal(err)
	}
	if len(invoicesPerEmail) != 1 || invoicesPerEmail[0] != 2 {
		t.Errorf("invoices per email: %v; want both of each resident's in one", invoicesPerEmail)
	}
	m := e.WaitMail("resident042@demo.fr", "Rappel : 2 factures arrivent à échéance")
	if !strings.Contains(m.Text, "RACE-042-A") || !strings.Contains(m.Text, "RACE-042-B") ||
		!strings.Contains(m.Text, "Payer ces factures en une seule fois : "+e.URL("sistec.localhost", "/paiement?facture=")) {
		t.Errorf("email of resident 42:\n%s", m.Text)
	}
	// And once more, all at once: nothing left.
	if r := run(t, e); r.Emails != 0 {
		t.Fatalf("a run after the race sent %d emails", r.Emails)
	}
}

// TestLongReminderListsTwentyInvoices: 23 invoices due at once make one
// email listing the first 20 by due date and counting the others, all 23
// reminded.
func TestLongReminderListsTwentyInvoices(t *testing.T) {
	e, clk, sistec := portal(t)
	activate(t, e, "demo@demo.fr")
	var lines []string
	for i := range 23 {
		lines = append(lines, fmt.Sprintf("LONG-%02d;SISTEC560;Repas;01/10/2017;%02d/10/2017;5,00;non réglée;non;non", i, 20+i%5))
	}
	importInvoices(t, e, sistec, lines...)
	clk.set("20/10/2017")
	if r := run(t, e); r.Emails != 1 || r.Invoices != 23 {
		t.Fatalf("%+v, want one email for 23 invoices", r)
	}
	m := e.WaitMail("demo@demo.fr", "Rappel : 23 factures arrivent à échéance")
	if n := strings.Count(m.Text, "Payer en ligne :"); n != 20 || !strings.Contains(m.Text, "- et 3 autres, dans « Mes factures »") ||
		strings.Contains(m.Text, "en une seule fois") { // above sistec's ten per payment
		t.Errorf("%d invoices listed:\n%s", n, m.Text)
	}
	if n := len(reminded(t, e)); n != 23 {
		t.Errorf("%d reminded, want 23", n)
	}
}

// TestNoRemindersWhereTheCommuneTurnedThemOff: belcastel's resident has an
// invoice due in two days, but the commune turned reminders off.
func TestNoRemindersWhereTheCommuneTurnedThemOff(t *testing.T) {
	e, clk, _ := portal(t)
	ctx := context.Background()
	belcastel, _ := e.App.Tenants.BySlug(ctx, "belcastel")
	if _, err := e.App.DB.Exec(`UPDATE tenants SET reminders_enabled = false WHERE id = $1`, belcastel.ID); err != nil {
		t.Fatal(err)
	}
	importInvoices(t, e, belcastel, "EAU-2017-000900;BEL0017;Eau;01/10/2017;22/10/2017;50,00;non réglée;non;non")
	if _, err := e.App.DB.Exec(`UPDATE accounts SET status = 'active' WHERE tenant_id = $1`, belcastel.ID); err != nil {
		t.Fatal(err)
	}
	clk.set("20/10/2017")
	if r := run(t, e); r.Emails != 0 {
		t.Fatalf("%d reminders where the commune turned them off", r.Emails)
	}
	if _, err := e.App.DB.Exec(`UPDATE tenants SET reminders_enabled = true WHERE id = $1`, belcastel.ID); err != nil {
		t.Fatal(err)
	}
	if r := run(t, e); r.Emails != 1 {
		t.Fatalf("%d reminders once turned on, want 1", r.Emails)
	}
}

func TestWindowAndSchedule(t *testing.T) {
	tn := &tenant.Tenant{RemindersDaysBefore: 5}
	// 01:30 in Paris on 20/10 is still 19/10 in UTC: the window is Paris's.
	now := time.Date(2017, 10, 19, 23, 30, 0, 0, time.UTC)
	from, to := reminder.Window(tn, now)
	if from.Format(time.DateOnly) != "2017-10-20" || to.Format(time.DateOnly) != "2017-10-25" {
		t.Errorf("window at %v: %v to %v", now, from, to)
	}
	for at, want := range map[string]bool{
		"2017-10-20T07:59:00+02:00": false, "2017-10-20T08:00:00+02:00": true,
		"2017-10-20T19:59:00+02:00": true, "2017-10-20T20:00:00+02:00": false, "2017-10-21T02:00:00+02:00": false,
	} {
		tm, _ := time.Parse(time.RFC3339, at)
		if got := reminder.InSendingHours(tm); got != want {
			t.Errorf("in sending hours at %s: %v", at, got)
		}
	}
	for _, tc := range []struct{ at, next string }{
		{"2017-10-20T07:59:00+02:00", "2017-10-20T08:00:00+02:00"},
		{"2017-10-20T08:00:00+02:00", "2017-10-21T08:00:00+02:00"},
		{"2017-10-28T09:00:00+02:00", "2017-10-29T08:00:00+01:00"}, // the clocks go back that night
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		want, _ := time.Parse(time.RFC3339, tc.next)
		if got := reminder.Daily(reminder.SendHour).Next(at); !got.Equal(want) {
			t.Errorf("after %s: next run %s, want %s", tc.at, got, want)
		}
	}
}
