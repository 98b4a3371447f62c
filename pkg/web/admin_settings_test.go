package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/audit"
	"portail/pkg/dbtest"
	"portail/pkg/staff"
	"portail/pkg/tenant"
)

// changesOf reads the changes an audit entry of the tenant service records.
func changesOf(t *testing.T, e audit.Entry) []tenant.Change {
	t.Helper()
	var d struct {
		Changes []tenant.Change `json:"changes"`
	}
	if err := json.Unmarshal(e.Details, &d); err != nil {
		t.Fatal(err)
	}
	return d.Changes
}

const payButton = `<button type="submit" class="primary">Payer la facture</button>`

func communeVersion(t *testing.T, e *apptest.Env, slug string) int64 {
	t.Helper()
	return int64(countRows(t, e, `SELECT version FROM tenants WHERE slug = $1`, slug))
}

// adminOf logs in a new administrator of slug, second factor enrolled.
func adminOf(t *testing.T, e *apptest.Env, slug string) *http.Client {
	t.Helper()
	m := newStaff(t, e, slug, "admin@"+slug+".fr", staff.RoleAdmin)
	c, _ := staffLogin(t, e, slug+".localhost", m.Email, staffPassword)
	enrolAdmin(t, e, c, slug+".localhost")
	return c
}

// TestSettingsScreen: the administrator changes what the commune may
// change itself, audited before → after; the operator's settings are shown
// read-only; a form based on an older version is refused in French with
// nothing lost; an agent or a viewer may neither open nor post it.
func TestSettingsScreen(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	host := "sistec.localhost"
	admin := adminOf(t, e, "sistec")
	res, body := fetch(t, admin, e.URL(host, "/admin/parametres"))
	if res.StatusCode != 200 || !strings.Contains(body, `value="05 61 00 19 30"`) || !strings.Contains(body, "004200") ||
		!strings.Contains(body, "gérés par l'exploitant") || strings.Contains(body, `name="payfip`) {
		t.Fatalf("settings page: %d\n%s", res.StatusCode, body)
	}
	v := communeVersion(t, e, "sistec")
	form := url.Values{"version": {fmt.Sprint(v)}, "contact_phone": {"05 61 99 99 99"}, "contact_hours": {"le lundi"},
		"contact_email": {"facturation@sistec.localhost"}, "paperless": {"1"}, "reminders_enabled": {"1"}, "reminders_days_before": {"7"}}
	res, body = post(t, admin, e.URL(host, "/admin/parametres"), form)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d %s", res.StatusCode, body)
	}
	_, body = fetch(t, admin, e.URL(host, "/admin/parametres"))
	if !strings.Contains(body, "Les paramètres de la commune ont été enregistrés.") || !strings.Contains(body, `value="05 61 99 99 99"`) {
		t.Fatalf("after save: %s", body)
	}
	cur, _ := e.App.Tenants.BySlug(context.Background(), "sistec")
	if cur.ContactPhone != "05 61 99 99 99" || cur.InvoiceAlerts || !cur.PaperlessEnabled || cur.RemindersDaysBefore != 7 || cur.Version != v+1 {
		t.Fatalf("commune after save: %+v", cur)
	}
	entry := lastEntry(t, e, tenant.ActionUpdated)
	if changes := changesOf(t, entry); entry.ActorKind != audit.KindStaff ||
		!slices.Contains(changes, tenant.Change{Field: "contact.phone", Before: "05 61 00 19 30", After: "05 61 99 99 99"}) ||
		!slices.Contains(changes, tenant.Change{Field: "features.invoice_alerts", Before: "true", After: "false"}) {
		t.Fatalf("audit entry: %+v %s", entry, entry.Details)
	}
	// The same form again, based on the old version: refused, told, kept.
	form.Set("contact_phone", "05 00 00 00 00")
	res, body = post(t, admin, e.URL(host, "/admin/parametres"), form)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "modifiés entre-temps par Agent admin") ||
		!strings.Contains(body, "contact.phone") || !strings.Contains(body, `value="05 00 00 00 00"`) ||
		!strings.Contains(body, fmt.Sprintf(`name="version" value="%d"`, v+1)) {
		t.Fatalf("stale form: %d\n%s", res.StatusCode, body)
	}
	if now, _ := e.App.Tenants.BySlug(context.Background(), "sistec"); now.ContactPhone != "05 61 99 99 99" {
		t.Fatal("a stale form overwrote the phone")
	}
	// A bad address: the message is tied to its field.
	form.Set("version", fmt.Sprint(v+1))
	form.Set("contact_email", "pas une adresse")
	res, body = post(t, admin, e.URL(host, "/admin/parametres"), form)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="contact_email" name="contact_email" type="email" required value="pas une adresse" aria-invalid="true" aria-describedby="message"`) {
		t.Fatalf("bad email: %d\n%s", res.StatusCode, body)
	}
	// Agents and viewers: 403, nothing changed.
	for _, role := range []string{staff.RoleAgent, staff.RoleViewer} {
		m := newStaff(t, e, "sistec", role+"@sistec.fr", role)
		c, _ := staffLogin(t, e, host, m.Email, staffPassword)
		for _, p := range []string{"/admin/parametres", "/admin/parametres/paiements"} {
			if res, _ := fetch(t, c, e.URL(host, p)); res.StatusCode != http.StatusForbidden {
				t.Errorf("%s GET %s: %d", role, p, res.StatusCode)
			}
		}
		form.Set("contact_email", "facturation@sistec.localhost")
		if res, _ := post(t, c, e.URL(host, "/admin/parametres"), form); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s POST: %d", role, res.StatusCode)
		}
		if res, _ := post(t, c, e.URL(host, "/admin/parametres/paiements"), url.Values{"suspend": {"1"}, "version": {fmt.Sprint(v + 1)}}); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s suspends payments: %d", role, res.StatusCode)
		}
	}
	if communeVersion(t, e, "sistec") != v+1 {
		t.Fatal("a refused post changed the commune")
	}
}

// TestTextsScreen: an agent previews the notice and the welcome text as
// residents will see them, saves them with display dates; residents see
// the notice only between those dates; a viewer reads but cannot post.
func TestTextsScreen(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	agent := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, _ := staffLogin(t, e, host, agent.Email, staffPassword)
	res, body := fetch(t, c, e.URL(host, "/admin/textes"))
	if res.StatusCode != 200 || !strings.Contains(body, "Aperçu tel que les redevables le verront") ||
		!strings.Contains(body, `<h1 id="notice-title">Information importante</h1>`) || !strings.Contains(body, "Bienvenue sur le portail de dématérialisation") {
		t.Fatalf("texts page: %d\n%s", res.StatusCode, body)
	}
	v := communeVersion(t, e, "sistec")
	today := time.Now().In(parisLoc(t)).Format("2006-01-02")
	tomorrow := time.Now().In(parisLoc(t)).AddDate(0, 0, 1).Format("2006-01-02")
	form := url.Values{"version": {fmt.Sprint(v)}, "notice": {"Coupure <script>alert(1)</script>\nle 3 mars"},
		"welcome": {"Bienvenue à Sistec"}, "notice_from": {tomorrow}, "action": {"apercu"}}
	res, body = post(t, c, e.URL(host, "/admin/textes"), form)
	if res.StatusCode != 200 || !strings.Contains(body, "<p>Coupure &lt;script&gt;alert(1)&lt;/script&gt;</p><p>le 3 mars</p>") ||
		!strings.Contains(body, "n'est pas affichée aujourd'hui") || strings.Contains(body, "<script>alert") {
		t.Fatalf("preview: %d\n%s", res.StatusCode, body)
	}
	if communeVersion(t, e, "sistec") != v {
		t.Fatal("a preview saved the texts")
	}
	form.Set("action", "enregistrer")
	form.Set("notice_until", today) // before the start: refused, tied to its field
	res, body = post(t, c, e.URL(host, "/admin/textes"), form)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="notice_until" name="notice_until" type="date" value="`+today+`" aria-invalid="true"`) {
		t.Fatalf("dates in the wrong order: %d\n%s", res.StatusCode, body)
	}
	form.Set("notice_until", "")
	if res, body := post(t, c, e.URL(host, "/admin/textes"), form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", res.StatusCode, body)
	}
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	resident := login(t, e, host, "demo@demo.fr", strongPassword, false)
	_, home := fetch(t, resident, e.URL(host, "/accueil"))
	if strings.Contains(home, "Coupure") || !strings.Contains(home, "Bienvenue à Sistec") {
		t.Fatalf("notice shown before its start date:\n%s", home)
	}
	cur, _ := e.App.Tenants.BySlug(context.Background(), "sistec")
	next := cur.Settings()
	next.Texts.NoticeFrom = today
	if _, err := e.App.TenantService.Update(context.Background(), cur.ID, cur.Version, next, tenant.GroupTexts); err != nil {
		t.Fatal(err)
	}
	_, home = fetch(t, resident, e.URL(host, "/accueil"))
	if !strings.Contains(home, "<p>Coupure &lt;script&gt;alert(1)&lt;/script&gt;</p>") {
		t.Fatalf("notice not shown from its start date:\n%s", home)
	}
	viewer := newStaff(t, e, "sistec", "lecteur@sistec.fr", staff.RoleViewer)
	vc, _ := staffLogin(t, e, host, viewer.Email, staffPassword)
	if res, body := fetch(t, vc, e.URL(host, "/admin/textes")); res.StatusCode != 200 || strings.Contains(body, `name="notice"`) {
		t.Fatalf("viewer's texts page: %d", res.StatusCode)
	}
	form.Set("version", fmt.Sprint(communeVersion(t, e, "sistec")))
	form.Set("notice", "par un lecteur")
	if res, _ := post(t, vc, e.URL(host, "/admin/textes"), form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer's post: %d", res.StatusCode)
	}
	if cur, _ := e.App.Tenants.BySlug(context.Background(), "sistec"); strings.Contains(cur.ImportantNotice, "lecteur") {
		t.Fatal("a viewer changed the notice")
	}
}

