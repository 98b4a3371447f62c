package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
	"portail/pkg/imports"
	"portail/pkg/payment"
)

// Long values that must wrap on a phone instead of widening the page.
const (
	longEmail   = "marie-christine.delafontaine-saintgermain@restauration-scolaire.example.fr"
	longName    = "Marie-Christine DELAFONTAINE-SAINT-GERMAIN-DES-PRÉS"
	longNumber  = "REGULARISATION-RESTAURATION-SCOLAIRE-2017-020-002059-AVOIR-0001"
	longObject  = "Restauration scolaire et accueil périscolaire du mois de septembre (régularisation des repas)"
	pagedNumber = "2017-030-%06d"
)

// residentPage is one page of the resident's journey, reached by its URL.
type residentPage struct {
	name, path string
	see        []string
}

// TestEveryResidentPageReflows visits every resident page at 320 CSS px, at
// 200 % zoom on a 1280 px screen (640 CSS px) and at 1280 px: no page is
// wider than its viewport, every tap target is at least 44 × 44 px, and
// axe-core finds no serious or critical violation at any width (Visit and
// every click run it).
func TestEveryResidentPageReflows(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	ctx := context.Background()
	sistec, err := e.App.Tenants.BySlug(ctx, "sistec")
	if err != nil {
		t.Fatal(err)
	}
	// The manual's resident, with a long name and address, a long invoice
	// number and enough invoices for a second page.
	if _, err := e.App.DB.Exec(`UPDATE accounts SET email = $2, display_name = $3 WHERE tenant_id = $1 AND external_ref = 'SISTEC560'`,
		sistec.ID, longEmail, longName); err != nil {
		t.Fatal(err)
	}
	csv := "Numéro;Référence redevable;Objet;Date;Echéance;Montant\n" +
		longNumber + ";SISTEC560;" + longObject + ";12/10/2017;30/10/2017;1 234,56\n"
	for i := range 22 {
		csv += fmt.Sprintf(pagedNumber+";SISTEC560;Restauration scolaire;01/06/2016;15/06/2016;10,00\n", i+1)
	}
	if rep, err := e.App.Imports.ImportNow(ctx, sistec.ID, imports.KindInvoices, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "long.csv", Body: strings.NewReader(csv)}, nil); err != nil || rep.Status != imports.StatusImported {
		t.Fatalf("import: %v %+v", err, rep)
	}
	ids := invoiceIDs(t, e)

	// Payments in each state: paid and refused through the simulator,
	// pending left at PayFiP's page.
	p := loggedIn(t, e, "sistec.localhost", longEmail)
	payOne(t, p, "2017-020-002059", "243,11 €")
	p.ClickText("Payer par carte bancaire")
	p.MustSee("a été accepté")
	paidRef := refdetOf(t, e, ids["2017-020-002059"])
	payOne(t, p, "2017-020-002101", "56,40 €")
	p.ClickText("Refuser le paiement")
	p.MustSee("aucun montant n'a été prélevé")
	refusedRef := refdetOf(t, e, ids["2017-020-002101"])
	var accountID int64
	e.App.DB.QueryRow(`SELECT id FROM accounts WHERE email = $1`, longEmail).Scan(&accountID)
	if _, _, err := e.App.Payments.Start(ctx, sistec, accountID, []int64{ids["2017-020-002187"]}); err != nil {
		t.Fatal(err)
	}
	pendingRef := refdetOf(t, e, ids["2017-020-002187"])
	// Declared paid by other means.
	if _, err := e.App.DB.Exec(`UPDATE invoices SET declared_paid_at = now() WHERE number = $1`, fmt.Sprintf(pagedNumber, 1)); err != nil {
		t.Fatal(err)
	}
	unsubscribe := ""
	e.App.DB.QueryRow(`SELECT unsubscribe_token FROM accounts WHERE id = $1`, accountID).Scan(&unsubscribe)
	// A password page with a live link (opening it uses nothing up).
	if err := e.App.Accounts.RequestReset(ctx, sistec, longEmail, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	reset := apptest.LinkIn(t, e.WaitMail(longEmail, "Accès au portail des factures", "/mot-de-passe/"), e.URL("sistec.localhost", "/mot-de-passe/"))
	resetPath := strings.TrimPrefix(reset, e.URL("sistec.localhost", ""))

	public := []residentPage{
		{"login", "/", []string{"Veuillez vous connecter"}},
		{"activation", "/activation", []string{"Veuillez saisir votre adresse de messagerie"}},
		{"forgot password", "/mot-de-passe-oublie", []string{"Mot de passe oublié"}},
		{"dead password link", "/mot-de-passe/" + strings.Repeat("x", 43), []string{"Ce lien n'est plus valable"}},
		{"dead address link", "/adresse/" + strings.Repeat("x", 43), []string{"Ce lien n'est plus valable"}},
		{"unsubscribe", "/desabonnement/" + unsubscribe, []string{longEmail}},
		{"unsubscribe from reminders", "/desabonnement/" + unsubscribe + "?liste=rappels", []string{"Ne plus recevoir ces rappels"}},
		{"accessibility", "/accessibilite", []string{"Déclaration d'accessibilité"}},
		{"personal data", "/donnees-personnelles", []string{"Responsable du traitement", "cnil.fr"}},
		{"account closed", "/compte-ferme", []string{"Votre compte est fermé"}},
		{"404", "/nulle-part", []string{"Page introuvable"}},
		{"result, anonymous", "/paiement/retour-classique?refdet=" + paidRef, []string{"n'est affiché qu'à la personne qui l'a effectué"}},
	}
	resident := []residentPage{
		{"Mes factures", "/factures", []string{longNumber, "Page 1 sur 2"}},
		{"Mes factures page 2", "/factures?statut=non-reglees&page=2", []string{"Page 2 sur 2"}},
		{"Mes factures, réglées", "/factures?statut=reglees", []string{"2017-020-002059"}},
		{"Mes factures, trésorerie", "/factures?statut=tresorerie", []string{"2017-020-001402"}},
		{"invoice, payable", fmt.Sprintf("/factures/%d", ids[longNumber]), []string{"Payer la facture", longObject}},
		{"invoice, paid online", fmt.Sprintf("/factures/%d", ids["2017-020-002059"]), []string{"Télécharger l'attestation de paiement"}},
		{"invoice, paid", fmt.Sprintf("/factures/%d", ids["2017-020-001850"]), []string{"réglée le"}},
		{"invoice, treasury", fmt.Sprintf("/factures/%d", ids["2017-020-001402"]), []string{"Facture en trésorerie"}},
		{"invoice, direct debit", fmt.Sprintf("/factures/%d", ids["2017-020-002300"]), []string{"Ma facture est en prélèvement automatique."}},
		{"invoice, suspended", fmt.Sprintf("/factures/%d", ids["2017-020-002350"]), []string{"Le paiement a été temporairement suspendu."}},
		{"invoice, below the minimum", fmt.Sprintf("/factures/%d", ids["2017-020-002360"]), []string{"inférieur à 1,00 €"}},
		{"invoice, payment in progress", fmt.Sprintf("/factures/%d", ids["2017-020-002187"]), []string{payment.ReasonPending}},
		{"invoice, retry delay", fmt.Sprintf("/factures/%d", ids["2017-020-002101"]), []string{"Vous pourrez effectuer une nouvelle tentative"}},
		{"invoice, declared paid", fmt.Sprintf("/factures/%d", ids[fmt.Sprintf(pagedNumber, 1)]), []string{"Marquer la facture comme non réglée"}},
		{"selection", fmt.Sprintf("/paiement?facture=%d&facture=%d", ids[longNumber], ids[fmt.Sprintf(pagedNumber, 2)]), []string{"Nombre de factures 2"}},
		{"selection page 2", fmt.Sprintf("/paiement?facture=%d&page=2", ids[longNumber]), []string{"Page 2 sur 2"}},
		{"TIPI information", fmt.Sprintf("/paiement/informations?facture=%d&facture=%d", ids[longNumber], ids[fmt.Sprintf(pagedNumber, 2)]), []string{"Informations pour le paiement TIPI", longNumber}},
		{"result, paid", "/paiement/retour-classique?refdet=" + paidRef, []string{"a été accepté"}},
		{"result, refused", "/paiement/retour-classique?refdet=" + refusedRef, []string{"aucun montant n'a été prélevé"}},
		{"result, pending", "/paiement/retour-classique?refdet=" + pendingRef, []string{"en cours de traitement"}},
		{"Mes paiements", "/paiements", []string{"Attestation du"}},
		{"Mes informations", "/informations", []string{longEmail, "Je souhaite recevoir par courriel :"}},
		{"paperless confirmation", "/informations?papier=confirmer", []string{"Confirmation"}},
		{"email change", "/informations/adresse", []string{"Nouvelle adresse mail"}},
		{"password change", "/informations/mot-de-passe", []string{"Confirmation du mot de passe"}},
		{"account closing", "/informations/fermeture", []string{"Ce que la commune conserve", "Fermer définitivement mon compte"}},
		{"Contact", "/contact", []string{"Contacter le service"}},
	}

	for i, v := range []browsertest.Viewport{browsertest.Phone, browsertest.Zoom200, browsertest.Desktop} {
		t.Run(v.Name, func(t *testing.T) {
			p := browsertest.New(t)
			p.SetViewport(v)
			shot := 0
			reflows := func(name string) {
				t.Helper()
				p.MustReflow()
				// PORTAIL_TEST_SCREENSHOTS=dir keeps a picture of every page, to look at.
				if dir := os.Getenv("PORTAIL_TEST_SCREENSHOTS"); dir != "" {
					shot++
					p.Screenshot(filepath.Join(dir, fmt.Sprintf("%d-%02d-%s.png", v.Width, shot, strings.ReplaceAll(name, " ", "-"))))
				}
			}
			check := func(pg residentPage) {
				t.Helper()
				p.Visit(e.URL("sistec.localhost", pg.path))
				p.MustSee(pg.see...)
				reflows(pg.name)
			}
			for _, pg := range public {
				check(pg)
			}
			check(residentPage{"password link", resetPath, []string{"Saisissez votre nouveau mot de passe"}})
			// Log in: the notice first, then the home page without it.
			p.Visit(e.URL("sistec.localhost", "/"))
			p.Fill("Adresse mail", longEmail)
			p.Fill("Mot de passe", firstPassword)
			p.ClickText("Connexion")
			p.MustSee("Information importante", longName)
			reflows("notice")
			p.ClickText("Fermer")
			p.MustSee("Bienvenue sur le portail de dématérialisation")
			reflows("home")
			for _, pg := range resident {
				check(pg)
			}
			// An error next to its field.
			p.Visit(e.URL("sistec.localhost", "/contact"))
			p.ClickText("Envoyer")
			p.MustSee("Veuillez saisir votre message.")
			reflows("contact error")
			// PayFiP's page, as residents see the simulator.
			number := fmt.Sprintf(pagedNumber, 10+i)
			p.Visit(e.URL("sistec.localhost", fmt.Sprintf("/paiement/informations?facture=%d", ids[number])))
			p.ClickText("Payer la facture sur le portail TIPI")
			p.MustSee("Bienvenue sur la solution de paiement de la DGFIP")
			reflows("PayFiP")
		})
	}
}

// invoiceIDs maps every invoice number to its id.
func invoiceIDs(t *testing.T, e *apptest.Env) map[string]int64 {
	t.Helper()
	ids := map[string]int64{}
	rows, err := e.App.DB.Query(`SELECT number, id FROM invoices`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		var id int64
		if err := rows.Scan(&n, &id); err != nil {
			t.Fatal(err)
		}
		ids[n] = id
	}
	return ids
}

// refdetOf is the reference of the last payment attempt on an invoice.
func refdetOf(t *testing.T, e *apptest.Env, invoiceID int64) string {
	t.Helper()
	var ref string
	if err := e.App.DB.QueryRow(`SELECT p.refdet FROM payments p JOIN payment_invoices pi ON pi.tenant_id = p.tenant_id AND pi.payment_id = p.id
		WHERE pi.invoice_id = $1 ORDER BY p.id DESC LIMIT 1`, invoiceID).Scan(&ref); err != nil {
		t.Fatal(err)
	}
	return ref
}
