package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
	"portail/pkg/demo"
)

// TestTextsAndSettingsScreens: an agent previews and saves the important
// notice on "Textes"; the administrator changes the contact phone on
// "Paramètres" and suspends every online payment after a confirmation
// step. axe-core checks every page, at desktop width and at 320 px, where
// the pages reflow.
func TestTextsAndSettingsScreens(t *testing.T) {
	e := apptest.Start(t, apptest.Options{DemoStaff: true})
	host := "sistec.localhost"
	p := browsertest.New(t)

	agent := demo.StaffOf("sistec")[1]
	p.Visit(e.URL(host, "/admin/connexion"))
	p.Fill("Adresse mail", agent.Email)
	p.Fill("Mot de passe", demo.StaffPassword)
	p.ClickText("Connexion")
	p.MustSee("Tableau de bord", "Textes")
	p.MustNotSee("Paramètres")
	p.ClickText("Textes")
	p.MustSee("Information importante", "Aperçu tel que les redevables le verront", "Bienvenue sur le portail de dématérialisation")
	p.Fill("Texte de l'information", "Fermeture exceptionnelle du service le 14 juillet.")
	p.ClickText("Prévisualiser")
	p.MustSee("Aperçu : les textes ne sont pas encore enregistrés.", "Fermeture exceptionnelle du service le 14 juillet.")
	p.ClickText("Enregistrer les textes")
	p.MustSee("Les textes ont été enregistrés")
	p.SetViewport(browsertest.Phone)
	p.Visit(e.URL(host, "/admin/textes"))
	p.MustSee("Fermeture exceptionnelle du service le 14 juillet.")
	p.MustReflow()
	p.SetViewport(browsertest.Desktop)
	p.ClickText("Déconnexion")

	admin := demo.StaffOf("sistec")[0]
	p.Fill("Adresse mail", admin.Email)
	p.Fill("Mot de passe", demo.StaffPassword)
	p.ClickText("Connexion")
	m := secretOnPage.FindStringSubmatch(p.Text())
	if m == nil {
		t.Fatalf("no secret on the enrolment page:\n%s", p.Text())
	}
	code, err := totp.GenerateCodeCustom(strings.ReplaceAll(m[1], " ", ""), time.Now(),
		totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	p.Fill("Code affiché par l'application", code)
	p.ClickText("Activer")
	p.ClickText("J'ai noté mes codes, continuer")
	p.ClickText("Paramètres")
	p.MustSee("Contact du service", "Réglages gérés par l'exploitant", "004200")
	p.Fill("Téléphone", "05 61 00 00 01")
	p.ClickText("Enregistrer les paramètres")
	p.MustSee("Les paramètres de la commune ont été enregistrés.")
	p.ClickText("Suspendre tous les paiements en ligne")
	p.MustSee("Suspendre tous les paiements en ligne ?")
	p.SetViewport(browsertest.Phone)
	p.Visit(e.URL(host, "/admin/parametres/paiements"))
	p.MustReflow()
	p.ClickText("Confirmer la suspension")
	p.MustSee("Les paiements en ligne sont suspendus")
	p.MustReflow()
	p.SetViewport(browsertest.Desktop)
	p.ClickText("Rétablir les paiements en ligne")
	p.MustSee("Rétablir les paiements en ligne ?")
}
