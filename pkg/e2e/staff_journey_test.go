package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
	"portail/pkg/demo"
)

// enrolTOTP confirms the enrolment page shown and returns a function giving
// the code of the portal's current time step, as an authenticator app would.
func enrolTOTP(t *testing.T, p *browsertest.Page, now func() time.Time) func() string {
	t.Helper()
	p.MustSee("Scannez ce code QR, ou saisissez la clé ci-dessous.")
	m := secretOnPage.FindStringSubmatch(p.Text())
	if m == nil {
		t.Fatalf("no secret as text on the enrolment page:\n%s", p.Text())
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	code := func() string {
		c, err := totp.GenerateCodeCustom(secret, now(), totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p.Fill("Code affiché par l'application", code())
	p.ClickText("Activer")
	p.MustSee("Codes de secours", "Notez ou imprimez ces codes maintenant et gardez-les en lieu sûr : ils ne seront plus affichés.")
	p.ClickText("J'ai noté mes codes, continuer")
	return code
}

// TestStaffJourneyFromInvitationToExport is the back office end to end, in
// Chromium, on sistec: the administrator invites an agent (the email is
// caught); the agent accepts, sets a password and enrols the second factor;
// imports payers, then an invoice with its PDF through the Imports screen,
// watching the progress to the report; the resident sees the new invoice
// and receives the alert, writes through "Contact"; the agent replies; the
// resident reads the reply on the Contact page and by email, and pays in
// the simulator; the agent finds the payment and exports the CSV that
// holds it.
func TestStaffJourneyFromInvitationToExport(t *testing.T) {
	var ahead atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	e := apptest.Start(t, apptest.Options{Demo: true, DemoStaff: true, Now: now})
	dir := t.TempDir()

	// The resident has an account before the import, so that the new
	// invoice's alert reaches them.
	resident := loggedIn(t, e, "sistec.localhost", "demo@demo.fr")

	// The administrator (second factor enrolled at the first login)
	// invites an agent.
	admin := browsertest.New(t)
	admin.Visit(e.URL("sistec.localhost", "/admin"))
	admin.Fill("Adresse mail", demo.StaffOf("sistec")[0].Email)
	admin.Fill("Mot de passe", demo.StaffPassword)
	admin.ClickText("Connexion")
	enrolTOTP(t, admin, now)
	admin.ClickText("Équipe")
	admin.Fill("Adresse mail", "agent.parcours@sistec.fr")
	admin.Fill("Rôle", "Agent")
	admin.ClickText("Envoyer l'invitation")
	admin.MustSee("Une invitation a été envoyée à agent.parcours@sistec.fr")

	// The agent accepts from the email, then enrols the second factor.
	const agentPassword = "Moulin-Tilleul-Chemin-2026"
	inv := e.WaitMail("agent.parcours@sistec.fr", "Invitation à l'espace des agents")
	agent := browsertest.New(t)
	agent.Visit(apptest.LinkIn(t, inv, e.URL("sistec.localhost", "/admin/invitation/")))
	agent.Fill("Nom et prénom", "Alice Parcours")
	agent.Fill("Mot de passe", agentPassword)
	agent.Fill("Confirmation du mot de passe", agentPassword)
	agent.ClickText("Accepter l'invitation")
	agent.MustSee("Tableau de bord", "Alice Parcours", "Agent", "Imports", "Paiements", "Messages")
	agent.MustNotSee("Équipe", "Journal", "Clés d'API")
	agent.ClickText("Mon profil")
	agent.ClickText("Activer le second facteur")
	agentCode := enrolTOTP(t, agent, now)
	// Her next login asks the code (of a later time step).
	agent.ClickText("Déconnexion")
	ahead.Add(int64(30 * time.Second))
	agent.Fill("Adresse mail", "agent.parcours@sistec.fr")
	agent.Fill("Mot de passe", agentPassword)
	agent.ClickText("Connexion")
	agent.Fill("Code", agentCode())
	agent.ClickText("Valider")
	agent.MustSee("Tableau de bord", "Bonjour Alice Parcours")

	// Payers, then an invoice with its PDF, through the screen.
	payers := filepath.Join(dir, "redevables.csv")
	os.WriteFile(payers, []byte("Référence;Nom;Email\nPARCOURS1;Jeanne Parcours;jeanne.parcours@exemple.fr\n"), 0o644)
	invoices := filepath.Join(dir, "factures.csv")
	os.WriteFile(invoices, []byte("Numéro;Référence redevable;Objet;Date;Echéance;Montant\n"+
		"PARCOURS-0001;SISTEC560;Cantine de novembre;01/12/2026;31/12/2026;42,50\n"+
		"PARCOURS-0002;PARCOURS1;Cantine de novembre;01/12/2026;31/12/2026;17,00\n"), 0o644)
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	for _, n := range []string{"PARCOURS-0001", "PARCOURS-0002"} {
		w, _ := zw.Create(n + ".pdf")
		w.Write([]byte("%PDF-1.4 facture " + n + "\n%%EOF\n"))
	}
	zw.Close()
	pdfs := filepath.Join(dir, "factures.zip")
	os.WriteFile(pdfs, zipped.Bytes(), 0o644)

	agent.ClickText("Imports")
	agent.SetFiles("Fichier CSV des redevables", payers)
	agent.ClickText("Importer")
	agent.MustSee("Import terminé", "redevables.csv")
	agent.ClickText("Retour aux imports")
	agent.ClickText("Fichier de factures et ses PDF")
	agent.SetFiles("Fichier CSV des factures", invoices)
	agent.SetFiles("Archive ZIP des PDF (facultative)", pdfs)
	agent.ClickText("Importer")
	agent.MustSee("Import terminé", "factures.csv")

	// The resident: the alert, the invoice, a message.
	e.WaitMail("demo@demo.fr", "Une nouvelle facture est disponible", "PARCOURS-0001")
	resident.ClickText("Mes factures")
	resident.MustSee("PARCOURS-0001", "Cantine de novembre", "42,50 €")
	resident.ClickText("Contact")
	resident.Fill("Objet", "Facture de cantine")
	resident.Fill("Message", "Bonjour,\nmon fils n'a pas mangé à la cantine le 12 novembre.")
	resident.ClickText("Envoyer")
	resident.MustSee("Votre message a été envoyé au service.")

	// The agent replies.
	agent.ClickText("Messages")
	agent.ClickText("Facture de cantine")
	agent.MustSee("mon fils n'a pas mangé à la cantine le 12 novembre.")
	agent.Fill("Votre réponse", "Bonjour,\nle repas du 12 novembre sera déduit de la prochaine facture.")
	agent.ClickText("Envoyer la réponse")
	agent.MustSee("Votre réponse a été envoyée au redevable par courriel", "Réponse de Alice Parcours")

	// The resident reads it by email and on the Contact page, then pays.
	e.WaitMail("demo@demo.fr", "Réponse à votre message", "sera déduit de la prochaine facture")
	resident.ClickText("Contact")
	resident.MustSee("Mes échanges avec le service", "Réponse du service", "sera déduit de la prochaine facture")
	payOne(t, resident, "PARCOURS-0001", "42,50 €")
	resident.ClickText("Payer par carte bancaire")
	resident.MustSee("Votre paiement de 42,50 € a été accepté", "PARCOURS-0001")

	// The agent finds the payment and exports the CSV holding it.
	agent.ClickText("Paiements")
	agent.Fill("Numéro de facture", "PARCOURS-0001")
	agent.ClickText("Rechercher")
	agent.MustSee("1 paiement.", "Test SISTEC560")
	status, body, headers := agent.Fetch(e.URL("sistec.localhost", "/admin/paiements/export?facture=PARCOURS-0001"))
	if status != 200 || !strings.HasPrefix(headers["Content-Type"], "text/csv") || !bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
		t.Fatalf("payments export: %d %v", status, headers)
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("payments export is not ';'-separated CSV: %v\n%s", err, body)
	}
	found := false
	for _, row := range rows[1:] {
		line := strings.Join(row, "|")
		if strings.Contains(line, "PARCOURS-0001") && strings.Contains(line, "42,50") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the payment of PARCOURS-0001 is not in the export:\n%s", body)
	}
}
