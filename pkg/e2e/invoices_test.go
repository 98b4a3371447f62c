package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
)

// loggedIn activates email on host through the manual's pages and logs in.
func loggedIn(t *testing.T, e *apptest.Env, host, email string) *browsertest.Page {
	t.Helper()
	p := browsertest.New(t)
	p.Visit(e.URL(host, "/activation"))
	p.Fill("Adresse mail", email)
	p.ClickText("Activation")
	m := e.WaitMail(email, "Accès au portail des factures", "/activation/")
	p.Visit(apptest.LinkIn(t, m, e.URL(host, "/activation/")))
	p.Fill("Nouveau mot de passe", firstPassword)
	p.Fill("Confirmation du mot de passe", firstPassword)
	p.ClickText("Valider")
	p.Fill("Mot de passe", firstPassword)
	p.ClickText("Connexion")
	p.ClickText("Fermer")
	return p
}

func TestMesFactures(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	p := loggedIn(t, e, "sistec.localhost", "demo@demo.fr")

	p.ClickText("Mes factures")
	p.MustSee("Date", "Echéance", "Montant", "Numéro", "Objet",
		"2017-020-002059", "10/07/2017", "21/07/2017", "243,11 €", "Multi Services")
	p.MustNotSee("2017-020-001850", "2017-020-001402") // paid, in treasury
	p.MustNotSee("2017-020-002060")                    // another resident's

	p.ClickText("Réglées (1)")
	p.MustSee("2017-020-001850", "187,35 €")
	p.MustNotSee("2017-020-002059")
	p.ClickText("En trésorerie (1)")
	p.MustSee("2017-020-001402", "un avis de somme à payer sera transmis par courrier")
	p.ClickText("Non réglées (6)")

	p.ClickText("2017-020-002059")
	p.MustSee("Facture 2017-020-002059", "Multi Services", "243,11 €", "Télécharger PDF", "Payer la facture")
	status, pdf, headers := p.Fetch(p.URL() + "/pdf")
	if status != 200 || headers["Content-Type"] != "application/pdf" || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("PDF download: %d %v %q", status, headers, pdf[:min(len(pdf), 20)])
	}
	if headers["Cache-Control"] != "no-store" {
		t.Errorf("PDF Cache-Control %q", headers["Cache-Control"])
	}
	// The bytes are those imported: same SHA-256 as the stored object.
	var key, sum string
	if err := e.App.DB.QueryRow(`SELECT pdf_key, pdf_sha256 FROM invoices WHERE number = '2017-020-002059'`).Scan(&key, &sum); err != nil {
		t.Fatal(err)
	}
	got := sha256.Sum256(pdf)
	if hex.EncodeToString(got[:]) != sum {
		t.Fatalf("downloaded PDF differs from the imported one")
	}
	rc, _, err := e.App.Blobs.Get(context.Background(), key, sum)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(stored, pdf) {
		t.Fatal("downloaded bytes differ from the stored object")
	}

	// The resident's own "paid by other means" marker, and its undo.
	p.ClickText("J'ai réglé cette facture par un autre moyen")
	p.MustSee("Vous avez indiqué avoir réglé cette facture par un autre moyen", "Marquer la facture comme non réglée")
	p.ClickText("Marquer la facture comme non réglée")
	p.MustSee("La facture est de nouveau indiquée comme non réglée.", "J'ai réglé cette facture par un autre moyen")
	var status2 string
	e.App.DB.QueryRow(`SELECT status FROM invoices WHERE number = '2017-020-002059'`).Scan(&status2)
	if status2 != "unpaid" {
		t.Fatalf("the resident's marker changed the official status to %s", status2)
	}

	// Reasons why an invoice cannot be paid.
	for number, reason := range map[string]string{
		"2017-020-002300": "Ma facture est en prélèvement automatique.",
		"2017-020-002350": "Le paiement a été temporairement suspendu.",
	} {
		p.ClickText("Mes factures")
		p.ClickText(number)
		p.MustSee(reason)
		p.MustNotSee("Payer la facture")
	}
	p.ClickText("Mes factures")
	p.ClickText("En trésorerie (1)")
	p.ClickText("2017-020-001402")
	p.MustSee("transmise en trésorerie", "avis de somme à payer")
	p.MustNotSee("Payer la facture")
}

func TestInvoicesOfOthersAnswer404(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	p := loggedIn(t, e, "sistec.localhost", "demo@demo.fr")
	ids := map[string]int64{}
	rows, err := e.App.DB.Query(`SELECT number, id FROM invoices`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		var id int64
		rows.Scan(&n, &id)
		ids[n] = id
	}
	rows.Close()
	for _, number := range []string{"2017-020-002060" /* another sistec resident */, "EAU-2024-000123" /* belcastel's demo@demo.fr */} {
		for _, path := range []string{"/factures/%d", "/factures/%d/pdf"} {
			status, body, _ := p.Fetch(e.URL("sistec.localhost", fmt.Sprintf(path, ids[number])))
			if status != 404 || bytes.HasPrefix(body, []byte("%PDF")) {
				t.Errorf("%s of %s: status %d", fmt.Sprintf(path, ids[number]), number, status)
			}
		}
	}
	status, _, _ := p.Fetch(e.URL("sistec.localhost", fmt.Sprintf("/factures/%d", ids["2017-020-002059"])))
	if status != 200 {
		t.Fatalf("own invoice: %d", status)
	}
}
