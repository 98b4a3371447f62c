package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
	"portail/pkg/demo"
)

// TestAgentImportsAndFindsPayments: the demo agent of sistec reads the
// dashboard, imports a payers file through "Imports" and watches it to its
// report (the page's script follows the progress and shows the report),
// sees a refused file say nothing was imported, then finds a payment and
// its PayFiP data — at 1280 px and at 320 px, where no page scrolls
// sideways and every tap target is 44 × 44 px; axe-core checks every page
// at both widths (no serious or critical violation).
func TestAgentImportsAndFindsPayments(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true, DemoStaff: true})
	ctx := context.Background()
	sistec, err := e.App.Tenants.BySlug(ctx, "sistec")
	if err != nil {
		t.Fatal(err)
	}
	// A paid attempt to find (the payment flow itself is tested elsewhere).
	if _, err := e.App.DB.Exec(`
		WITH inv AS (SELECT tenant_id, id, account_id, amount_cents FROM invoices WHERE tenant_id = $1 AND number = '2017-020-002059'),
		p AS (INSERT INTO payments (tenant_id, account_id, refdet, id_op, mode, amount_cents, email, status, resolved_at, resolved_by,
				resultrans, numauto, dattrans, heurtrans, paid_at)
			SELECT tenant_id, account_id, 'E2EREFDET001', 'e2e-idop-1', 'ws', amount_cents, 'demo@demo.fr', 'paid', now(), 'notification',
				'P', '654321', '02122026', '1015', now() FROM inv RETURNING tenant_id, id)
		INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents, status)
		SELECT p.tenant_id, p.id, inv.id, inv.amount_cents, 'paid' FROM p, inv`, sistec.ID); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	agent := demo.StaffOf("sistec")[1]
	for i, v := range []browsertest.Viewport{browsertest.Desktop, browsertest.Phone} {
		t.Run(v.Name, func(t *testing.T) {
			payers := filepath.Join(dir, fmt.Sprintf("redevables-%d.csv", i))
			os.WriteFile(payers, fmt.Appendf(nil, "Référence;Nom;Email\nE2E%d;Payeur Navigateur %d;e2e%d@demo.fr\nE2EBAD%d;Sans adresse;pas-une-adresse\n", i, i, i, i), 0o644)
			refused := filepath.Join(dir, fmt.Sprintf("factures-%d.csv", i))
			os.WriteFile(refused, fmt.Appendf(nil, "Numéro;Référence redevable;Objet;Date;Echéance;Montant\nE2E-%d;PERSONNE;x;10/11/2026;21/11/2026;1,00\n", i), 0o644)

			p := browsertest.New(t)
			p.SetViewport(v)
			p.Visit(e.URL("sistec.localhost", "/admin/connexion"))
			p.Fill("Adresse mail", agent.Email)
			p.Fill("Mot de passe", demo.StaffPassword)
			p.ClickText("Connexion")
			p.MustSee("Tableau de bord", "Reste dû par les redevables", "Paiements en ligne par mois", "Montants dus et payés sur 12 mois",
				"Comptes activés", "Derniers imports")
			p.MustReflow()

			p.ClickText("Imports")
			p.MustSee("Importer un fichier", "Fichier CSV des redevables", "Historique des imports")
			p.MustReflow()
			p.SetFiles("Fichier CSV des redevables", payers)
			p.ClickText("Importer")
			// The page's script follows the job and shows the report.
			p.MustSee("Import terminé", "les lignes valides sont importées", "Adresse mail invalide", fmt.Sprintf("redevables-%d.csv", i))
			p.MustReflow()

			p.ClickText("Retour aux imports")
			p.ClickText("Fichier de factures et ses PDF")
			p.MustSee("Fichier CSV des factures", "Archive ZIP des PDF (facultative)")
			p.MustReflow()
			p.SetFiles("Fichier CSV des factures", refused)
			p.ClickText("Importer")
			p.MustSee("Fichier refusé : rien n'a été importé.", "Redevable inconnu")
			p.MustReflow()

			p.ClickText("Paiements")
			p.MustSee("1 paiement.", "E2EREFDET001", "Exporter ces paiements (CSV)")
			p.MustReflow()
			p.Fill("Numéro de facture", "2017-020-002059")
			p.ClickText("Rechercher")
			p.MustSee("1 paiement.", "Carte bancaire")
			p.ClickText("E2EREFDET001")
			p.MustSee("Paiement E2EREFDET001", "Données PayFiP", "e2e-idop-1", "654321", "Multi Services")
			p.MustReflow()
			p.ClickText("Retour aux paiements")
			p.Fill("Montant minimum (€)", "douze")
			p.ClickText("Rechercher")
			p.MustSee("Les montants s'écrivent en euros, par exemple 12,50.")
			p.MustReflow()
			p.ClickText("Déconnexion")
		})
	}
}
