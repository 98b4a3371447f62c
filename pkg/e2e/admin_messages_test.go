package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
	"portail/pkg/demo"
)

// TestAgentWalksMessagesAndAnnonces: the demo agent of sistec answers a
// resident's message and sends an announcement, following its progress
// to the end; the resident reads the reply on the Contact page. Then every
// page of Messages and Annonces at 320 CSS px: no sideways scrolling, no
// small target. axe-core checks each page at each width (Visit and every
// click run it). The agent finds no Clés d'API in the menu and gets 403
// there; the administrator's Clés d'API page passes axe-core too.
func TestAgentWalksMessagesAndAnnonces(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true, DemoStaff: true})
	ctx := context.Background()
	sistec, err := e.App.Tenants.BySlug(ctx, "sistec")
	if err != nil {
		t.Fatal(err)
	}
	resident := loggedIn(t, e, "sistec.localhost", "demo@demo.fr")
	resident.ClickText("Contact")
	resident.Fill("Objet", "Facture de juillet")
	resident.Fill("Message", "Bonjour,\nj'ai payé la facture 2017-020-002059 au guichet.")
	resident.ClickText("Envoyer")
	resident.MustSee("Votre message a été envoyé au service.")

	p := browsertest.New(t)
	p.SetViewport(browsertest.Desktop)
	agent := demo.StaffOf("sistec")[1]
	p.Visit(e.URL("sistec.localhost", "/admin/connexion"))
	p.Fill("Adresse mail", agent.Email)
	p.Fill("Mot de passe", demo.StaffPassword)
	p.ClickText("Connexion")
	p.MustSee("Tableau de bord", "Messages", "Annonces")
	p.MustNotSee("Clés d'API")

	// Messages: the inbox, the thread, a reply.
	p.ClickText("Messages")
	p.MustSee("1 conversation.", "Test SISTEC560", "Facture de juillet", "1 non lu")
	p.ClickText("Facture de juillet")
	p.MustSee("j'ai payé la facture 2017-020-002059 au guichet.", "Répondre")
	p.ClickText("Envoyer la réponse")
	p.MustSee("Veuillez saisir votre réponse.")
	p.Fill("Votre réponse", "Bonjour,\nle paiement au guichet est bien enregistré.")
	p.ClickText("Envoyer la réponse")
	p.MustSee("Votre réponse a été envoyée au redevable par courriel", "Réponse de Paul Durand")
	e.WaitMail("demo@demo.fr", "Réponse à votre message", "le paiement au guichet est bien enregistré.")
	resident.ClickText("Contact")
	resident.MustSee("Mes échanges avec le service", "Réponse du service", "le paiement au guichet est bien enregistré.")

	// Annonces: the form, the preview, the confirmation, the progress.
	p.ClickText("Annonces")
	p.MustSee("0 annonce envoyée.")
	p.ClickText("Nouvelle annonce")
	p.ClickText("Voir l'aperçu")
	p.MustSee("Veuillez saisir l'objet de l'annonce.")
	p.Fill("Objet", "Fermeture de la mairie")
	p.Fill("Texte", "La mairie sera fermée le 24 décembre.")
	p.ClickText("Voir l'aperçu")
	p.MustSee("Aperçu de l'annonce", "Objet : Fermeture de la mairie", "Bonjour Prénom NOM,", "Envoyer à 1 habitant")
	p.ClickText("Envoyer à 1 habitant")
	p.MustSee("L'annonce est en cours d'envoi.", "Progression de l'envoi")
	// The page's script follows the sending to its end.
	p.MustSee("Envoyés : 1 sur 1. Échecs : 0. Envoi terminé.")
	e.WaitMail("demo@demo.fr", "Fermeture de la mairie", "La mairie sera fermée le 24 décembre.")

	// Every page at 320 px.
	var threadID, announcementID string
	e.App.DB.QueryRow(`SELECT id::text FROM message_threads WHERE tenant_id = $1`, sistec.ID).Scan(&threadID)
	e.App.DB.QueryRow(`SELECT id::text FROM announcements WHERE tenant_id = $1`, sistec.ID).Scan(&announcementID)
	p.SetViewport(browsertest.Phone)
	for path, see := range map[string]string{
		"/admin/messages":                   "Facture de juillet",
		"/admin/messages?etat=tous":         "Facture de juillet",
		"/admin/messages/" + threadID:       "le paiement au guichet est bien enregistré.",
		"/admin/annonces":                   "Fermeture de la mairie",
		"/admin/annonces/nouvelle":          "Nouvelle annonce",
		"/admin/annonces/" + announcementID: "Envoi terminé.",
	} {
		p.Visit(e.URL("sistec.localhost", path))
		p.MustSee(see)
		p.MustReflow()
	}
	resident.SetViewport(browsertest.Phone)
	resident.Visit(e.URL("sistec.localhost", "/contact"))
	resident.MustSee("Réponse du service")
	resident.MustReflow()

	// Clés d'API: not an agent's.
	p.Visit(e.URL("sistec.localhost", "/admin/cles-api"))
	if p.Status() != 403 {
		t.Fatalf("an agent on Clés d'API: %d", p.Status())
	}
	p.MustSee("Accès refusé")

	// The administrator's Clés d'API, after enrolling the second factor.
	a := browsertest.New(t)
	a.SetViewport(browsertest.Desktop)
	admin := demo.StaffOf("sistec")[0]
	a.Visit(e.URL("sistec.localhost", "/admin/connexion"))
	a.Fill("Adresse mail", admin.Email)
	a.Fill("Mot de passe", demo.StaffPassword)
	a.ClickText("Connexion")
	m := secretOnPage.FindStringSubmatch(a.Text())
	if m == nil {
		t.Fatalf("no secret on the enrolment page:\n%s", a.Text())
	}
	code, err := totp.GenerateCodeCustom(strings.ReplaceAll(m[1], " ", ""), time.Now(),
		totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	a.Fill("Code affiché par l'application", code)
	a.ClickText("Activer")
	a.ClickText("J'ai noté mes codes, continuer")
	a.ClickText("Clés d'API")
	a.MustSee("pas encore de clé")
	a.Fill("Nom de la clé (par exemple le logiciel de facturation)", "Logiciel de facturation")
	a.ClickText("Créer la clé")
	a.MustSee("Copiez-la maintenant : elle ne sera plus jamais affichée.", "Clé à copier dans le logiciel de facturation")
	a.ClickText("Révoquer la clé Logiciel de facturation")
	a.MustSee("La clé est révoquée", "révoquée le")
	a.SetViewport(browsertest.Phone)
	a.Visit(e.URL("sistec.localhost", "/admin/cles-api"))
	a.MustReflow()
}
