package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/staff"
)

// Tests of "Redevables", "Factures" and "Dématérialisation".

// staffOf logs in a new member of sistec with role and returns its client.
func staffClient(t *testing.T, e *apptest.Env, email, role string) *http.Client {
	t.Helper()
	m := newStaff(t, e, "sistec", email, role)
	c, next := staffLogin(t, e, "sistec.localhost", m.Email, staffPassword)
	if next != "/admin" {
		t.Fatalf("%s after login: %s", role, next)
	}
	return c
}

func accountIDByEmail(t *testing.T, e *apptest.Env, slug, email string) int64 {
	t.Helper()
	var id int64
	if err := e.App.DB.QueryRow(`SELECT a.id FROM accounts a JOIN tenants t ON t.id = a.tenant_id
		WHERE t.slug = $1 AND a.email = $2`, slug, email).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// invoiceRow is what a test reads of an invoice in the database.
func invoiceRow(t *testing.T, e *apptest.Env, id int64) string {
	t.Helper()
	var s string
	if err := e.App.DB.QueryRow(`SELECT status || '/' || paid_how || '/' || direct_debit || '/' || payment_suspended
		FROM invoices WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// An agent changes an invoice's status with a reason: the reason is
// required, the change shows in the invoice's history with its reason and
// its author, and the resident's page then shows the new state; direct
// debit and the suspension of the invoice's payment show to the resident
// as the manual words them.
func TestInvoiceChangesShowInHistoryAndToTheResident(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	agent := staffClient(t, e, "agent@sistec.fr", staff.RoleAgent)
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	resident := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	id := invoiceIDByNumber(t, e, "2017-020-002059")
	page := e.URL("sistec.localhost", fmt.Sprintf("/admin/factures/%d", id))
	residentPage := e.URL("sistec.localhost", fmt.Sprintf("/factures/%d", id))

	res, body := fetch(t, agent, page)
	if res.StatusCode != 200 || !strings.Contains(body, "Test SISTEC560") || !strings.Contains(body, "243,11 €") ||
		!strings.Contains(body, "le bouton « Payer la facture »") || !strings.Contains(body, "Écrite par l&#39;import n°") {
		t.Fatalf("invoice page: %d %s", res.StatusCode, body)
	}
	before := invoiceRow(t, e, id)
	res, body = post(t, agent, page+"/etat", url.Values{"status": {"treasury"}, "reason": {"   "}})
	if res.StatusCode != 422 || !strings.Contains(body, "Indiquez le motif de la modification.") ||
		!strings.Contains(body, `id="reason-status" name="reason" rows="2" maxlength="500" required aria-invalid="true" aria-describedby="message"`) {
		t.Fatalf("no reason: %d %s", res.StatusCode, body)
	}
	if invoiceRow(t, e, id) != before {
		t.Fatal("a change without reason was made")
	}

	res, _ = post(t, agent, page+"/etat", url.Values{"status": {"treasury"}, "reason": {"Titre exécutoire émis le 02/12"}})
	if res.StatusCode != 303 {
		t.Fatalf("to treasury: %d", res.StatusCode)
	}
	_, body = fetch(t, agent, page)
	for _, want := range []string{"L&#39;état de la facture est maintenant « en trésorerie ».",
		"État changé : « non réglée » → « en trésorerie »", "Motif : Titre exécutoire émis le 02/12", "Agent Agent agent"} {
		if !strings.Contains(body, want) {
			t.Errorf("after the change, the invoice page lacks %q", want)
		}
	}
	if got := lastEntry(t, e, "invoice.status_changed"); got.ActorKind != "staff" || got.ObjectID != fmt.Sprint(id) ||
		!strings.Contains(string(got.Details), `"reason": "Titre exécutoire émis le 02/12"`) && !strings.Contains(string(got.Details), `"reason":"Titre exécutoire émis le 02/12"`) {
		t.Errorf("audit entry %+v %s", got, got.Details)
	}
	if _, body := fetch(t, resident, residentPage); !strings.Contains(body, "en trésorerie") || !strings.Contains(body, "Facture en trésorerie") ||
		strings.Contains(body, "Payer la facture</button>") {
		t.Fatalf("the resident's page after treasury: %s", body)
	}
	// Paid by other means: the resident reads it paid.
	if res, _ := post(t, agent, page+"/etat", url.Values{"status": {"paid"}, "reason": {"Réglée au guichet de la trésorerie"}}); res.StatusCode != 303 {
		t.Fatalf("to paid: %d", res.StatusCode)
	}
	if got := invoiceRow(t, e, id); got != "paid/elsewhere/false/false" {
		t.Fatalf("after paid: %s", got)
	}
	if _, body := fetch(t, resident, residentPage); !strings.Contains(body, "réglée le") || !strings.Contains(body, "Cette facture est déjà réglée.") {
		t.Fatalf("the resident's page after paid: %s", body)
	}
	// Cancelled is refused from paid, with the reason why.
	res, body = post(t, agent, page+"/etat", url.Values{"status": {"cancelled"}, "reason": {"Erreur"}})
	if res.StatusCode != 422 || !strings.Contains(body, "Une facture réglée ne peut pas devenir « annulée »") {
		t.Fatalf("paid → cancelled: %d %s", res.StatusCode, body)
	}
	if res, _ := post(t, agent, page+"/etat", url.Values{"status": {"unpaid"}, "reason": {"Marquée réglée par erreur"}}); res.StatusCode != 303 {
		t.Fatalf("back to unpaid: %d", res.StatusCode)
	}
	// Direct debit, then the suspension: the resident reads the manual's words.
	if res, _ := post(t, agent, page+"/prelevement", url.Values{"on": {"1"}, "reason": {"Mandat SEPA reçu"}}); res.StatusCode != 303 {
		t.Fatalf("direct debit: %d", res.StatusCode)
	}
	if _, body := fetch(t, resident, residentPage); !strings.Contains(body, "Ma facture est en prélèvement automatique.") {
		t.Fatalf("the resident's page in direct debit: %s", body)
	}
	post(t, agent, page+"/prelevement", url.Values{"on": {"0"}, "reason": {"Mandat révoqué"}})
	if res, _ := post(t, agent, page+"/paiement-en-ligne", url.Values{"suspended": {"1"}, "reason": {"Litige en cours"}}); res.StatusCode != 303 {
		t.Fatalf("suspend: %d", res.StatusCode)
	}
	if _, body := fetch(t, resident, residentPage); !strings.Contains(body, "Le paiement a été temporairement suspendu.") {
		t.Fatalf("the resident's page when suspended: %s", body)
	}
	res, _ = post(t, resident, e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(id)}})
	if n := countRows(t, e, `SELECT count(*) FROM payments`); n != 0 {
		t.Fatalf("a suspended invoice was sent to PayFiP (%d)", res.StatusCode)
	}
	_, body = fetch(t, agent, page)
	for _, want := range []string{"Mise en prélèvement automatique", "Motif : Mandat SEPA reçu", "Retrait du prélèvement automatique",
		"Paiement en ligne suspendu", "Motif : Litige en cours", "« Le paiement a été temporairement suspendu. »"} {
		if !strings.Contains(body, want) {
			t.Errorf("the history lacks %q", want)
		}
	}
	if strings.Index(body, "Titre exécutoire") > strings.Index(body, "Mandat SEPA reçu") {
		t.Error("the history is not in time order")
	}
}

// While a resident is paying an invoice (an attempt is pending at
// PayFiP), its status and direct debit cannot change: the agent is told
// why and nothing changes.
func TestInvoiceChangeRefusedDuringPendingPayment(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	agent := staffClient(t, e, "agent@sistec.fr", staff.RoleAgent)
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	resident := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	id := invoiceIDByNumber(t, e, "2017-020-002059")
	res, _ := post(t, resident, e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(id)}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), e.PayFiP.URL) {
		t.Fatalf("payment start: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	page := e.URL("sistec.localhost", fmt.Sprintf("/admin/factures/%d", id))
	if _, body := fetch(t, agent, page); !strings.Contains(body, "Un paiement en ligne est en cours pour cette facture") ||
		!strings.Contains(body, "Paiement en cours") {
		t.Fatalf("the invoice page does not say a payment is in progress: %s", body)
	}
	before := invoiceRow(t, e, id)
	for path, form := range map[string]url.Values{
		"/etat":        {"status": {"paid"}, "reason": {"Réglée au guichet"}},
		"/prelevement": {"on": {"1"}, "reason": {"Mandat reçu"}},
	} {
		res, body := post(t, agent, page+path, form)
		if res.StatusCode != 422 || !strings.Contains(body, "Un paiement en ligne est en cours pour cette facture : son état ne peut pas être modifié tant que ce paiement n&#39;est pas terminé.") {
			t.Errorf("%s during a payment: %d %s", path, res.StatusCode, body)
		}
	}
	if got := invoiceRow(t, e, id); got != before {
		t.Fatalf("changed during a payment: %s → %s", before, got)
	}
	if n := countRows(t, e, `SELECT count(*) FROM audit_log WHERE action LIKE 'invoice.%'`); n != 0 {
		t.Fatalf("%d invoice changes journaled", n)
	}
	// Once the attempt is over, the change goes through.
	if _, err := e.App.DB.Exec(`UPDATE payments SET status = 'cancelled', resolved_at = now(), resolved_by = 'return'`); err != nil {
		t.Fatal(err)
	}
	if res, _ := post(t, agent, page+"/etat", url.Values{"status": {"paid"}, "reason": {"Réglée au guichet"}}); res.StatusCode != 303 {
		t.Fatalf("after the attempt: %d", res.StatusCode)
	}
}

// Disabling a payer ends their open session at their next request and
// stops their logins; enabling gives back an activated account.
func TestDisablingPayerEndsTheirSession(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	agent := staffClient(t, e, "agent@sistec.fr", staff.RoleAgent)
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	resident := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, true)
	if res, _ := fetch(t, resident, e.URL("sistec.localhost", "/accueil")); res.StatusCode != 200 {
		t.Fatalf("resident home: %d", res.StatusCode)
	}
	id := accountIDByEmail(t, e, "sistec", "demo@demo.fr")
	page := e.URL("sistec.localhost", fmt.Sprintf("/admin/redevables/%d", id))
	res, _ := post(t, agent, page+"/compte", url.Values{"action": {"disable"}})
	if res.StatusCode != 303 {
		t.Fatalf("disable: %d", res.StatusCode)
	}
	_, body := fetch(t, agent, page)
	for _, want := range []string{"Le compte est désactivé", "Désactivé", "Compte Activé → Désactivé", "Réactiver le compte"} {
		if !strings.Contains(body, want) {
			t.Errorf("payer page after disabling lacks %q", want)
		}
	}
	// The open session (and its remember-me cookie) end at the next request.
	if res, _ := fetch(t, resident, e.URL("sistec.localhost", "/accueil")); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("the disabled resident's session: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = post(t, e.Client(), e.URL("sistec.localhost", "/connexion"), url.Values{"email": {"demo@demo.fr"}, "password": {strongPassword}})
	if res.StatusCode == http.StatusSeeOther && res.Header.Get("Location") == "/accueil" {
		t.Fatal("a disabled resident logged in")
	}
	if got := lastEntry(t, e, "account.disabled"); got.ActorKind != "staff" || !strings.Contains(string(got.Details), `"before": "active"`) &&
		!strings.Contains(string(got.Details), `"before":"active"`) {
		t.Errorf("disable journaled as %+v %s", got, got.Details)
	}
	if res, _ := post(t, agent, page+"/compte", url.Values{"action": {"enable"}}); res.StatusCode != 303 {
		t.Fatalf("enable: %d", res.StatusCode)
	}
	if _, body := fetch(t, agent, page); !strings.Contains(body, "Le compte est réactivé (état : Activé).") {
		t.Fatalf("after enabling: %s", body)
	}
	login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
}

// "Renvoyer l'email d'activation" sends the resident's activation email,
// whose link activates the account; it is refused for an activated
// account.
func TestResendActivationEmail(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	agent := staffClient(t, e, "agent@sistec.fr", staff.RoleAgent)
	id := accountIDByEmail(t, e, "sistec", "marie.durand@demo.fr")
	page := e.URL("sistec.localhost", fmt.Sprintf("/admin/redevables/%d", id))
	if _, body := fetch(t, agent, page); !strings.Contains(body, "Non activé") || !strings.Contains(body, "Renvoyer l'email d'activation") {
		t.Fatalf("pending payer's page: %s", body)
	}
	if res, _ := post(t, agent, page+"/activation", nil); res.StatusCode != 303 {
		t.Fatalf("resend: %d", res.StatusCode)
	}
	if _, body := fetch(t, agent, page); !strings.Contains(body, "L&#39;email d&#39;activation a été renvoyé à marie.durand@demo.fr.") ||
		!strings.Contains(body, "Email d&#39;activation renvoyé") {
		t.Fatalf("after resend: %s", body)
	}
	m := e.WaitMail("marie.durand@demo.fr", "Accès au portail des factures")
	link := apptest.LinkIn(t, m, e.URL("sistec.localhost", "/activation/"))
	if _, body := post(t, e.Client(), link, url.Values{"password": {strongPassword}, "confirm": {strongPassword}}); !strings.Contains(body, "Le nouveau mot de passe a été enregistré avec succès.") {
		t.Fatalf("the resent link: %s", body)
	}
	tokens := countRows(t, e, `SELECT count(*) FROM account_tokens WHERE account_id = $1`, id)
	res, body := post(t, agent, page+"/activation", nil)
	if res.StatusCode != 422 || !strings.Contains(body, "Ce compte est déjà activé") {
		t.Fatalf("resend to an active account: %d %s", res.StatusCode, body)
	}
	if _, body := fetch(t, agent, page); strings.Contains(body, "Renvoyer l'email d'activation") {
		t.Error("the resend button is shown for an activated account")
	}
	if n := countRows(t, e, `SELECT count(*) FROM audit_log WHERE action = 'account.activation_resent'`); n != 1 {
		t.Errorf("%d resends journaled", n)
	}
	if got := countRows(t, e, `SELECT count(*) FROM account_tokens WHERE account_id = $1`, id); got != tokens {
		t.Errorf("an activation link was issued for an activated account (%d → %d tokens)", tokens, got)
	}
}

// A viewer reads every screen and changes nothing (403 on every POST and
// on the exports); an agent may not open another commune's payer or
// invoice (404), read or write.
func TestBillingScreensByRoleAndCommune(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	viewer := staffClient(t, e, "lecteur@sistec.fr", staff.RoleViewer)
	agent := staffClient(t, e, "agent@sistec.fr", staff.RoleAgent)
	payer := accountIDByEmail(t, e, "sistec", "marie.durand@demo.fr")
	active := accountIDByEmail(t, e, "sistec", "jean.martin@demo.fr")
	inv := invoiceIDByNumber(t, e, "2017-020-002059")
	u := func(format string, args ...any) string {
		return e.URL("sistec.localhost", fmt.Sprintf(format, args...))
	}

	for _, path := range []string{"/admin/redevables", u("/admin/redevables/%d", payer)[len(u("")):], "/admin/factures",
		fmt.Sprintf("/admin/factures/%d", inv), fmt.Sprintf("/admin/factures?compte=%d", payer), "/admin/dematerialisation"} {
		res, body := fetch(t, viewer, u("%s", path))
		if res.StatusCode != 200 {
			t.Errorf("viewer GET %s: %d", path, res.StatusCode)
		}
		for _, hidden := range []string{`method="post" action="/admin/redevables`, `method="post" action="/admin/factures`, "Exporter"} {
			if strings.Contains(body, hidden) {
				t.Errorf("viewer sees %q on %s", hidden, path)
			}
		}
		for _, link := range []string{`href="/admin/redevables"`, `href="/admin/factures"`, `href="/admin/dematerialisation"`} {
			if !strings.Contains(body, link) {
				t.Errorf("viewer's menu lacks %s", link)
			}
		}
	}
	snapshot := func() string {
		var s string
		e.App.DB.QueryRow(`SELECT string_agg(status || direct_debit || payment_suspended, ',' ORDER BY id) FROM invoices`).Scan(&s)
		var a string
		e.App.DB.QueryRow(`SELECT string_agg(status, ',' ORDER BY id) FROM accounts`).Scan(&a)
		return s + a
	}
	before := snapshot()
	for path, form := range map[string]url.Values{
		fmt.Sprintf("/admin/factures/%d/etat", inv):              {"status": {"cancelled"}, "reason": {"x"}},
		fmt.Sprintf("/admin/factures/%d/prelevement", inv):       {"on": {"1"}, "reason": {"x"}},
		fmt.Sprintf("/admin/factures/%d/paiement-en-ligne", inv): {"suspended": {"1"}, "reason": {"x"}},
		fmt.Sprintf("/admin/redevables/%d/activation", payer):    nil,
		fmt.Sprintf("/admin/redevables/%d/compte", active):       {"action": {"disable"}},
	} {
		if res, body := post(t, viewer, u("%s", path), form); res.StatusCode != 403 || !strings.Contains(body, "Accès refusé") {
			t.Errorf("viewer POST %s: %d", path, res.StatusCode)
		}
	}
	for _, path := range []string{"/admin/factures/export.csv", "/admin/dematerialisation/export.csv"} {
		if res, _ := fetch(t, viewer, u("%s", path)); res.StatusCode != 403 {
			t.Errorf("viewer GET %s: %d", path, res.StatusCode)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("a viewer changed something: %s → %s", before, after)
	}
	if n := countRows(t, e, `SELECT count(*) FROM account_tokens`); n != 0 {
		t.Fatalf("a viewer sent an activation email")
	}

	// Another commune's payer and invoice, by id, on sistec's host.
	belPayer := accountIDByEmail(t, e, "belcastel", "paul.roux@demo.fr")
	belInv := invoiceIDByNumber(t, e, "EAU-2024-000123")
	for _, path := range []string{fmt.Sprintf("/admin/redevables/%d", belPayer), fmt.Sprintf("/admin/factures/%d", belInv)} {
		if res, _ := fetch(t, agent, u("%s", path)); res.StatusCode != 404 {
			t.Errorf("agent GET belcastel's %s: %d", path, res.StatusCode)
		}
	}
	before = snapshot()
	for path, form := range map[string]url.Values{
		fmt.Sprintf("/admin/factures/%d/etat", belInv):           {"status": {"cancelled"}, "reason": {"x"}},
		fmt.Sprintf("/admin/factures/%d/prelevement", belInv):    {"on": {"1"}, "reason": {"x"}},
		fmt.Sprintf("/admin/redevables/%d/compte", belPayer):     {"action": {"disable"}},
		fmt.Sprintf("/admin/redevables/%d/activation", belPayer): nil,
	} {
		if res, _ := post(t, agent, u("%s", path), form); res.StatusCode != 404 {
			t.Errorf("agent POST belcastel's %s: %d", path, res.StatusCode)
		}
	}
	if after := snapshot(); after != before {
		t.Fatal("an agent of sistec changed belcastel's data")
	}
	// Filtering sistec's invoices by belcastel's payer shows none of them.
	if _, body := fetch(t, agent, u("/admin/factures?compte=%d", belPayer)); strings.Contains(body, "EAU-2024") || !strings.Contains(body, "0 facture.") {
		t.Errorf("belcastel's invoices listed on sistec: %s", body)
	}
	// The agent's lists search and filter.
	if _, body := fetch(t, agent, u("/admin/redevables?q=durand")); !strings.Contains(body, "Marie DURAND") || strings.Contains(body, "Jean MARTIN") {
		t.Errorf("payer search: %s", body)
	}
	_, body := fetch(t, agent, u("/admin/factures?etat=paid&montant_min=100"))
	if !strings.Contains(body, "2017-020-001850") || strings.Contains(body, "2017-020-002059") {
		t.Errorf("invoice filters: %s", body)
	}
	res, body := fetch(t, agent, u("/admin/factures?emise_du=31/02/2017"))
	if res.StatusCode != 200 || !strings.Contains(body, "La date d&#39;émission (du) doit s&#39;écrire JJ/MM/AAAA.") ||
		!strings.Contains(body, `id="emise_du" name="emise_du" type="text" inputmode="numeric" value="31/02/2017" maxlength="10" aria-invalid="true" aria-describedby="message"`) {
		t.Errorf("a bad date filter: %d %s", res.StatusCode, body)
	}
	if _, body := fetch(t, agent, u("/admin/factures?tri=-amount")); !strings.Contains(body, `aria-sort="descending" class="num"><a href="/admin/factures?tri=amount">Montant`) {
		t.Errorf("sorted by amount: %s", body)
	}
}

// Names and objects residents (or their billing files) chose are shown
// escaped on every staff screen.
func TestBillingScreensEscapeResidentText(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	agent := staffClient(t, e, "agent@sistec.fr", staff.RoleAgent)
	const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	if _, err := e.App.DB.Exec(`UPDATE accounts SET display_name = $1, paperless = true, paperless_at = now() WHERE email = 'demo@demo.fr'`, evil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.DB.Exec(`UPDATE invoices SET object = $1 WHERE number = '2017-020-002059'`, evil); err != nil {
		t.Fatal(err)
	}
	payer := accountIDByEmail(t, e, "sistec", "demo@demo.fr")
	inv := invoiceIDByNumber(t, e, "2017-020-002059")
	for _, path := range []string{"/admin/redevables", fmt.Sprintf("/admin/redevables/%d", payer), "/admin/factures",
		fmt.Sprintf("/admin/factures/%d", inv), fmt.Sprintf("/admin/factures?compte=%d", payer), "/admin/dematerialisation"} {
		res, body := fetch(t, agent, e.URL("sistec.localhost", path))
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", path, res.StatusCode)
			continue
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s shows resident text unescaped", path)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
			t.Errorf("%s does not show the escaped text", path)
		}
	}
}

// The exports: a CSV file named for the commune, opening cleanly in a
// spreadsheet, with cells that would start a formula neutralised.
func TestBillingExportsNeutraliseFormulas(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	agent := staffClient(t, e, "agent@sistec.fr", staff.RoleAgent)
	if _, err := e.App.DB.Exec(`UPDATE accounts SET display_name = '=HYPERLINK("http://evil.example","x")', paperless = true, paperless_at = now()
		WHERE email = 'demo@demo.fr'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.DB.Exec(`UPDATE accounts SET display_name = '@SUM(A1:A9)', paperless = false, paperless_at = now()
		WHERE email = 'marie.durand@demo.fr'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.DB.Exec(`UPDATE invoices SET object = '+cmd|'' /C calc''!A0' WHERE number = '2017-020-002059'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.DB.Exec(`UPDATE invoices SET object = '-2+3' WHERE number = '2017-020-002101'`); err != nil {
		t.Fatal(err)
	}
	res, body := fetch(t, agent, e.URL("sistec.localhost", "/admin/factures/export.csv?redevable=SISTEC560"))
	if res.StatusCode != 200 || !strings.HasPrefix(body, "\uFEFFNuméro;Référence redevable;Redevable;Objet") ||
		!strings.Contains(res.Header.Get("Content-Disposition"), `filename="factures-sistec-`) {
		t.Fatalf("invoices export: %d %v %q", res.StatusCode, res.Header, body)
	}
	for _, want := range []string{`"'=HYPERLINK(""http://evil.example"",""x"")"`, `'+cmd|' /C calc'!A0`, ";'-2+3;", ";243,11;", "\r\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("invoices export lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, ";=HYPERLINK") || strings.Contains(body, ";+cmd") || strings.Contains(body, ";-2+3") {
		t.Errorf("a formula is exported as is:\n%s", body)
	}
	want := countRows(t, e, `SELECT count(*) FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id
		WHERE a.external_ref = 'SISTEC560'`)
	if n := strings.Count(body, "\r\n"); n != want+1 || want < 4 {
		t.Errorf("%d lines exported for SISTEC560's %d invoices:\n%s", n, want, body)
	}
	res, body = fetch(t, agent, e.URL("sistec.localhost", "/admin/dematerialisation/export.csv"))
	if res.StatusCode != 200 || !strings.HasPrefix(body, "\uFEFFRéférence;Nom;Adresse mail;Choix;Date du choix") ||
		!strings.Contains(res.Header.Get("Content-Disposition"), `filename="dematerialisation-sistec-`) {
		t.Fatalf("paperless export: %d %q", res.StatusCode, body)
	}
	for _, want := range []string{`'=HYPERLINK(`, `;'@SUM(A1:A9);`, "Dématérialisées", "Papier"} {
		if !strings.Contains(body, want) {
			t.Errorf("paperless export lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "Jean MARTIN") {
		t.Errorf("a payer who made no choice is exported:\n%s", body)
	}
}

// A resident's paperless choice shows on "Dématérialisation" with its
// date; the filters keep one choice or the other.
func TestPaperlessChoicesWithTheirDates(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	agent := staffClient(t, e, "agent@sistec.fr", staff.RoleAgent)
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	resident := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	if _, body := fetch(t, agent, e.URL("sistec.localhost", "/admin/dematerialisation")); !strings.Contains(body, "0 redevable.") {
		t.Fatalf("before any choice: %s", body)
	}
	if res, _ := post(t, resident, e.URL("sistec.localhost", "/informations/papier"), url.Values{"paperless": {"1"}}); res.StatusCode != 303 {
		t.Fatalf("paperless: %d", res.StatusCode)
	}
	var at string
	if err := e.App.DB.QueryRow(`SELECT to_char(paperless_at AT TIME ZONE 'Europe/Paris', 'DD/MM/YYYY HH24:MI') FROM accounts WHERE email = 'demo@demo.fr' AND paperless`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	_, body := fetch(t, agent, e.URL("sistec.localhost", "/admin/dematerialisation"))
	if !strings.Contains(body, "1 redevable.") || !strings.Contains(body, "Test SISTEC560") || !strings.Contains(body, at) ||
		!strings.Contains(body, "factures dématérialisées") {
		t.Fatalf("after the choice (%s): %s", at, body)
	}
	if _, body := fetch(t, agent, e.URL("sistec.localhost", "/admin/dematerialisation?choix=paper")); !strings.Contains(body, "0 redevable.") {
		t.Errorf("paper filter: %s", body)
	}
	if _, body := fetch(t, agent, e.URL("sistec.localhost", "/admin/dematerialisation?du=01/01/2000&au=31/12/2000")); !strings.Contains(body, "0 redevable.") {
		t.Errorf("date filter: %s", body)
	}
	if _, body := fetch(t, agent, e.URL("sistec.localhost", "/admin/redevables?papier=paperless")); !strings.Contains(body, "1 redevable.") {
		t.Errorf("Redevables paperless filter: %s", body)
	}
}
