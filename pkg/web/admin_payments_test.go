package web_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/imports"
	"portail/pkg/staff"
)

// A payment made in the simulator shows in "Paiements" (searched by its
// invoice), on its detail page with PayFiP's data and the forged result
// refused beside it, and in the CSV export, which opens as ';'-separated
// UTF-8 with a BOM and neutralises a payer name starting with '='.
func TestAdminPaymentsSearchDetailAndExport(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	// The billing software names the payer with a formula and markup.
	evil := `=HYPERLINK("http://evil.example","<b>Dupont</b>")`
	rep, err := e.App.Imports.ImportNow(ctx, sistec.ID, imports.KindPayers, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "nom.csv", Body: strings.NewReader("Référence;Nom;Email\nSISTEC560;\"" + strings.ReplaceAll(evil, `"`, `""`) + "\";demo@demo.fr\n")}, nil)
	if err != nil || rep.Updated != 1 {
		t.Fatalf("rename payer: %v %+v", err, rep)
	}

	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	resident := login(t, e, host, "demo@demo.fr", strongPassword, false)
	back := payOnSimulator(t, e, startPayment(t, e, resident, host, "2017-020-002059").String(), "P")
	fetch(t, resident, back)
	var id int64
	var refdet, idOp, numauto string
	if err := e.App.DB.QueryRow(`SELECT id, refdet, coalesce(id_op, ''), numauto FROM payments WHERE status = 'paid'`).Scan(&id, &refdet, &idOp, &numauto); err != nil {
		t.Fatal(err)
	}
	// A forged classic result, from outside PayFiP's networks: refused,
	// kept for staff.
	forged := url.Values{"numcli": {"004200"}, "exer": {"2026"}, "refdet": {refdet}, "montant": {"1"}, "mel": {"demo@demo.fr"},
		"saisie": {"T"}, "resultrans": {"P"}, "numauto": {"FORGED1"}, "dattrans": {"26112026"}, "heurtrans": {"1200"}}
	fetch(t, e.Client(), e.URL(host, "/paiement/retour-classique?"+forged.Encode()))

	agent := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, _ := staffLogin(t, e, host, agent.Email, staffPassword)
	res, body := fetch(t, c, e.URL(host, "/admin/paiements?facture=2017-020-002059"))
	if res.StatusCode != 200 || !strings.Contains(body, "1 paiement.") || !strings.Contains(body, "243,11 €") || !strings.Contains(body, fmt.Sprintf(`href="/admin/paiements/%d"`, id)) ||
		!strings.Contains(body, "&lt;b&gt;Dupont&lt;/b&gt;") || strings.Contains(body, "<b>Dupont") || !strings.Contains(body, "Carte bancaire") ||
		!strings.Contains(body, `href="/admin/paiements/export?facture=2017-020-002059"`) {
		t.Fatalf("search by invoice: %d\n%s", res.StatusCode, body)
	}
	for query, want := range map[string]string{
		"montant_min=300":                "0 paiement.",
		"montant_min=243,11&statut=paid": "1 paiement.",
		"statut=refused":                 "0 paiement.",
		"redevable=SISTEC560":            "1 paiement.",
		"reference=" + refdet:            "1 paiement.",
		"du=01/01/2000&au=31/12/2099":    "1 paiement.",
	} {
		if _, body := fetch(t, c, e.URL(host, "/admin/paiements?"+query)); !strings.Contains(body, want) {
			t.Errorf("search %s: want %q", query, want)
		}
	}
	if res, body := fetch(t, c, e.URL(host, "/admin/paiements?du=demain")); res.StatusCode != 422 ||
		!strings.Contains(body, "La date de début doit s&#39;écrire JJ/MM/AAAA.") || !strings.Contains(body, `aria-describedby="message"`) {
		t.Errorf("bad date: %d", res.StatusCode)
	}

	res, body = fetch(t, c, e.URL(host, fmt.Sprintf("/admin/paiements/%d", id)))
	for _, want := range []string{refdet, idOp, numauto, "2017-020-002059", "Multi Services", "Paiement accepté", "Résultat refusé : source non vérifiée", "numauto=FORGED1", "Remboursement à faire</dt><dd>non"} {
		if res.StatusCode != 200 || want == "" || !strings.Contains(body, want) {
			t.Errorf("detail lacks %q (%d)", want, res.StatusCode)
		}
	}
	if strings.Contains(body, "<b>Dupont") {
		t.Error("payer name not escaped on the detail")
	}

	res, body = fetch(t, c, e.URL(host, "/admin/paiements/export?facture=2017-020-002059"))
	wantName := fmt.Sprintf(`attachment; filename="paiements-sistec-%s.csv"`, time.Now().In(paris(t)).Format("2006-01-02"))
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/csv; charset=utf-8" || res.Header.Get("Content-Disposition") != wantName {
		t.Fatalf("export: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"))
	}
	if !strings.HasPrefix(body, "\uFEFFDate;Heure;Référence de paiement;") || !strings.Contains(body, "\r\n") {
		t.Fatalf("export is not ';'-separated UTF-8 with BOM and CRLF:\n%q", body)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF")))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("export rows: %v %q", err, rows)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	line := rows[1]
	for name, want := range map[string]string{
		"Référence de paiement": refdet, "Identifiant PayFiP (idOp)": idOp, "Numéro d'autorisation": numauto,
		"Facture": "2017-020-002059", "Référence redevable": "SISTEC560", "Redevable": "'" + evil,
		"Montant": "243,11", "Moyen de paiement": "Carte bancaire", "Résultat": "Payé",
	} {
		if i, ok := col[name]; !ok || line[i] != want {
			t.Errorf("export column %q = %q, want %q", name, line[min(i, len(line)-1)], want)
		}
	}
	if d := line[col["Date"]]; len(d) != 10 || d[2] != '/' {
		t.Errorf("export date %q", d)
	}

	// A viewer reads payments, but exports nothing; another commune sees none.
	viewer := newStaff(t, e, "sistec", "lecteur@sistec.fr", staff.RoleViewer)
	v, _ := staffLogin(t, e, host, viewer.Email, staffPassword)
	if res, body := fetch(t, v, e.URL(host, "/admin/paiements")); res.StatusCode != 200 || strings.Contains(body, "/admin/paiements/export") || !strings.Contains(body, "1 paiement.") {
		t.Errorf("viewer's payments: %d", res.StatusCode)
	}
	if res, _ := fetch(t, v, e.URL(host, "/admin/paiements/export")); res.StatusCode != 403 {
		t.Errorf("viewer's export: %d", res.StatusCode)
	}
	other := newStaff(t, e, "belcastel", "agent@belcastel.fr", staff.RoleAgent)
	o, _ := staffLogin(t, e, "belcastel.localhost", other.Email, staffPassword)
	if res, _ := fetch(t, o, e.URL("belcastel.localhost", fmt.Sprintf("/admin/paiements/%d", id))); res.StatusCode != 404 {
		t.Errorf("belcastel opens sistec's payment: %d", res.StatusCode)
	}
	if _, body := fetch(t, o, e.URL("belcastel.localhost", "/admin/paiements/export")); strings.Contains(body, refdet) {
		t.Error("belcastel's export holds sistec's payment")
	}
}

func paris(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