func parisLoc(t *testing.T) *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSuspendingOnlinePayments: the administrator confirms, then no
// invoice of sistec can be paid online ("Le paiement a été temporairement
// suspendu."), while belcastel still pays; then payments resume.
func TestSuspendingOnlinePayments(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	admin := adminOf(t, e, "sistec")
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	activateOn(t, e, "belcastel.localhost", "demo@demo.fr", strongPassword)
	sistec := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	belcastel := login(t, e, "belcastel.localhost", "demo@demo.fr", strongPassword, false)
	sistecInvoice := e.URL("sistec.localhost", fmt.Sprintf("/factures/%d", invoiceIDByNumber(t, e, "2017-020-002187")))
	belcastelInvoice := e.URL("belcastel.localhost", fmt.Sprintf("/factures/%d", invoiceIDByNumber(t, e, "EAU-2024-000456")))
	if _, body := fetch(t, sistec, sistecInvoice); !strings.Contains(body, payButton) {
		t.Fatal("payable before the suspension")
	}
	res, body := fetch(t, admin, e.URL("sistec.localhost", "/admin/parametres/paiements"))
	if res.StatusCode != 200 || !strings.Contains(body, "Suspendre tous les paiements en ligne ?") || !strings.Contains(body, "Confirmer la suspension") {
		t.Fatalf("confirmation step: %d\n%s", res.StatusCode, body)
	}
	v := communeVersion(t, e, "sistec")
	res, _ = post(t, admin, e.URL("sistec.localhost", "/admin/parametres/paiements"), url.Values{"suspend": {"1"}, "version": {fmt.Sprint(v)}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("suspend: %d", res.StatusCode)
	}
	if _, body := fetch(t, sistec, sistecInvoice); strings.Contains(body, payButton) || !strings.Contains(body, "Le paiement a été temporairement suspendu.") {
		t.Fatalf("sistec still payable:\n%s", body)
	}
	if _, body := fetch(t, belcastel, belcastelInvoice); !strings.Contains(body, payButton) {
		t.Fatalf("belcastel no longer payable:\n%s", body)
	}
	if got := lastEntry(t, e, tenant.ActionUpdated); !slices.Equal(changesOf(t, got), []tenant.Change{{Field: "payments.suspended", Before: "false", After: "true"}}) {
		t.Fatalf("audit: %s", got.Details)
	}
	// A second tab's stale confirmation is refused.
	res, body = post(t, admin, e.URL("sistec.localhost", "/admin/parametres/paiements"), url.Values{"suspend": {"0"}, "version": {fmt.Sprint(v)}})
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, "modifiés entre-temps") {
		t.Fatalf("stale resume: %d", res.StatusCode)
	}
	res, _ = post(t, admin, e.URL("sistec.localhost", "/admin/parametres/paiements"), url.Values{"suspend": {"0"}, "version": {fmt.Sprint(v + 1)}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("resume: %d", res.StatusCode)
	}
	if _, body := fetch(t, sistec, sistecInvoice); !strings.Contains(body, payButton) {
		t.Fatal("not payable after resuming")
	}
	// Another commune's administrator cannot reach sistec's switch.
	other := adminOf(t, e, "belcastel")
	res, _ = post(t, other, e.URL("sistec.localhost", "/admin/parametres/paiements"), url.Values{"suspend": {"1"}, "version": {fmt.Sprint(v + 2)}})
	if res.Header.Get("Location") != "/admin/connexion" || communeVersion(t, e, "sistec") != v+2 {
		t.Fatalf("belcastel's session on sistec: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestSuspendedCommune: every page of its host answers the maintenance
// page (503, Retry-After), residents' and staff's alike, while PayFiP's
// notification for an attempt in flight is still applied; resuming
// reopens it. Unknown hosts still get "Portail inconnu".
func TestSuspendedCommune(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	c := login(t, e, host, "demo@demo.fr", strongPassword, false)
	payfipURL := startPayment(t, e, c, host, "2017-020-002059")

	ctx := audit.WithActor(context.Background(), audit.System)
	cur, _ := e.App.Tenants.BySlug(ctx, "sistec")
	if _, err := e.App.TenantService.Suspend(ctx, cur.ID, cur.Version); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/accueil", "/factures", "/activation", "/admin/connexion", "/admin", "/nimporte"} {
		res, body := fetch(t, c, e.URL(host, p))
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
			!strings.Contains(body, "Portail en maintenance") || !strings.Contains(body, "MAIRIE DE SISTEC") || !strings.Contains(body, "/theme.css") {
			t.Errorf("%s while suspended: %d %q", p, res.StatusCode, res.Header.Get("Retry-After"))
		}
	}
	if res, _ := post(t, c, e.URL(host, "/connexion"), url.Values{"email": {"demo@demo.fr"}, "password": {strongPassword}}); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("login while suspended: %d", res.StatusCode)
	}
	if res, _ := fetch(t, c, e.URL(host, "/theme.css")); res.StatusCode != 200 {
		t.Errorf("theme of the maintenance page: %d", res.StatusCode)
	}
	if res, _ := fetch(t, c, e.URL("belcastel.localhost", "/")); res.StatusCode != 200 {
		t.Errorf("another commune: %d", res.StatusCode)
	}
	if res, _ := fetch(t, c, e.URL("inconnu.localhost", "/")); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown host: %d", res.StatusCode)
	}
	// The resident pays on PayFiP's page: PayFiP's notification is applied.
	back := payOnSimulator(t, e, payfipURL.String(), "P")
	deadline := time.Now().Add(15 * time.Second)
	for countRows(t, e, `SELECT count(*) FROM invoices WHERE number = '2017-020-002059' AND status = 'paid'`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("PayFiP's notification for a suspended commune was not applied")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := countRows(t, e, `SELECT count(*) FROM payments WHERE status = 'paid'`); n != 1 {
		t.Fatalf("%d paid attempts", n)
	}
	if res, _ := fetch(t, c, back); res.StatusCode == http.StatusServiceUnavailable {
		t.Errorf("PayFiP's return while suspended: %d", res.StatusCode)
	}
	cur, _ = e.App.Tenants.BySlug(ctx, "sistec")
	if _, err := e.App.TenantService.Resume(ctx, cur.ID, cur.Version); err != nil {
		t.Fatal(err)
	}
	if res, body := fetch(t, c, e.URL(host, "/factures")); res.StatusCode != 200 || strings.Contains(body, "maintenance") {
		t.Fatalf("after resuming: %d", res.StatusCode)
	}
}

// TestBrandingAssetsRevalidate: /logo and /theme.css, served from the
// cached commune without reading the database, carry a strong ETag
// from their content and answer 304 to If-None-Match; a change of colour
// changes the tag.
func TestBrandingAssetsRevalidate(t *testing.T) {
	d, counter := dbtest.NewCounted(t)
	e := apptest.Start(t, apptest.Options{NoPeriodicJobs: true, DB: d})
	c := e.Client()
	tags := map[string]string{}
	fetch(t, c, e.URL("sistec.localhost", "/"))
	fetch(t, c, e.URL("belcastel.localhost", "/"))
	counter.Reset()

	for _, p := range []string{"/logo", "/theme.css"} {
		res, body := fetch(t, c, e.URL("sistec.localhost", p))
		tag := res.Header.Get("ETag")
		if res.StatusCode != 200 || !strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, "W/") || body == "" ||
			!strings.Contains(res.Header.Get("Cache-Control"), "max-age=") {
			t.Fatalf("%s: %d etag %q cache %q", p, res.StatusCode, tag, res.Header.Get("Cache-Control"))
		}
		tags[p] = tag
		req, _ := http.NewRequest(http.MethodGet, e.URL("sistec.localhost", p), nil)
		req.Header.Set("If-None-Match", tag)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotModified || res.Header.Get("ETag") != tag {
			t.Fatalf("%s revalidation: %d", p, res.StatusCode)
		}
		if res, _ := fetch(t, c, e.URL("belcastel.localhost", p)); res.Header.Get("ETag") == tag {
			t.Fatalf("%s: two communes share a tag", p)
		}
	}
	for _, q := range counter.Queries() {
		if strings.Contains(q, "FROM tenants") {
			t.Errorf("an asset request read the database: %s", q)
		}
	}
	ctx := context.Background()
	cur, _ := e.App.Tenants.BySlug(ctx, "sistec")
	next := cur.Settings()
	next.Branding.Colors.Primary = "#123456"
	if _, err := e.App.TenantService.Update(ctx, cur.ID, cur.Version, next, tenant.GroupBranding); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.URL("sistec.localhost", "/theme.css"), nil)
	req.Header.Set("If-None-Match", tags["/theme.css"])
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("ETag") == tags["/theme.css"] {
		t.Fatalf("after a colour change: %d %s", res.StatusCode, res.Header.Get("ETag"))
	}
}

// activateOn activates email's account on host when the same address
// already received another commune's activation email.
func activateOn(t *testing.T, e *apptest.Env, host, email, pw string) {
	t.Helper()
	post(t, e.Client(), e.URL(host, "/activation"), url.Values{"email": {email}})
	m := e.WaitMail(email, "Accès au portail des factures", e.URL(host, "/activation/"))
	link := apptest.LinkIn(t, m, e.URL(host, "/activation/"))
	_, body := post(t, e.Client(), link, url.Values{"password": {pw}, "confirm": {pw}})
	if !strings.Contains(body, "Le nouveau mot de passe a été enregistré avec succès.") {
		t.Fatalf("password not saved on %s: %s", host, body)
	}
}
