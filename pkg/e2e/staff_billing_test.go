package e2e

import (
	"context"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
	"portail/pkg/demo"
)

// TestAgentWalksPayersInvoicesAndPaperless: the demo agent of sistec finds
// a payer, opens their page and one of their invoices, sends it to the
// treasury with a reason and finds the change in its history, then reads
// "Dématérialisation" — at 1280 px and at 320 px, where no page scrolls
// sideways and every tap target is 44 × 44 px; axe-core checks every page
// at both widths (no serious or critical violation).
func TestAgentWalksPayersInvoicesAndPaperless(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true, DemoStaff: true})
	ctx := context.Background()
	sistec, err := e.App.Tenants.BySlug(ctx, "sistec")
	if err != nil {
		t.Fatal(err)
	}
	// A paperless choice to list, and a long name to wrap on a phone.
	if _, err := e.App.DB.Exec(`UPDATE accounts SET paperless = true, paperless_at = now(),
		display_name = 'Marie-Christine DELAFONTAINE-SAINT-GERMAIN-DES-PRÉS' WHERE tenant_id = $1 AND external_ref = 'SISTEC561'`, sistec.ID); err != nil {
		t.Fatal(err)
	}
	agent := demo.StaffOf("sistec")[1]
	for i, v := range []browsertest.Viewport{browsertest.Desktop, browsertest.Phone} {
		t.Run(v.Name, func(t *testing.T) {
			p := browsertest.New(t)
			p.SetViewport(v)
			p.Visit(e.URL("sistec.localhost", "/admin/connexion"))
			p.Fill("Adresse mail", agent.Email)
			p.Fill("Mot de passe", demo.StaffPassword)
			p.ClickText("Connexion")
			p.MustSee("Tableau de bord", "Redevables", "Factures", "Dématérialisation")

			p.ClickText("Redevables")
			p.MustSee("Référence, nom ou adresse mail", "Test SISTEC560", "Importer des redevables (fichier CSV)")
			p.MustReflow()
			p.Fill("Référence, nom ou adresse mail", "sistec560")
			p.ClickText("Rechercher")
			p.MustSee("1 redevable.")
			p.MustNotSee("Marie-Christine")
			p.ClickText("Test SISTEC560")
			p.MustSee("Identité et compte", "demo@demo.fr", "Non activé", "Renvoyer l'email d'activation", "Ses factures", "2017-020-002059")
			p.MustReflow()

			number := []string{"2017-020-002059", "2017-020-002101"}[i]
			p.ClickText(number)
			p.MustSee("Facture "+number, "Ce que voit le redevable", "le bouton « Payer la facture »", "Historique")
			p.MustReflow()
			p.Fill("Nouvel état", "en trésorerie")
			p.ClickText("Changer l'état")
			p.MustSee("Indiquez le motif de la modification.")
			p.MustReflow()
			p.Fill("Motif du changement d'état", "Titre exécutoire émis")
			p.ClickText("Changer l'état")
			p.MustSee("L'état de la facture est maintenant « en trésorerie ».", "État changé : « non réglée » → « en trésorerie »",
				"Motif : Titre exécutoire émis", "Agent Paul Durand")
			p.MustReflow()

			p.ClickText("Factures")
			p.MustSee("Numéro (début)", number)
			p.MustReflow()
			p.Fill("État", "en trésorerie")
			p.ClickText("Rechercher")
			p.MustSee(number, "Exporter cette recherche (CSV)")
			p.MustReflow()

			p.ClickText("Dématérialisation")
			p.MustSee("Marie-Christine DELAFONTAINE-SAINT-GERMAIN-DES-PRÉS", "factures dématérialisées", "Exporter cette liste (CSV)")
			p.MustNotSee("Test SISTEC560")
			p.MustReflow()
			p.Fill("Choix fait du (JJ/MM/AAAA)", "31/02/2026")
			p.ClickText("Filtrer")
			p.MustSee("La date de début doit s'écrire JJ/MM/AAAA.")
			p.MustReflow()
			p.ClickText("Déconnexion")
		})
	}
}
