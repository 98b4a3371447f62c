package payment

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/go-pdf/fpdf"

	"portail/pkg/invoice"
	"portail/pkg/payfip"
	"portail/pkg/tenant"
)

// Receipt returns the PDF "Attestation de paiement" of one of the account's
// paid attempts; ErrNotFound for any other attempt (not paid, another
// account's, another tenant's). The document is deterministic (dated by the
// payment) and uncompressed, like the invoices' PDFs: it is tiny, and its
// texts stay searchable.
func (s *Service) Receipt(ctx context.Context, t *tenant.Tenant, accountID, paymentID int64) ([]byte, error) {
	if t == nil {
		return nil, errors.New("payment: receipt: no tenant")
	}
	a, err := s.Get(ctx, t.ID, accountID, paymentID)
	if err != nil {
		return nil, err
	}
	if a.Status != StatusPaid || a.PaidAt == nil {
		return nil, ErrNotFound
	}
	var payer string
	if err := s.DB.GetContext(ctx, &payer, `SELECT display_name FROM accounts WHERE tenant_id = $1 AND id = $2`,
		t.ID, accountID); err != nil {
		return nil, fmt.Errorf("payment: receipt: payer: %w", err)
	}

	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(false)
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(*a.PaidAt)
	pdf.SetModificationDate(*a.PaidAt)
	pdf.SetTitle("Attestation de paiement "+a.RefDet, true)
	pdf.SetAuthor(t.Name, true)
	pdf.SetCreator("Portail des factures", true)
	pdf.SetLang("fr-FR")
	tr := pdf.UnicodeTranslatorFromDescriptor("") // UTF-8 → cp1252 (accents, €) for the core fonts

	pdf.SetMargins(20, 20, 20)
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 16)
	pdf.CellFormat(0, 9, tr(t.Name), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 12)
	if t.ServiceLabel != "" {
		pdf.CellFormat(0, 7, tr(t.ServiceLabel), "", 1, "L", false, 0, "")
	}
	pdf.Ln(10)

	pdf.SetFont("Helvetica", "B", 15)
	pdf.CellFormat(0, 9, tr("Attestation de paiement"), "", 1, "L", false, 0, "")
	pdf.Ln(3)
	line := func(label, value string) {
		pdf.SetFont("Helvetica", "B", 11)
		pdf.CellFormat(60, 7, tr(label), "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 11)
		pdf.CellFormat(0, 7, tr(value), "", 1, "L", false, 0, "")
	}
	how := "Carte bancaire (PayFiP)"
	if a.ResultTrans == payfip.ResultDebitPaid {
		how = "Prélèvement (PayFiP)"
	}
	line("Payeur :", payer)
	line("Date du paiement :", FormatDateTime(*a.PaidAt))
	line("Mode de paiement :", how)
	line("Référence du paiement :", a.RefDet)
	if a.NumAuto != "" {
		line("Numéro d'autorisation :", a.NumAuto)
	}
	pdf.Ln(6)

	pdf.SetFillColor(230, 236, 245)
	pdf.SetFont("Helvetica", "B", 11)
	pdf.CellFormat(45, 8, tr("Facture"), "1", 0, "L", true, 0, "")
	pdf.CellFormat(85, 8, tr("Objet"), "1", 0, "L", true, 0, "")
	pdf.CellFormat(40, 8, tr("Montant"), "1", 1, "R", true, 0, "")
	pdf.SetFont("Helvetica", "", 11)
	for _, inv := range a.Invoices {
		pdf.CellFormat(45, 8, tr(inv.Number), "1", 0, "L", false, 0, "")
		pdf.CellFormat(85, 8, tr(truncate(inv.Object, 45)), "1", 0, "L", false, 0, "")
		pdf.CellFormat(40, 8, tr(invoice.FormatAmount(inv.AmountCents)), "1", 1, "R", false, 0, "")
	}
	pdf.SetFont("Helvetica", "B", 12)
	pdf.CellFormat(130, 9, tr("Total réglé"), "1", 0, "R", false, 0, "")
	pdf.CellFormat(40, 9, tr(a.Amount()), "1", 1, "R", false, 0, "")
	pdf.Ln(10)

	pdf.SetFont("Helvetica", "", 10)
	pdf.MultiCell(0, 5, tr("Paiement en ligne effectué par l'intermédiaire de PayFiP, service de paiement de la "+
		"Direction générale des Finances publiques. Ce document atteste de l'enregistrement du paiement par "+
		"le portail des factures de la collectivité."), "", "L", false)

	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("payment: receipt %s: %w", a.RefDet, err)
	}
	return buf.Bytes(), nil
}

// truncate shortens s to n characters (runes), with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
