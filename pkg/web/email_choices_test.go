package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portail/pkg/apptest"
)

// emailSwitches reads the account's two email switches.
func emailSwitches(t *testing.T, e *apptest.Env, email string) (alerts, reminders bool) {
	t.Helper()
	if err := e.App.DB.QueryRow(`SELECT a.invoice_alerts, a.due_reminders FROM accounts a JOIN tenants t ON t.id = a.tenant_id
		WHERE t.slug = 'sistec' AND a.email = $1`, email).Scan(&alerts, &reminders); err != nil {
		t.Fatal(err)
	}
	return alerts, reminders
}

// TestUnsubscribeFromRemindersWithoutLogin: the link of a reminder email
// (the account's unsubscribe link with ?liste=rappels) stops the reminders
// and nothing else, then offers to stop the alerts too.
func TestUnsubscribeFromRemindersWithoutLogin(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	var token string
	e.App.DB.QueryRow(`SELECT unsubscribe_token FROM accounts a JOIN tenants t ON t.id = a.tenant_id
		WHERE t.slug = 'sistec' AND a.email = 'demo@demo.fr'`).Scan(&token)
	link := e.URL("sistec.localhost", "/desabonnement/"+token+"?liste=rappels")
	anon := e.Client()

	res, body := fetch(t, anon, link)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Ne plus recevoir ces rappels") || !strings.Contains(body, "demo@demo.fr") {
		t.Fatalf("reminders' unsubscribe page: %d\n%s", res.StatusCode, body)
	}
	if alerts, reminders := emailSwitches(t, e, "demo@demo.fr"); !alerts || !reminders {
		t.Fatal("opening the link (as a mail scanner would) changed a switch")
	}
	res, body = post(t, anon, link, url.Values{})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "ne recevra plus de rappel avant l'échéance") ||
		!strings.Contains(body, "Ne plus recevoir non plus les alertes") {
		t.Fatalf("unsubscribe from reminders: %d\n%s", res.StatusCode, body)
	}
	if alerts, reminders := emailSwitches(t, e, "demo@demo.fr"); !alerts || reminders {
		t.Fatalf("after stopping the reminders: alerts %v, reminders %v; want alerts only", alerts, reminders)
	}
	// The other switch, offered on the same page.
	res, body = post(t, anon, e.URL("sistec.localhost", "/desabonnement/"+token+"?liste=alertes"), url.Values{})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "ne recevra plus d'alerte") {
		t.Fatalf("unsubscribe from alerts too: %d\n%s", res.StatusCode, body)
	}
	if alerts, reminders := emailSwitches(t, e, "demo@demo.fr"); alerts || reminders {
		t.Fatalf("after stopping both: alerts %v, reminders %v", alerts, reminders)
	}
	// Another commune's host does not know the token.
	if res, _ := fetch(t, anon, e.URL("belcastel.localhost", "/desabonnement/"+token+"?liste=rappels")); res.StatusCode != http.StatusNotFound {
		t.Errorf("sistec's token on belcastel's host: %d", res.StatusCode)
	}
}

// TestEmailChoicesInMesInformations: "Mes informations" shows one switch
// per kind of email the commune sends, and saves them apart.
func TestEmailChoicesInMesInformations(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	page := e.URL("sistec.localhost", "/informations")
	_, body := fetch(t, c, page)
	for _, want := range []string{"Je souhaite recevoir par courriel :",
		`name="alertes" type="checkbox" value="1" checked`, "une alerte lors de la mise en ligne de nouvelles factures",
		`name="rappels" type="checkbox" value="1" checked`, "un rappel 5 jours avant l'échéance des factures non réglées"} {
		if !strings.Contains(body, want) {
			t.Fatalf("Mes informations lacks %q", want)
		}
	}
	// Untick the reminders, keep the alerts.
	res, _ := post(t, c, e.URL("sistec.localhost", "/informations/courriels"), url.Values{"alertes": {"1"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	if alerts, reminders := emailSwitches(t, e, "demo@demo.fr"); !alerts || reminders {
		t.Fatalf("after unticking the reminders: alerts %v, reminders %v", alerts, reminders)
	}
	_, body = fetch(t, c, page)
	if !strings.Contains(body, "Vos choix de courriels sont enregistrés.") || strings.Contains(body, `name="rappels" type="checkbox" value="1" checked`) {
		t.Fatal("the page does not show the saved choice")
	}
	// A commune without reminders neither shows nor changes that switch.
	if _, err := e.App.DB.Exec(`UPDATE tenants SET reminders_enabled = false WHERE slug = 'sistec'`); err != nil {
		t.Fatal(err)
	}
	e.App.Tenants.Invalidate()
	post(t, c, e.URL("sistec.localhost", "/informations/courriels"), url.Values{"alertes": {"1"}, "rappels": {"1"}})
	if _, reminders := emailSwitches(t, e, "demo@demo.fr"); reminders {
		t.Fatal("a commune without reminders turned them on")
	}
	if _, body = fetch(t, c, page); strings.Contains(body, `name="rappels"`) {
		t.Fatal("a commune without reminders offers them")
	}
}

// TestLoginReturnsToTheRequestedPage: a link into the resident's space
// (a reminder's pay link) leads to the login, then back to it; never to
// another site.
func TestLoginReturnsToTheRequestedPage(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := e.Client()
	res, _ := fetch(t, c, e.URL("sistec.localhost", "/factures?statut=reglees"))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/?suite=%2Ffactures%3Fstatut%3Dreglees" {
		t.Fatalf("anonymous visit: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	_, body := fetch(t, c, e.URL("sistec.localhost", res.Header.Get("Location")))
	if !strings.Contains(body, `<input type="hidden" name="suite" value="/factures?statut=reglees">`) {
		t.Fatal("the login form does not carry the page to return to")
	}
	for next, want := range map[string]string{
		"/factures?statut=reglees":  "/factures?statut=reglees",
		"//evil.example/x":          "/accueil",
		"/\\evil.example":           "/accueil",
		"https://evil.example/":     "/accueil",
		"/factures\r\nSet-Cookie:x": "/accueil",
		"factures":                  "/accueil",
		"":                          "/accueil",
	} {
		c := e.Client()
		res, _ := post(t, c, e.URL("sistec.localhost", "/connexion"), url.Values{"email": {"demo@demo.fr"}, "password": {strongPassword}, "suite": {next}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
			t.Errorf("login with suite %q: %d %s, want %s", next, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
	// Already logged in: the login page sends straight there.
	c = login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	res, _ = fetch(t, c, e.URL("sistec.localhost", "/?suite=%2Fpaiements"))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/paiements" {
		t.Errorf("logged in, login page with suite: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}
