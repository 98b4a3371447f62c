package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/imports"
)

func TestNewInvoiceAlertAndUnsubscribeWithoutLogin(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	importCSV := func(body string) imports.Report {
		rep, err := e.App.Imports.ImportNow(ctx, sistec.ID, imports.KindInvoices, imports.Actor{Kind: imports.ActorSystem},
			imports.File{Name: "t.csv", Body: strings.NewReader(body)}, nil)
		if err != nil || rep.Status != imports.StatusImported {
			t.Fatalf("import: %v %s %+v", err, rep.Status, rep.Errors)
		}
		return rep
	}
	rep := importCSV("Numéro;Référence redevable;Objet;Date;Echéance;Montant\n" +
		"2017-020-009701;SISTEC560;Cantine novembre;10/11/2017;21/11/2017;44,10\n" +
		"2017-020-009702;SISTEC560;Garderie novembre;10/11/2017;21/11/2017;12,00\n")
	if rep.Alerts != 1 {
		t.Fatalf("one alert email for two new invoices of one account, got %d", rep.Alerts)
	}
	m := e.WaitMail("demo@demo.fr", "2 nouvelles factures sont disponibles", "2017-020-009701", "2017-020-009702")
	if m.Header("List-Unsubscribe") == "" {
		t.Error("no List-Unsubscribe header")
	}
	link := apptest.LinkIn(t, m, e.URL("sistec.localhost", "/desabonnement/"))
	anon := e.Client()
	res, body := fetch(t, anon, link)
	if res.StatusCode != 200 || !strings.Contains(body, "Ne plus recevoir ces alertes") {
		t.Fatalf("unsubscribe page: %d", res.StatusCode)
	}
	if n := countRows(t, e, `SELECT count(*) FROM accounts WHERE email = 'demo@demo.fr' AND invoice_alerts AND tenant_id = $1`, sistec.ID); n != 1 {
		t.Fatal("opening the link (as a mail scanner would) unsubscribed")
	}
	res, body = post(t, anon, link, url.Values{})
	if res.StatusCode != 200 || !strings.Contains(body, "ne recevra plus d&#39;alerte") && !strings.Contains(body, "ne recevra plus d'alerte") {
		t.Fatalf("unsubscribe: %d %s", res.StatusCode, body)
	}
	importCSV("Numéro;Référence redevable;Objet;Date;Echéance;Montant\n2017-020-009703;SISTEC560;Cantine décembre;10/12/2017;21/12/2017;40,00\n")
	if rep := importCSV("Numéro;Référence redevable;Objet;Date;Echéance;Montant\n2017-020-009704;SISTEC560;Cantine janvier;10/01/2018;21/01/2018;40,00\n"); rep.Alerts != 0 {
		t.Fatalf("alert sent after unsubscribing: %d", rep.Alerts)
	}
	res, _ = fetch(t, anon, e.URL("sistec.localhost", "/desabonnement/"+strings.Repeat("a", 32)))
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown unsubscribe token: %d", res.StatusCode)
	}
}
