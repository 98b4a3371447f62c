package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"portail/pkg/apptest"
	"portail/pkg/config"
	"portail/pkg/imports"
	"portail/pkg/mail"
)

// sendContact posts a message to the service as c's resident.
func sendContact(t *testing.T, e *apptest.Env, c *http.Client, host, subject, body string) {
	t.Helper()
	res, page := post(t, c, e.URL(host, "/contact"), url.Values{"subject": {subject}, "body": {body}})
	if res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusOK {
		t.Fatalf("contact on %s: %d\n%s", host, res.StatusCode, page)
	}
}

// accountID is the id of the account of email in the commune slug.
func accountID(t *testing.T, e *apptest.Env, slug, email string) int64 {
	t.Helper()
	var id int64
	if err := e.App.DB.QueryRow(`SELECT a.id FROM accounts a JOIN tenants t ON t.id = a.tenant_id
		WHERE t.slug = $1 AND a.email = $2`, slug, email).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func tenantOf(t *testing.T, e *apptest.Env, accountID int64) int64 {
	t.Helper()
	var id int64
	if err := e.App.DB.QueryRow(`SELECT tenant_id FROM accounts WHERE id = $1`, accountID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// exported is the part of the data download the tests read.
type exported struct {
	Compte   map[string]any `json:"compte"`
	Choix    map[string]any `json:"choix"`
	Factures []struct {
		Numero string `json:"numero"`
	} `json:"factures"`
	Paiements []struct {
		Reference string `json:"reference_payfip"`
		Email     string `json:"adresse_mail_transmise"`
		Factures  []struct {
			Numero string `json:"numero"`
		} `json:"factures"`
	} `json:"paiements"`
	Messages []struct {
		De      string `json:"de"`
		Message string `json:"message"`
	} `json:"messages"`
	Connexions []struct {
		Evenement string `json:"evenement"`
		IP        string `json:"adresse_ip"`
	} `json:"connexions"`
}

// TestDataDownloadHoldsOnlyTheResidentsOwnData: "Télécharger mes données"
// gives a JSON attachment with the resident's account, invoices, payments,
// messages both ways, choices and logins, and nothing of another resident
// of the same commune or of the same address in another commune.
func TestDataDownloadHoldsOnlyTheResidentsOwnData(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	const sistec, belcastel = "sistec.localhost", "belcastel.localhost"
	for _, r := range []struct{ host, email string }{{sistec, "demo@demo.fr"}, {sistec, "marie.durand@demo.fr"}, {belcastel, "demo@demo.fr"}} {
		activateOn(t, e, r.host, r.email, strongPassword)
	}
	// A failed login, then the real one.
	if res, _ := post(t, e.Client(), e.URL(sistec, "/connexion"), url.Values{"email": {"demo@demo.fr"}, "password": {"pas le bon"}}); res.StatusCode == http.StatusSeeOther {
		t.Fatal("wrong password accepted")
	}
	c := login(t, e, sistec, "demo@demo.fr", strongPassword, false)
	sendContact(t, e, c, sistec, "Question cantine", "Mon message à moi")
	startPayment(t, e, c, sistec, "2017-020-002059")
	demoID := accountID(t, e, "sistec", "demo@demo.fr")
	if _, err := e.App.DB.Exec(`INSERT INTO messages (tenant_id, account_id, thread_id, direction, subject, body)
		SELECT tenant_id, account_id, thread_id, 'staff', 'Re: Question cantine', 'La réponse du service' FROM messages
		WHERE account_id = $1`, demoID); err != nil {
		t.Fatal(err)
	}
	marie := login(t, e, sistec, "marie.durand@demo.fr", strongPassword, false)
	sendContact(t, e, marie, sistec, "Autre question", "Message de Marie")
	other := login(t, e, belcastel, "demo@demo.fr", strongPassword, false)
	sendContact(t, e, other, belcastel, "Eau", "Message de Belcastel")

	_, page := fetch(t, c, e.URL(sistec, "/informations"))
	if !strings.Contains(page, `href="/informations/donnees"`) || !strings.Contains(page, "Télécharger mes données") {
		t.Fatal("Mes informations has no download link")
	}
	res, err := c.Get(e.URL(sistec, "/informations/donnees"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	paris, _ := time.LoadLocation("Europe/Paris")
	today := time.Now().In(paris).Format(time.DateOnly)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Disposition") != `attachment; filename="mes-donnees-sistec-`+today+`.json"` ||
		res.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("download: %d %v", res.StatusCode, res.Header)
	}
	var x exported
	if err := json.Unmarshal(raw, &x); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	if x.Compte["reference"] != "SISTEC560" || x.Compte["adresse_mail"] != "demo@demo.fr" || x.Compte["nom"] != "Test SISTEC560" ||
		x.Compte["statut"] != "active" {
		t.Errorf("account: %v", x.Compte)
	}
	if x.Choix["alertes_nouvelles_factures"] != true || x.Choix["factures_papier"] != true {
		t.Errorf("choices: %v", x.Choix)
	}
	wantInvoices := countRows(t, e, `SELECT count(*) FROM invoices WHERE account_id = $1`, demoID)
	if len(x.Factures) != wantInvoices || wantInvoices == 0 {
		t.Errorf("%d invoices in the file, %d in the database", len(x.Factures), wantInvoices)
	}
	if len(x.Paiements) != 1 || x.Paiements[0].Email != "demo@demo.fr" || len(x.Paiements[0].Factures) != 1 ||
		x.Paiements[0].Factures[0].Numero != "2017-020-002059" || x.Paiements[0].Reference == "" {
		t.Errorf("payments: %+v", x.Paiements)
	}
	if len(x.Messages) != 2 || x.Messages[0].De != "vous" || x.Messages[0].Message != "Mon message à moi" ||
		x.Messages[1].De != "le service" || x.Messages[1].Message != "La réponse du service" {
		t.Errorf("messages: %+v", x.Messages)
	}
	var ok, failed int
	for _, l := range x.Connexions {
		if l.IP != "127.0.0.1" {
			t.Errorf("login without its address: %+v", l)
		}
		switch l.Evenement {
		case "connexion":
			ok++
		case "échec de connexion":
			failed++
		}
	}
	if ok != 1 || failed != 1 {
		t.Errorf("logins: %+v", x.Connexions)
	}
	for _, foreign := range []string{"Marie", "marie.durand", "Message de Marie", "BEL0017", "BELCASTEL", "Message de Belcastel"} {
		if strings.Contains(strings.ToUpper(string(raw)), strings.ToUpper(foreign)) {
			t.Errorf("the file holds another resident's %q", foreign)
		}
	}
	// Only a logged-in resident downloads.
	if res, _ := fetch(t, e.Client(), e.URL(sistec, "/informations/donnees")); res.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous download: %d", res.StatusCode)
	}
}

// TestClosingTheAccount: the resident closes their account with their
// password: personal data is erased in the database, invoices and payments
// stay under the payer's reference, every session ends, a closing email is
// sent, and the address no longer logs in. The commune importing the same
// reference again makes it a new pending account.
func TestClosingTheAccount(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	const host = "sistec.localhost"
	activateOn(t, e, host, "demo@demo.fr", strongPassword)
	activateOn(t, e, "belcastel.localhost", "demo@demo.fr", strongPassword)
	// A failed login: its audit entry holds the address.
	post(t, e.Client(), e.URL(host, "/connexion"), url.Values{"email": {"demo@demo.fr"}, "password": {"pas le bon"}})
	c := login(t, e, host, "demo@demo.fr", strongPassword, true)
	other := login(t, e, host, "demo@demo.fr", strongPassword, false)
	sendContact(t, e, c, host, "Question", "Un message personnel")
	startPayment(t, e, c, host, "2017-020-002059")
	id := accountID(t, e, "sistec", "demo@demo.fr")
	if n := countRows(t, e, `SELECT count(*) FROM audit_log WHERE object_type = 'account' AND object_id = $1::text
		AND details::text LIKE '%demo@demo.fr%'`, id); n == 0 {
		t.Fatal("no audit entry with the address before closing: the check below would prove nothing")
	}
	invoicesBefore := countRows(t, e, `SELECT count(*) FROM invoices WHERE account_id = $1`, id)
	paymentsBefore := countRows(t, e, `SELECT count(*) FROM payments WHERE account_id = $1`, id)

	// An email queued for later (an alert, a reminder) to the address.
	queued, err := e.App.Jobs.Insert(context.Background(), mail.SendArgs{Email: mail.Email{TenantID: tenantOf(t, e, id),
		To: "demo@demo.fr", Template: "sessions_closed", Data: map[string]any{"Link": "x", "DisplayName": "x"}}},
		&river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	_, page := fetch(t, c, e.URL(host, "/informations/fermeture"))
	for _, want := range []string{"Fermer mon compte", "Ce qui est effacé", "Ce que la commune conserve", `name="password"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("closing page lacks %q", want)
		}
	}
	res, page := post(t, c, e.URL(host, "/informations/fermeture"), url.Values{"password": {"pas le bon"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "Le mot de passe est incorrect") {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	if n := countRows(t, e, `SELECT count(*) FROM accounts WHERE id = $1 AND status = 'active' AND email = 'demo@demo.fr'`, id); n != 1 {
		t.Fatal("a wrong password closed the account")
	}

	res, _ = post(t, c, e.URL(host, "/informations/fermeture"), url.Values{"password": {strongPassword}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/compte-ferme" {
		t.Fatalf("close: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, page = fetch(t, c, e.URL(host, "/compte-ferme"))
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "Votre compte est fermé") {
		t.Fatalf("closed page: %d", res.StatusCode)
	}

	// The rows.
	var row struct {
		Ref, Name, Email, Status, Hash string
		Alerts, Reminders, Paperless   bool
	}
	if err := e.App.DB.QueryRow(`SELECT external_ref, display_name, email, status, password_hash, invoice_alerts, due_reminders, paperless
		FROM accounts WHERE id = $1`, id).Scan(&row.Ref, &row.Name, &row.Email, &row.Status, &row.Hash, &row.Alerts, &row.Reminders, &row.Paperless); err != nil {
		t.Fatal(err)
	}
	if row.Ref != "SISTEC560" || row.Status != "closed" || row.Name != "Compte fermé" || strings.Contains(row.Email, "demo") ||
		!strings.HasSuffix(row.Email, ".invalid") || row.Hash != "" {
		t.Errorf("closed account: %+v", row)
	}
	for what, q := range map[string]string{
		"sessions":            `SELECT count(*) FROM sessions WHERE account_id = $1`,
		"remember-me tokens":  `SELECT count(*) FROM remember_tokens WHERE account_id = $1`,
		"one-time tokens":     `SELECT count(*) FROM account_tokens WHERE account_id = $1`,
		"message texts":       `SELECT count(*) FROM messages WHERE account_id = $1 AND (body LIKE '%personnel%' OR subject <> '')`,
		"payment addresses":   `SELECT count(*) FROM payments WHERE account_id = $1 AND email <> ''`,
		"addresses in audit":  `SELECT count(*) FROM audit_log WHERE object_type = 'account' AND object_id = $1::text AND details::text LIKE '%demo@demo.fr%'`,
		"throttling counters": `SELECT count(*) FROM login_throttle WHERE key = 'demo@demo.fr' AND tenant_id = (SELECT tenant_id FROM accounts WHERE id = $1)`,
	} {
		if n := countRows(t, e, q, id); n != 0 {
			t.Errorf("%s left: %d", what, n)
		}
	}
	if n := countRows(t, e, `SELECT count(*) FROM invoices WHERE account_id = $1`, id); n != invoicesBefore || n == 0 {
		t.Errorf("invoices: %d, were %d", n, invoicesBefore)
	}
	if n := countRows(t, e, `SELECT count(*) FROM payments WHERE account_id = $1`, id); n != paymentsBefore || n == 0 {
		t.Errorf("payments: %d, were %d", n, paymentsBefore)
	}
	if n := countRows(t, e, `SELECT count(*) FROM audit_log WHERE action = 'account.closed' AND object_id = $1::text
		AND details->>'reason' = 'resident' AND actor_kind = 'resident'`, id); n != 1 {
		t.Errorf("audit entries of the closure: %d", n)
	}
	e.WaitMail("demo@demo.fr", "Votre compte sur le portail des factures est fermé", "SISTEC560")
	if n := countRows(t, e, `SELECT count(*) FROM river_job WHERE id = $1 AND state = 'cancelled'`, queued.Job.ID); n != 1 {
		t.Error("the email queued to the address was not cancelled")
	}

	// Every session is over, the remember-me cookie too.
	for name, client := range map[string]*http.Client{"closing browser": c, "other browser": other} {
		if res, _ := fetch(t, client, e.URL(host, "/accueil")); res.StatusCode != http.StatusSeeOther {
			t.Errorf("%s still logged in: %d", name, res.StatusCode)
		}
	}
	// The address no longer logs in, activates or resets.
	res, _ = post(t, e.Client(), e.URL(host, "/connexion"), url.Values{"email": {"demo@demo.fr"}, "password": {strongPassword}})
	if res.StatusCode == http.StatusSeeOther && res.Header.Get("Location") == "/accueil" {
		t.Error("login after closure")
	}
	_, page = post(t, e.Client(), e.URL(host, "/activation"), url.Values{"email": {"demo@demo.fr"}})
	if !strings.Contains(page, "Activation impossible, adresse inconnue") {
		t.Error("activation of a closed account's address not refused")
	}
	// The same address in another commune is another account: untouched.
	login(t, e, "belcastel.localhost", "demo@demo.fr", strongPassword, false)

	// The commune imports the payer again: a new pending account.
	ctx := context.Background()
	s, _ := e.App.Tenants.BySlug(ctx, "sistec")
	rep, err := e.App.Imports.ImportNow(ctx, s.ID, imports.KindPayers, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "p.csv", Body: strings.NewReader("Référence;Nom;Email\nSISTEC560;Nouveau PAYEUR;nouveau@demo.fr\n")}, nil)
	if err != nil || rep.Status != imports.StatusImported {
		t.Fatalf("re-import: %v %+v", err, rep)
	}
	if n := countRows(t, e, `SELECT count(*) FROM accounts WHERE id = $1 AND status = 'pending' AND closed_at IS NULL
		AND display_name = 'Nouveau PAYEUR' AND email = 'nouveau@demo.fr'`, id); n != 1 {
		t.Fatal("re-imported reference is not a pending account with the imported name and address")
	}
	activateWithPassword(t, e, host, "nouveau@demo.fr", strongPassword)
	login(t, e, host, "nouveau@demo.fr", strongPassword, false)
}

// TestPrivacyPageAndFooterLink: "Données personnelles" tells the commune's
// contact and the retention periods of the settings, and every resident
// page links to it, a commune's own footer included.
func TestPrivacyPageAndFooterLink(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true, Config: func(c *config.Config) {
		c.Privacy.Messages = 180 * 24 * time.Hour
	}})
	res, page := fetch(t, e.Client(), e.URL("sistec.localhost", "/donnees-personnelles"))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("privacy page: %d", res.StatusCode)
	}
	for _, want := range []string{"MAIRIE DE SISTEC", "Responsable du traitement", "05 61 00 19 30", "facturation@sistec.localhost",
		"Sans connexion pendant 3 ans", "par courriel 30 jours avant", "messages avec le service : 6 mois", "journal de sécurité : 1 an",
		"journal des paiements : 10 ans", "DGFiP", "cnil.fr", "rectifier"} {
		if !strings.Contains(page, want) {
			t.Errorf("privacy page lacks %q\n%s", want, page)
		}
	}
	_, other := fetch(t, e.Client(), e.URL("belcastel.localhost", "/donnees-personnelles"))
	if !strings.Contains(other, "MAIRIE DE BELCASTEL") || strings.Contains(other, "SISTEC") {
		t.Error("belcastel's page is not belcastel's")
	}
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	pages := map[string]*http.Client{"/": e.Client(), "/activation": e.Client(), "/accessibilite": e.Client(),
		"/accueil": c, "/factures": c, "/informations": c, "/contact": c, "/informations/fermeture": c}
	for path, client := range pages {
		for _, host := range []string{"sistec.localhost", "belcastel.localhost"} {
			if host == "belcastel.localhost" && client == c {
				continue
			}
			_, body := fetch(t, client, e.URL(host, path))
			if !strings.Contains(body, `<a href="/donnees-personnelles">Données personnelles</a>`) {
				t.Errorf("%s%s: no link to the privacy page in the footer", host, path)
			}
		}
	}
}
