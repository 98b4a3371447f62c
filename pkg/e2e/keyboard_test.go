package e2e

import (
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
)

// TestKeyboardOnlyJourney activates an account, logs in, pays an invoice in
// the PayFiP simulator and writes to the service with the keyboard alone:
// Tab, Shift+Tab, Enter and typed text, never a click. Every stop of the
// focus is visible, shows an indicator and follows the page's order (TabTo
// checks it); after each action the focus is on the message that tells
// its outcome, and an error describes the field it is about.
func TestKeyboardOnlyJourney(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	p := browsertest.New(t)
	host := "sistec.localhost"

	p.Visit(e.URL(host, "/"))
	if got := p.Title(); got != "Connexion – MAIRIE DE SISTEC – Le portail des factures" {
		t.Errorf("login page title %q", got)
	}
	p.TabTo("J'active mon compte")
	p.Press(browsertest.Enter)
	p.MustSee("Veuillez saisir votre adresse de messagerie")

	// A mistake: the error takes the focus and describes the field.
	p.TabTo("Adresse mail")
	p.Type("inconnu@demo.fr")
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Activation impossible, adresse inconnue")
	if got := p.Title(); !strings.HasPrefix(got, "Erreur – J'active mon compte – MAIRIE DE SISTEC") {
		t.Errorf("title of a page with an error: %q", got)
	}
	f := p.TabTo("Adresse mail")
	mustDescribe(t, f, "Activation impossible, adresse inconnue")
	p.Type("demo@demo.fr") // tabbing into a field selects its text: typing replaces it
	p.TabTo("Activation")
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Un message d'activation du compte vous a été envoyé avec succès.")

	m := e.WaitMail("demo@demo.fr", "Accès au portail des factures", "/activation/")
	p.Visit(apptest.LinkIn(t, m, e.URL(host, "/activation/")))
	p.TabTo("Nouveau mot de passe")
	p.Type(firstPassword)
	p.TabTo("Confirmation du mot de passe")
	p.Type(secondPassword)
	p.TabTo("Valider")
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Les deux mots de passe saisis sont différents.")
	p.TabTo("Nouveau mot de passe")
	p.Type(firstPassword)
	f = p.TabTo("Confirmation du mot de passe")
	mustDescribe(t, f, "Les deux mots de passe saisis sont différents.")
	p.Type(firstPassword)
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Le nouveau mot de passe a été enregistré avec succès.")

	// The address is filled in: the password, then Enter.
	p.TabTo("Mot de passe")
	p.Type(firstPassword)
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Information importante", "Les factures de restauration scolaire du mois de juin sont disponibles.")
	if got := p.Title(); got != "Information importante – MAIRIE DE SISTEC – Le portail des factures" {
		t.Errorf("home page title %q", got)
	}
	p.TabTo("Fermer")
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Bienvenue sur le portail de dématérialisation")

	// The menu comes before the content.
	p.ShiftTabTo("Mes factures")
	p.Press(browsertest.Enter)
	p.TabTo("2017-020-002059")
	p.Press(browsertest.Enter)
	p.TabTo("Payer la facture")
	p.Press(browsertest.Enter)
	p.MustSee("Nombre de factures 1", "Montant à régler 243,11 €")
	// A second invoice: the page opens on what the selection became.
	p.TabTo("Sélectionner la facture 2017-020-002101")
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Facture 2017-020-002101 sélectionnée. Nombre de factures 2, montant à régler 299,51 €.")
	p.TabTo("Payer la facture")
	p.Press(browsertest.Enter)
	p.MustSee("Informations pour le paiement TIPI", "Montant du règlement : 299,51 €")
	p.TabTo("Payer la facture sur le portail TIPI")
	p.Press(browsertest.Enter)
	p.MustSee("Bienvenue sur la solution de paiement de la DGFIP", "299,51 €")
	p.TabTo("Payer par carte bancaire")
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Votre paiement de 299,51 € a été accepté")
	for _, n := range []string{"2017-020-002059", "2017-020-002101"} {
		if s := invoiceStatus(t, e, n); s != "paid" {
			t.Fatalf("%s after the payment: %s", n, s)
		}
	}

	p.ShiftTabTo("Contact")
	p.Press(browsertest.Enter)
	p.TabTo("Objet")
	p.Type("Cantine de septembre")
	p.TabTo("Envoyer")
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Veuillez saisir votre message.")
	f = p.TabTo("Message")
	mustDescribe(t, f, "Veuillez saisir votre message.")
	p.Type("Bonjour, mon fils ne mange à la cantine que deux jours par semaine.")
	p.TabTo("Envoyer")
	p.Press(browsertest.Enter)
	p.MustHaveFocusOn("Votre message a été envoyé au service.")
	cm := e.WaitMail("facturation@sistec.localhost", "Cantine de septembre")
	if !strings.Contains(cm.Text, "deux jours par semaine") {
		t.Errorf("contact email:\n%s", cm.Text)
	}
}

// mustDescribe fails unless the focused field is marked invalid and
// described by the error message.
func mustDescribe(t *testing.T, f browsertest.Focus, message string) {
	t.Helper()
	if !f.Invalid || !strings.Contains(f.DescribedBy, message) {
		t.Errorf("%s: aria-invalid %v, described by %q; want the error %q", f, f.Invalid, f.DescribedBy, message)
	}
}
