package e2e

import (
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
	"portail/pkg/demo"
)

var secretOnPage = regexp.MustCompile(`Clé : ([A-Z2-7 ]+)`)

// TestAdministratorEnrolsThenSeesTheBackOffice: the demo admin of sistec
// logs in, enrols the TOTP second factor from the secret shown as text
// (the test computes the code as an authenticator app would), keeps the
// recovery codes, and finds the dashboard and an administrator's menu; an
// agent's menu lacks the admin screens. axe-core checks every page.
func TestAdministratorEnrolsThenSeesTheBackOffice(t *testing.T) {
	var ahead atomic.Int64 // how far the portal's clock runs ahead
	portalNow := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	e := apptest.Start(t, apptest.Options{DemoStaff: true, Now: portalNow})
	p := browsertest.New(t)
	admin := demo.StaffOf("sistec")[0]

	p.Visit(e.URL("sistec.localhost", "/admin"))
	p.MustSee(".. MAIRIE DE SISTEC ..", "Espace des agents", "ESPACE DES AGENTS", "Veuillez vous connecter")
	p.Fill("Adresse mail", admin.Email)
	p.Fill("Mot de passe", demo.StaffPassword)
	p.ClickText("Connexion")
	p.MustSee("Second facteur d'authentification", "Votre rôle d'administrateur exige un second facteur d'authentification.",
		"Scannez ce code QR, ou saisissez la clé ci-dessous.")
	// Nothing else opens before the enrolment.
	p.Visit(e.URL("sistec.localhost", "/admin/journal"))
	p.MustSee("Votre rôle d'administrateur exige un second facteur d'authentification.")

	codeNow := enrolTOTP(t, p, portalNow)
	p.MustSee("Tableau de bord", "Bonjour Claire Martin", "Claire Martin", "Administrateur",
		"Équipe", "Journal", "Mon profil", "Déconnexion")

	p.ClickText("Équipe")
	p.MustSee("Paul Durand", "Nadia Benali", "Inviter un membre")
	p.Fill("Adresse mail", "nouvelle.agente@sistec.fr")
	p.Fill("Rôle", "Agent")
	p.ClickText("Envoyer l'invitation")
	p.MustSee("Une invitation a été envoyée à nouvelle.agente@sistec.fr")
	p.ClickText("Journal")
	p.MustSee("staff.totp.enrolled", "staff.login.password_ok")
	p.ClickText("Mon profil")
	p.MustSee("Le second facteur est activé. Codes de secours inutilisés : 10.", "Un administrateur garde son second facteur.")
	p.ClickText("Déconnexion")
	p.MustSee("Veuillez vous connecter")

	// The next login asks the code (of a later time step: a code is good once).
	ahead.Store(int64(30 * time.Second))
	p.Fill("Adresse mail", admin.Email)
	p.Fill("Mot de passe", demo.StaffPassword)
	p.ClickText("Connexion")
	p.MustSee("Saisissez le code à 6 chiffres affiché par votre application d'authentification.")
	p.Fill("Code", codeNow())
	p.ClickText("Valider")
	p.MustSee("Tableau de bord", "Bonjour Claire Martin")
	p.ClickText("Déconnexion")

	// The pages of emailed links.
	inv := e.WaitMail("nouvelle.agente@sistec.fr", "Invitation à l'espace des agents")
	p.Visit(apptest.LinkIn(t, inv, e.URL("sistec.localhost", "/admin/invitation/")))
	p.MustSee("Vous êtes invité(e) à rejoindre l'espace des agents de MAIRIE DE SISTEC avec le rôle « Agent ».", "Nom et prénom")
	p.Visit(e.URL("sistec.localhost", "/admin/connexion"))
	p.ClickText("Mot de passe oublié ?")
	p.Fill("Adresse mail", admin.Email)
	p.ClickText("Recevoir un lien")
	p.MustSee("Si cette adresse est celle d'un agent de la commune")
	reset := e.WaitMail(admin.Email, "nouveau mot de passe")
	p.Visit(apptest.LinkIn(t, reset, e.URL("sistec.localhost", "/admin/mot-de-passe/")))
	p.MustSee("Nouveau mot de passe", "Confirmation du mot de passe")
	p.Visit(e.URL("sistec.localhost", "/admin/connexion"))

	// An agent (no second factor yet) sees no administrator's screen.
	agent := demo.StaffOf("sistec")[1]
	p.Fill("Adresse mail", agent.Email)
	p.Fill("Mot de passe", demo.StaffPassword)
	p.ClickText("Connexion")
	p.MustSee("Tableau de bord", "Paul Durand", "Agent", "Mon profil")
	p.MustNotSee("Équipe", "Journal")
	p.Visit(e.URL("sistec.localhost", "/admin/journal"))
	if p.Status() != 403 {
		t.Fatalf("an agent on the Journal: %d", p.Status())
	}
	p.MustSee("Accès refusé")
	p.Visit(e.URL("sistec.localhost", "/admin/profil"))
	p.ClickText("Activer le second facteur")
	p.MustSee("Scannez ce code QR, ou saisissez la clé ci-dessous.", "Retour à mon profil")
}
