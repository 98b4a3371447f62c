package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/config"
	"portail/pkg/devenv"
	"portail/pkg/payfip/sim"
)

func invoiceIDByNumber(t *testing.T, e *apptest.Env, number string) int64 {
	t.Helper()
	var id int64
	if err := e.App.DB.QueryRow(`SELECT id FROM invoices WHERE number = $1`, number).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func countRows(t *testing.T, e *apptest.Env, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.App.DB.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestForgedPayFiPResultsChangeNothing(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	id := invoiceIDByNumber(t, e, "2017-020-002059")
	// A real attempt, left pending at PayFiP's page.
	res, _ := post(t, c, e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(id)}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), e.PayFiP.URL) {
		t.Fatalf("payment start: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	var refdet, idOp string
	e.App.DB.QueryRow(`SELECT refdet, coalesce(id_op, '') FROM payments`).Scan(&refdet, &idOp)

	anon := e.Client()
	// Unknown idOp notified, and a forged browser return.
	res, _ = post(t, anon, e.URL("sistec.localhost", "/paiement/notification"), url.Values{"idOp": {"7c9e6679-7425-40de-944b-e07fc1f90ae7"}})
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown idOp notification: %d", res.StatusCode)
	}
	// The genuine idOp presented on another commune's host.
	res, _ = post(t, anon, e.URL("belcastel.localhost", "/paiement/notification"), url.Values{"idOp": {idOp}})
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("sistec's idOp on belcastel: %d", res.StatusCode)
	}
	// A classic-style callback claiming "paid" for the WS attempt, and with another amount.
	for _, q := range []url.Values{
		{"numcli": {"004200"}, "exer": {"2026"}, "refdet": {refdet}, "montant": {"24311"}, "mel": {"demo@demo.fr"}, "saisie": {"T"}, "resultrans": {"P"}, "numauto": {"123456"}, "dattrans": {"26112026"}, "heurtrans": {"1200"}},
		{"numcli": {"004200"}, "exer": {"2026"}, "refdet": {refdet}, "montant": {"100"}, "mel": {"demo@demo.fr"}, "saisie": {"T"}, "resultrans": {"P"}, "numauto": {"123456"}, "dattrans": {"26112026"}, "heurtrans": {"1200"}},
	} {
		res, _ := fetch(t, anon, e.URL("sistec.localhost", "/paiement/retour-classique?"+q.Encode()))
		if res.StatusCode == http.StatusOK {
			t.Errorf("forged classic result accepted: %v", q)
		}
	}
	if n := countRows(t, e, `SELECT count(*) FROM invoices WHERE number = '2017-020-002059' AND status = 'unpaid'`); n != 1 {
		t.Fatal("a forged result paid the invoice")
	}
	if n := countRows(t, e, `SELECT count(*) FROM payments WHERE status = 'pending'`); n != 1 {
		t.Fatal("a forged result resolved the attempt")
	}
	// Starting a payment needs a session.
	res, body := post(t, e.Client(), e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(id)}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Errorf("anonymous payment start: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// A second tab asking to pay the same invoice is refused.
	res, body = post(t, c, e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(id)}})
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, "Un paiement est déjà en cours pour cette facture.") {
		t.Errorf("second tab: %d", res.StatusCode)
	}
}

func TestPayFiPFaultGivesClearMessageAndRetryWorks(t *testing.T) {
	for _, fault := range []string{sim.Fault999, sim.FaultTimeout} {
		t.Run(fault, func(t *testing.T) {
			e := apptest.Start(t, apptest.Options{Demo: true, Config: func(c *config.Config) { c.PayFiP.Timeout = 2 * time.Second }})
			activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
			c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
			id := invoiceIDByNumber(t, e, "2017-020-002059")
			if err := e.PayFiP.Sim.Control(sim.ControlOptions{Fault: fault, FaultCount: 1}); err != nil {
				t.Fatal(err)
			}
			res, body := post(t, c, e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(id)}})
			if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Le service de paiement est momentanément indisponible. Aucun paiement n&#39;a été effectué.") {
				t.Fatalf("fault %s: %d", fault, res.StatusCode)
			}
			res, _ = post(t, c, e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(id)}})
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), e.PayFiP.URL) {
				t.Fatalf("retry after fault %s: %d", fault, res.StatusCode)
			}
		})
	}
}

func TestCommuneOwnPayFiPEndpoints(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	other, err := devenv.StartPayFiP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := e.App.DB.Exec(`UPDATE tenants SET payfip_ws_payment_url = $1, payfip_soap_url = $2 WHERE slug = 'sistec'`,
		other.URL+"/tpa/paiementws.web", other.URL+"/tpa/services/securite"); err != nil {
		t.Fatal(err)
	}
	e.App.Tenants.Invalidate()
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	res, _ := post(t, c, e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(invoiceIDByNumber(t, e, "2017-020-002059"))}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), other.URL+"/tpa/paiementws.web?idop=") {
		t.Fatalf("payment not sent to the commune's own endpoint: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, other.URL) {
		t.Errorf("CSP form-action lacks the commune's PayFiP origin: %s", csp)
	}
	if len(other.Sim.Payments()) != 1 || len(e.PayFiP.Sim.Payments()) != 0 {
		t.Errorf("payments: commune's simulator %d, platform's %d", len(other.Sim.Payments()), len(e.PayFiP.Sim.Payments()))
	}
}
