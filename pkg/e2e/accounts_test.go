package e2e

import (
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
)

const (
	firstPassword  = "Cerf-volant sous la pluie 42"
	secondPassword = "Trois tortues traversent 2026"
)

// TestManualAccountJourney walks the manual: activation, login with "Se
// souvenir de moi", the notice, Mes informations (paperless, email change),
// password change, Déconnexion.
func TestManualAccountJourney(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	p := browsertest.New(t)

	p.Visit(e.URL("sistec.localhost", "/"))
	p.ClickText("J'active mon compte")
	p.MustSee(".. MAIRIE DE SISTEC ..", "Facturation Restauration scolaire", "LE PORTAIL DES FACTURES", "Veuillez saisir votre adresse de messagerie")
	p.Fill("Adresse mail", "demo@demo.fr")
	p.ClickText("Activation")
	p.MustSee("Un message d'activation du compte vous a été envoyé avec succès.")

	m := e.WaitMail("demo@demo.fr", "Accès au portail des factures", "/activation/")
	p.Visit(apptest.LinkIn(t, m, e.URL("sistec.localhost", "/activation/")))
	p.MustSee("Saisissez votre nouveau mot de passe")
	p.Fill("Nouveau mot de passe", firstPassword)
	p.Fill("Confirmation du mot de passe", firstPassword)
	p.ClickText("Valider")
	p.MustSee("Le nouveau mot de passe a été enregistré avec succès.")

	p.Fill("Mot de passe", firstPassword)
	p.Check("Se souvenir de moi")
	p.ClickText("Connexion")
	p.MustSee("Test SISTEC560", "Information importante", "Les factures de restauration scolaire du mois de juin sont disponibles.")
	p.ClickText("Fermer")
	p.MustSee("Bienvenue sur le portail de dématérialisation",
		"Un espace individualisé pour la consultation et le paiement des factures de la mairie de SISTEC.",
		"Grâce à une interface simple et soignée, vous pourrez accéder à vos factures en un clic.",
		"Avec TIPI, vous pourrez procéder au paiement de vos factures en toute sécurité.",
		"Un espace de communication privilégié avec la mairie de SISTEC.",
		"Mes factures", "Mes informations", "Contact", "Déconnexion")
	hasRemember := false
	for _, c := range p.Cookies() {
		hasRemember = hasRemember || (c.Name == "portail_souvenir" && c.HTTPOnly)
	}
	if !hasRemember {
		t.Error("no HttpOnly remember-me cookie after Se souvenir de moi")
	}

	p.ClickText("Mes informations")
	p.ClickText("Ne pas recevoir les factures au format papier")
	p.MustSee("Confirmation", "Vous avez demandé à ne plus recevoir les factures au format papier.",
		"Si vous confirmez, un message électronique sera automatiquement envoyé au service concerné.", "Confirmer", "Annuler")
	p.ClickText("Confirmer")
	p.MustSee("vous ne recevrez plus les factures au format papier")
	sm := e.WaitMail("facturation@sistec.localhost", "factures papier")
	if !strings.Contains(sm.Text, "Test SISTEC560") || !strings.Contains(sm.Text, "SISTEC560") {
		t.Errorf("service's paperless email lacks the payer:\n%s", sm.Text)
	}

	p.ClickText("Changer l'adresse mail")
	p.Fill("Nouvelle adresse mail", "nouvelle.adresse@demo.fr")
	p.Fill("Mot de passe actuel", firstPassword)
	p.ClickText("Valider")
	p.MustSee("Un message de validation a été envoyé à nouvelle.adresse@demo.fr")
	e.WaitMail("demo@demo.fr", "Changement d'adresse mail demandé")
	vm := e.WaitMail("nouvelle.adresse@demo.fr", "Confirmez votre nouvelle adresse mail", "/adresse/")
	p.Visit(apptest.LinkIn(t, vm, e.URL("sistec.localhost", "/adresse/")))
	p.ClickText("Confirmer la nouvelle adresse")
	p.MustSee("Votre nouvelle adresse mail est enregistrée.")

	// The new address is now the login (the old session still runs: log out first).
	p.Visit(e.URL("sistec.localhost", "/accueil"))
	p.ClickText("Déconnexion")
	p.MustSee("Veuillez vous connecter")
	p.Fill("Adresse mail", "nouvelle.adresse@demo.fr")
	p.Fill("Mot de passe", firstPassword)
	p.ClickText("Connexion")
	// The notice shows again at each opening of the space.
	p.MustSee("Information importante")
	p.ClickText("Fermer")

	p.ClickText("Mes informations")
	p.MustSee("nouvelle.adresse@demo.fr")
	p.ClickText("Changer le mot de passe")
	p.Fill("Mot de passe actuel", firstPassword)
	p.Fill("Nouveau mot de passe", secondPassword)
	p.Fill("Confirmation du mot de passe", secondPassword)
	p.ClickText("Valider")
	p.MustSee("Votre mot de passe a été modifié.")

	p.ClickText("Contact")
	p.MustSee("Contacter le service", "Informations générales", "Num téléphone : 05 61 00 19 30", "Horaires : du lundi au vendredi, de 7h à 22h")
	p.Fill("Objet", "Cantine de septembre")
	p.Fill("Message", "Bonjour, mon fils mange à la cantine deux jours par semaine seulement.")
	p.ClickText("Envoyer")
	p.MustSee("Votre message a été envoyé au service.")
	cm := e.WaitMail("facturation@sistec.localhost", "Cantine de septembre")
	if !strings.Contains(cm.Text, "deux jours par semaine") {
		t.Errorf("contact email:\n%s", cm.Text)
	}

	p.ClickText("Déconnexion")
	p.MustSee("LE PORTAIL DES FACTURES", "Veuillez vous connecter")
	p.Visit(e.URL("sistec.localhost", "/accueil"))
	p.MustSee("Veuillez vous connecter")
}

func TestForgottenPasswordJourney(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	p := browsertest.New(t)
	// An account activated beforehand.
	p.Visit(e.URL("belcastel.localhost", "/activation"))
	p.Fill("Adresse mail", "paul.roux@demo.fr")
	p.ClickText("Activation")
	m := e.WaitMail("paul.roux@demo.fr", "Accès au portail des factures", "/activation/")
	p.Visit(apptest.LinkIn(t, m, e.URL("belcastel.localhost", "/activation/")))
	p.Fill("Nouveau mot de passe", firstPassword)
	p.Fill("Confirmation du mot de passe", firstPassword)
	p.ClickText("Valider")

	p.Visit(e.URL("belcastel.localhost", "/"))
	p.ClickText("Oublié ?")
	p.MustSee("Mail :", "Valider", "Annuler")
	p.Fill("Mail :", "paul.roux@demo.fr")
	p.ClickText("Valider")
	p.MustSee("un message vient de vous être envoyé")
	rm := e.WaitMail("paul.roux@demo.fr", "Accès au portail des factures", "/mot-de-passe/")
	link := apptest.LinkIn(t, rm, e.URL("belcastel.localhost", "/mot-de-passe/"))
	p.Visit(link)
	p.MustSee("Saisissez votre nouveau mot de passe")
	p.Fill("Nouveau mot de passe", secondPassword)
	p.Fill("Confirmation du mot de passe", secondPassword)
	p.ClickText("Valider")
	p.MustSee("Le nouveau mot de passe a été enregistré avec succès.")
	p.Fill("Mot de passe", secondPassword)
	p.ClickText("Connexion")
	p.MustSee("Paul ROUX", "Information importante")
	// The link served once: opened again it says so.
	p.Visit(link)
	p.MustSee("Ce lien n'est plus valable")
}
