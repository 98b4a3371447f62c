package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
	"portail/pkg/payfip/sim"
)

func setMode(t *testing.T, e *apptest.Env, slug, mode string) {
	t.Helper()
	if _, err := e.App.DB.Exec(`UPDATE tenants SET payfip_mode = $2, payfip_saisie = 'T' WHERE slug = $1`, slug, mode); err != nil {
		t.Fatal(err)
	}
	e.App.Tenants.Invalidate()
}

func invoiceStatus(t *testing.T, e *apptest.Env, number string) string {
	t.Helper()
	var s string
	if err := e.App.DB.QueryRow(`SELECT status FROM invoices WHERE number = $1`, number).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// payOne walks the manual from an invoice to PayFiP's page.
func payOne(t *testing.T, p *browsertest.Page, number, amount string) {
	t.Helper()
	p.ClickText("Mes factures")
	p.ClickText(number)
	p.ClickText("Payer la facture")
	p.MustSee("...", "Date", "Numéro", "Montant à régler", "Factures sélectionnées :", "Nombre de factures 1", "Montant à régler "+amount)
	p.ClickText("Payer la facture")
	p.MustSee("Informations pour le paiement TIPI", "Identifiant collectivité : 004200", "Montant du règlement : "+amount, "Références des factures : "+number)
	p.ClickText("Payer la facture sur le portail TIPI")
	p.MustSee("Bienvenue sur la solution de paiement de la DGFIP",
		"Attention il s'agit d'un paiement de test. Aucun paiement ne sera réellement effectué.", amount)
}

func TestPaymentJourneyBothModes(t *testing.T) {
	for _, mode := range []string{"ws", "classic"} {
		t.Run(mode, func(t *testing.T) {
			e := apptest.Start(t, apptest.Options{Demo: true})
			setMode(t, e, "sistec", mode)
			p := loggedIn(t, e, "sistec.localhost", "demo@demo.fr")

			payOne(t, p, "2017-020-002059", "243,11 €")
			p.ClickText("Payer par carte bancaire")
			p.MustSee("Résultat du paiement", "Votre paiement de 243,11 € a été accepté", "2017-020-002059")
			if s := invoiceStatus(t, e, "2017-020-002059"); s != "paid" {
				t.Fatalf("invoice status after payment: %s", s)
			}
			m := e.WaitMail("demo@demo.fr", "Confirmation de votre paiement de 243,11 €")
			if !strings.Contains(m.Text, "2017-020-002059") {
				t.Errorf("confirmation email:\n%s", m.Text)
			}
			status, pdf, h := p.Fetch(e.URL("sistec.localhost", "/paiements"))
			if status != 200 {
				t.Fatalf("Mes paiements: %d", status)
			}
			p.ClickText("Mes factures")
			p.ClickText("Réglées (2)")
			p.ClickText("2017-020-002059")
			p.MustSee("réglée le", "Télécharger l'attestation de paiement")
			p.MustNotSee("Payer la facture")
			var paymentID int64
			e.App.DB.QueryRow(`SELECT id FROM payments WHERE status = 'paid'`).Scan(&paymentID)
			status, pdf, h = p.Fetch(e.URL("sistec.localhost", fmt.Sprintf("/paiements/%d/attestation", paymentID)))
			if status != 200 || h["Content-Type"] != "application/pdf" || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
				t.Fatalf("receipt: %d %v", status, h)
			}
			mustHavePaymentMetrics(t, e, mode)
		})
	}
}

