package invoice

import (
	"bytes"
	"fmt"
	"time"

	"github.com/go-pdf/fpdf"

	"portail/pkg/tenant"
)

// GenerateInvoicePDF draws a simple invoice in French (commune, service,
// number, dates, payer, object, amount), for demo data and tests. The output
// is deterministic for the same input, so loading the demo twice stores the
// same content-addressed object, and uncompressed, so tests can look for
// the texts in it.
func GenerateInvoicePDF(t *tenant.Tenant, inv Invoice, payerName string) ([]byte, error) {
	if t == nil {
		return nil, fmt.Errorf("invoice: PDF without tenant")
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(false)
	pdf.SetCatalogSort(true)
	stamp := inv.IssuedOn
	if stamp.IsZero() {
		stamp = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	pdf.SetCreationDate(stamp)
	pdf.SetModificationDate(stamp)
	pdf.SetTitle("Facture "+inv.Number, true)
	pdf.SetAuthor(t.Name, true)
	pdf.SetCreator("Portail des factures", true)
	pdf.SetLang("fr-FR")
	tr := pdf.UnicodeTranslatorFromDescriptor("") // UTF-8 → cp1252 for the core fonts

	pdf.AddPage()
	pdf.SetMargins(20, 20, 20)
	pdf.SetFont("Helvetica", "B", 16)
	pdf.CellFormat(0, 9, tr(t.Name), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 12)
	if t.ServiceLabel != "" {
		pdf.CellFormat(0, 7, tr(t.ServiceLabel), "", 1, "L", false, 0, "")
	}
	if t.ContactPhone != "" {
		pdf.CellFormat(0, 6, tr("Tél. : "+t.ContactPhone), "", 1, "L", false, 0, "")
	}
	pdf.Ln(10)

	pdf.SetFont("Helvetica", "B", 14)
	pdf.CellFormat(0, 8, tr("Facture n° "+inv.Number), "", 1, "L", false, 0, "")
	pdf.Ln(3)
	pdf.SetFont("Helvetica", "", 11)
	line := func(label, value string) {
		pdf.SetFont("Helvetica", "B", 11)
		pdf.CellFormat(45, 7, tr(label), "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 11)
		pdf.CellFormat(0, 7, tr(value), "", 1, "L", false, 0, "")
	}
	line("Redevable :", payerName)
	line("Date :", FormatDate(inv.IssuedOn))
	line("Échéance :", FormatDate(inv.DueOn))
	pdf.Ln(6)

	pdf.SetFillColor(230, 236, 245)
	pdf.SetFont("Helvetica", "B", 11)
	pdf.CellFormat(120, 8, tr("Objet"), "1", 0, "L", true, 0, "")
	pdf.CellFormat(50, 8, tr("Montant"), "1", 1, "R", true, 0, "")
	pdf.SetFont("Helvetica", "", 11)
	pdf.CellFormat(120, 8, tr(inv.Object), "1", 0, "L", false, 0, "")
	pdf.CellFormat(50, 8, tr(FormatAmount(inv.AmountCents)), "1", 1, "R", false, 0, "")
	pdf.SetFont("Helvetica", "B", 12)
	pdf.CellFormat(120, 9, tr("Montant à régler"), "1", 0, "R", false, 0, "")
	pdf.CellFormat(50, 9, tr(FormatAmount(inv.AmountCents)), "1", 1, "R", false, 0, "")
	pdf.Ln(10)

	pdf.SetFont("Helvetica", "", 10)
	pay := "Vous pouvez consulter et régler cette facture sur le portail des factures"
	if t.PrimaryHost != "" {
		pay += " : " + t.PrimaryHost
	}
	pdf.MultiCell(0, 5, tr(pay+", par carte bancaire avec TIPI (PayFiP), avant le "+FormatDate(inv.DueOn)+"."), "", "L", false)

	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("invoice: PDF of %s: %w", inv.Number, err)
	}
	return buf.Bytes(), nil
}
