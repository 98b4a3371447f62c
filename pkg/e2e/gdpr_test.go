package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"portail/pkg/apptest"
)

// TestDataDownloadAndAccountClosure: in the browser, the resident finds
// "Télécharger mes données" in "Mes informations" and gets their data as a
// JSON file, then closes the account with their password (a wrong one is
// refused next to its field) and lands on the page saying it is done; they
// are logged out, the closing email arrives and the commune's invoices
// stay.
func TestDataDownloadAndAccountClosure(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	const host = "sistec.localhost"
	p := loggedIn(t, e, host, "demo@demo.fr")
	var invoices int
	if err := e.App.DB.Get(&invoices, `SELECT count(*) FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id
		WHERE a.external_ref = 'SISTEC560'`); err != nil || invoices == 0 {
		t.Fatalf("invoices: %d %v", invoices, err)
	}

	p.ClickText("Mes informations")
	p.MustSee("Mes données personnelles", "Télécharger mes données", "Fermer mon compte")
	p.ClickText("Télécharger mes données") // a download: the page stays
	p.MustSee("Mes données personnelles")
	status, body, headers := p.Fetch(e.URL(host, "/informations/donnees"))
	if status != 200 || !strings.HasPrefix(headers["Content-Disposition"], `attachment; filename="mes-donnees-sistec-`) {
		t.Fatalf("download: %d %v", status, headers)
	}
	var data struct {
		Compte   map[string]any   `json:"compte"`
		Factures []map[string]any `json:"factures"`
	}
	if err := json.Unmarshal(body, &data); err != nil || data.Compte["reference"] != "SISTEC560" ||
		data.Compte["adresse_mail"] != "demo@demo.fr" || len(data.Factures) != invoices {
		t.Fatalf("downloaded data: %v %v, %d invoices", err, data.Compte, len(data.Factures))
	}

	p.ClickText("Fermer mon compte")
	p.MustSee("Ce qui est effacé", "Ce que la commune conserve")
	p.Fill("Mot de passe", "pas le bon mot de passe")
	p.ClickText("Fermer définitivement mon compte")
	p.MustSee("Le mot de passe est incorrect. Votre compte n'a pas été fermé.")
	p.Fill("Mot de passe", firstPassword)
	p.ClickText("Fermer définitivement mon compte")
	p.MustSee("Votre compte est fermé", "Données personnelles")
	p.Visit(e.URL(host, "/informations"))
	p.MustSee("Veuillez vous connecter")
	e.WaitMail("demo@demo.fr", "Votre compte sur le portail des factures est fermé")

	var left int
	if err := e.App.DB.Get(&left, `SELECT count(*) FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id
		WHERE a.external_ref = 'SISTEC560' AND a.status = 'closed' AND a.email NOT LIKE '%demo%'`); err != nil || left != invoices {
		t.Fatalf("invoices after closing: %d of %d (%v)", left, invoices, err)
	}
}