func TestRefusedAndAbandonedPaymentsShowRetryTime(t *testing.T) {
	for _, tc := range []struct{ mode, button string }{{"ws", "Refuser le paiement"}, {"classic", "Annuler"}} {
		t.Run(tc.mode+"/"+tc.button, func(t *testing.T) {
			e := apptest.Start(t, apptest.Options{Demo: true})
			setMode(t, e, "sistec", tc.mode)
			p := loggedIn(t, e, "sistec.localhost", "demo@demo.fr")
			payOne(t, p, "2017-020-002059", "243,11 €")
			p.ClickText(tc.button)
			p.MustSee("Résultat du paiement", "aucun montant n'a été prélevé", "Vous pourrez effectuer une nouvelle tentative à partir de")
			if s := invoiceStatus(t, e, "2017-020-002059"); s != "unpaid" {
				t.Fatalf("invoice status after %s: %s", tc.button, s)
			}
			p.ClickText("Mes factures")
			p.ClickText("2017-020-002059")
			p.MustSee("Vous pourrez effectuer une nouvelle tentative à partir de")
			p.MustNotSee("Payer la facture")
		})
	}
}

func TestThreeInvoicesInOnePayment(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	p := loggedIn(t, e, "sistec.localhost", "demo@demo.fr")
	p.ClickText("Mes factures")
	p.ClickText("2017-020-002059")
	p.ClickText("Payer la facture")
	p.ClickText("2017-020-002101")
	p.ClickText("2017-020-002187")
	p.MustSee("Nombre de factures 3", "Montant à régler 360,71 €")
	p.ClickText("Payer la facture")
	p.MustSee("Montant du règlement : 360,71 €", "2017-020-002059", "2017-020-002101", "2017-020-002187")
	p.ClickText("Payer la facture sur le portail TIPI")
	p.ClickText("Payer par carte bancaire")
	p.MustSee("Votre paiement de 360,71 € a été accepté")
	for _, n := range []string{"2017-020-002059", "2017-020-002101", "2017-020-002187"} {
		if s := invoiceStatus(t, e, n); s != "paid" {
			t.Errorf("%s: %s", n, s)
		}
	}
	var payments int
	e.App.DB.QueryRow(`SELECT count(*) FROM payments WHERE status = 'paid'`).Scan(&payments)
	if payments != 1 {
		t.Errorf("%d paid attempts, want one payment for three invoices", payments)
	}
}

func TestBatchRefusedWhereNotAllowed(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	p := loggedIn(t, e, "belcastel.localhost", "demo@demo.fr")
	p.ClickText("Mes factures")
	p.ClickText("EAU-2024-000456")
	p.ClickText("Payer la facture")
	p.MustSee("Nombre de factures 1", "Montant à régler 98,12 €")
	p.ClickText("EAU-2024-000123")
	p.MustSee("Votre collectivité ne permet de régler qu'une facture à la fois.", "Nombre de factures 1", "Montant à régler 98,12 €")
}

// In classic mode the browser's return is never trusted: when PayFiP's own
// call is late, the resident is told the payment is being checked, then
// sees the outcome on refreshing once PayFiP has called.
func TestClassicResultAwaitsPayFiPsOwnCall(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	setMode(t, e, "sistec", "classic")
	ctl := sim.DefaultControl()
	ctl.NotifyDelayMS = 1500
	if err := e.PayFiP.Sim.Control(ctl); err != nil {
		t.Fatal(err)
	}
	p := loggedIn(t, e, "sistec.localhost", "demo@demo.fr")
	payOne(t, p, "2017-020-002059", "243,11 €")
	p.ClickText("Payer par carte bancaire")
	p.MustSee("Résultat du paiement", "Votre paiement est en cours de vérification", "Actualiser le résultat du paiement")
	p.MustNotSee("a été accepté")
	if strings.Contains(p.URL(), "resultrans") {
		t.Errorf("the result's parameters stay in the address bar: %s", p.URL())
	}
	deadline := time.Now().Add(15 * time.Second)
	for invoiceStatus(t, e, "2017-020-002059") != "paid" {
		if time.Now().After(deadline) {
			t.Fatal("PayFiP's call never paid the invoice")
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.ClickText("Actualiser le résultat du paiement")
	p.MustSee("Votre paiement de 243,11 € a été accepté", "2017-020-002059", "Télécharger l'attestation de paiement")
	deliveries := e.PayFiP.Sim.Payments()[0].Deliveries
	if len(deliveries) == 0 || deliveries[0].Status != 200 {
		t.Fatalf("PayFiP's call to urlcl: %+v", deliveries)
	}
}
