package web_test

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"portail/pkg/apptest"
)

var (
	simFormRe   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	simHiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// payOnSimulator opens PayFiP's page at u and presses the button whose
// value is choix ("P" pays by card), as the resident's browser does; it
// returns where PayFiP then sends the browser.
func payOnSimulator(t *testing.T, e *apptest.Env, u, choix string) string {
	t.Helper()
	c := e.Client()
	res, body := fetch(t, c, u)
	fm := simFormRe.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || fm == nil {
		t.Fatalf("PayFiP page %s: %d\n%s", u, res.StatusCode, body)
	}
	form := url.Values{"choix": {choix}}
	for _, h := range simHiddenRe.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	action, err := res.Request.URL.Parse(html.UnescapeString(fm[1]))
	if err != nil {
		t.Fatal(err)
	}
	res, body = post(t, c, action.String(), form)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("PayFiP submit: %d\n%s", res.StatusCode, body)
	}
	return res.Header.Get("Location")
}

// startPayment starts paying invoice number as c's resident and returns
// the PayFiP URL the portal sends the browser to.
func startPayment(t *testing.T, e *apptest.Env, c *http.Client, host, number string) *url.URL {
	t.Helper()
	res, body := post(t, c, e.URL(host, "/paiement"), url.Values{"facture": {fmt.Sprint(invoiceIDByNumber(t, e, number))}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), e.PayFiP.URL) {
		t.Fatalf("payment start of %s: %d %s\n%s", number, res.StatusCode, res.Header.Get("Location"), body)
	}
	u, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func confirmationEmails(e *apptest.Env, to string) []string {
	var out []string
	for _, m := range e.Mail.Messages() {
		if strings.Contains(m.Subject, "Confirmation de votre paiement") && len(m.To) > 0 && strings.EqualFold(m.To[0], to) {
			out = append(out, m.Text)
		}
	}
	return out
}

// The attack of issue 9: a resident reads refdet, numcli and montant in the
// redirect to PayFiP, skips PayFiP and posts "paid" to the classic return
// URL from the portal's own machine. Nothing may change until PayFiP's own
// call (the simulator's, from 127.0.0.2) arrives.
func TestForgedClassicResultFromPortalMachineChangesNothing(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	const host, number = "belcastel.localhost", "EAU-2024-000456"
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	c := login(t, e, host, "demo@demo.fr", strongPassword, false)
	payfipURL := startPayment(t, e, c, host, number)
	q := payfipURL.Query()
	refdet, numcli, montant, exer := q.Get("refdet"), q.Get("numcli"), q.Get("montant"), q.Get("exer")
	if refdet == "" || numcli != "012345" || montant != "9812" {
		t.Fatalf("redirect to PayFiP: %s", payfipURL)
	}
	var paymentID int64
	if err := e.App.DB.QueryRow(`SELECT id FROM payments WHERE refdet = $1`, refdet).Scan(&paymentID); err != nil {
		t.Fatal(err)
	}

	lower := url.Values{"numcli": {numcli}, "refdet": {refdet}, "montant": {montant}, "resultrans": {"P"},
		"numauto": {"FAKE01"}, "dattrans": {"26112026"}, "heurtrans": {"1342"}, "exer": {exer}}
	mixed := url.Values{"NumCli": {numcli}, "REFDET": {refdet}, "Montant": {montant}, "ResulTrans": {"P"},
		"NUMAUTO": {"FAKE01"}, "DatTrans": {"26112026"}, "HeurTrans": {"1342"}, "EXER": {exer}}
	upper := url.Values{}
	for k, v := range lower {
		upper[strings.ToUpper(k)] = v
	}
	returnURL := e.URL(host, "/paiement/retour-classique")
	stateURL := "/paiement/retour-classique?refdet=" + refdet
	spoofed := func(method string, params url.Values) *http.Request {
		// A forged X-Forwarded-For naming the simulator's address: no proxy
		// is trusted, so the peer (127.0.0.1) is what counts.
		var req *http.Request
		if method == http.MethodGet {
			req, _ = http.NewRequest(method, returnURL+"?"+params.Encode(), nil)
		} else {
			req, _ = http.NewRequest(method, returnURL, strings.NewReader(params.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("X-Forwarded-For", "127.0.0.2")
		req.Header.Set("X-Real-IP", "127.0.0.2")
		return req
	}
	attempts := []struct {
		name   string
		client *http.Client
		req    *http.Request
	}{
		{"POST mixed case with cookie", c, spoofed(http.MethodPost, mixed)},
		{"GET lower case with cookie", c, spoofed(http.MethodGet, lower)},
		{"POST lower case without cookie", e.Client(), spoofed(http.MethodPost, lower)},
		{"GET upper case without cookie", e.Client(), spoofed(http.MethodGet, upper)},
	}
	for _, a := range attempts {
		res, err := a.client.Do(a.req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != stateURL {
			t.Errorf("%s: %d %s, want 303 to the attempt's state", a.name, res.StatusCode, res.Header.Get("Location"))
		}
	}

	var invoiceStatus, paymentStatus, numauto string
	check := func() {
		t.Helper()
		if err := e.App.DB.QueryRow(`SELECT i.status, p.status, p.numauto FROM invoices i, payments p
			WHERE i.number = $1 AND p.id = $2`, number, paymentID).Scan(&invoiceStatus, &paymentStatus, &numauto); err != nil {
			t.Fatal(err)
		}
	}
	check()
	if invoiceStatus != "unpaid" || paymentStatus != "pending" || numauto != "" {
		t.Fatalf("after forged results: invoice %s, attempt %s, numauto %q", invoiceStatus, paymentStatus, numauto)
	}
	if n := countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'send_email' AND args->'email'->>'template' = 'payment_confirmation'`); n != 0 {
		t.Fatalf("%d confirmation emails queued by forged results", n)
	}
	receipt := e.URL(host, fmt.Sprintf("/paiements/%d/attestation", paymentID))
	if res, _ := fetch(t, c, receipt); res.StatusCode != http.StatusNotFound {
		t.Fatalf("receipt after forged results: %d", res.StatusCode)
	}
	// The resident's browser, sent on to the attempt's state, is told it
	// is being checked; nothing of the forged result shows.
	res, body := fetch(t, c, e.URL(host, stateURL))
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Votre paiement est en cours de vérification") ||
		strings.Contains(body, "FAKE01") || strings.Contains(body, "a été accepté") || !strings.Contains(body, `href="`+html.EscapeString(stateURL)+`"`) {
		t.Fatalf("state page while pending: %d\n%s", res.StatusCode, body)
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("the state page refreshes itself")
	}

	// Every forged result is on record: source address and parameters.
	rows, err := e.App.DB.Query(`SELECT host(ip), actor_kind, details::text FROM audit_log
		WHERE action = 'payment.classic_result_unverified' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for rows.Next() {
		var ip, actor, raw string
		if err := rows.Scan(&ip, &actor, &raw); err != nil {
			t.Fatal(err)
		}
		var d struct {
			PaymentID int64               `json:"payment_id"`
			Params    map[string][]string `json:"params"`
		}
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatal(err)
		}
		claimed := append(d.Params["NUMAUTO"], d.Params["numauto"]...)
		if ip != "127.0.0.1" || d.PaymentID != paymentID || len(claimed) != 1 || claimed[0] != "FAKE01" {
			t.Errorf("audit row: ip %s, details %s", ip, raw)
		}
		audited = append(audited, actor)
	}
	rows.Close()
	if strings.Join(audited, " ") != "resident resident anonymous anonymous" {
		t.Fatalf("audited forged results: %v, want the 4 of them", audited)
	}

	// PayFiP's own call (the simulator's, from its network) settles it, and
	// the browser sent back with the same parameters sees the outcome.
	back := payOnSimulator(t, e, payfipURL.String(), "P")
	check()
	if invoiceStatus != "paid" || paymentStatus != "paid" || numauto == "" || numauto == "FAKE01" {
		t.Fatalf("after PayFiP's call: invoice %s, attempt %s, numauto %q", invoiceStatus, paymentStatus, numauto)
	}
	e.WaitMail("demo@demo.fr", "Confirmation de votre paiement de 98,12 €", numauto)
	if mails := confirmationEmails(e, "demo@demo.fr"); len(mails) != 1 || strings.Contains(mails[0], "FAKE01") {
		t.Fatalf("confirmation emails: %q", mails)
	}
	res, _ = fetch(t, c, back)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != stateURL {
		t.Fatalf("browser return: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, body = fetch(t, c, e.URL(host, stateURL))
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Votre paiement de 98,12 € a été accepté") || !strings.Contains(body, numauto) {
		t.Fatalf("state page once paid: %d\n%s", res.StatusCode, body)
	}
	if res, _ := fetch(t, c, receipt); res.StatusCode != http.StatusOK {
		t.Fatalf("receipt once paid: %d", res.StatusCode)
	}
	// A forged cancellation afterwards changes nothing either.
	cancel := url.Values{"numcli": {numcli}, "refdet": {refdet}, "montant": {montant}, "resultrans": {"A"}, "exer": {exer}}
	post(t, e.Client(), returnURL, cancel)
	if check(); paymentStatus != "paid" || invoiceStatus != "paid" {
		t.Fatalf("after a forged cancellation: invoice %s, attempt %s", invoiceStatus, paymentStatus)
	}
}

// Item 6 of issue 9: whoever holds an idOp or a refdet reads nothing of
// someone else's payment.
func TestPaymentResultPagesShowDetailsOnlyToOwner(t *testing.T) {
	for _, tc := range []struct{ host, number, amount, other string }{
		{"sistec.localhost", "2017-020-002059", "243,11 €", "marie.durand@demo.fr"},
		{"belcastel.localhost", "EAU-2024-000456", "98,12 €", "paul.roux@demo.fr"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			e := apptest.Start(t, apptest.Options{Demo: true})
			activateWithPassword(t, e, tc.host, "demo@demo.fr", strongPassword)
			activateWithPassword(t, e, tc.host, tc.other, strongPassword)
			owner := login(t, e, tc.host, "demo@demo.fr", strongPassword, false)
			other := login(t, e, tc.host, tc.other, strongPassword, false)
			payfipURL := startPayment(t, e, owner, tc.host, tc.number)
			back := payOnSimulator(t, e, payfipURL.String(), "P")
			fetch(t, owner, back) // the resident comes back: the WS result is asked to PayFiP
			var refdet, numauto string
			if err := e.App.DB.QueryRow(`SELECT refdet, numauto FROM payments p JOIN payment_invoices pi
				ON pi.tenant_id = p.tenant_id AND pi.payment_id = p.id JOIN invoices i ON i.tenant_id = pi.tenant_id AND i.id = pi.invoice_id
				WHERE i.number = $1 AND p.status = 'paid'`, tc.number).Scan(&refdet, &numauto); err != nil {
				t.Fatal(err)
			}
			// The page PayFiP sends the browser to, and the classic state page.
			pages := []string{back}
			if strings.Contains(back, "retour-classique") {
				pages = append(pages, e.URL(tc.host, "/paiement/retour-classique?refdet="+refdet))
			}
			secrets := []string{tc.amount, refdet, numauto, tc.number}
			for _, u := range pages {
				for name, c := range map[string]*http.Client{"owner": owner, "other resident": other, "anonymous": e.Client()} {
					res, body := fetch(t, c, u)
					if res.StatusCode == http.StatusSeeOther {
						res, body = fetch(t, c, e.URL(tc.host, res.Header.Get("Location")))
					}
					if res.StatusCode != http.StatusOK || !strings.Contains(body, "Résultat du paiement") {
						t.Fatalf("%s on %s: %d\n%s", name, u, res.StatusCode, body)
					}
					for _, s := range secrets {
						if shown := strings.Contains(body, s); shown != (name == "owner") {
							t.Errorf("%s on %s: %q shown = %v", name, u, s, shown)
						}
					}
					neutral := "n'est affiché qu'à la personne qui l'a effectué"
					if name == "other resident" {
						neutral = "Ce paiement n'est pas associé à votre compte."
					}
					if name != "owner" && !strings.Contains(body, neutral) {
						t.Errorf("%s on %s: not the neutral page\n%s", name, u, body)
					}
				}
			}
		})
	}
}
