package demo

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"

	"portail/pkg/app"
	"portail/pkg/imports"
	"portail/pkg/invoice"
	"portail/pkg/tenant"
)

// loadInvoices imports tenants/<slug>/demo/invoices.csv with a ZIP of real
// PDFs generated for each invoice, through the same import pipeline as staff use.
func loadInvoices(ctx context.Context, a *app.App, t *tenant.Tenant, path string) (imports.Report, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return imports.Report{}, err
	}
	pdfs, err := demoPDFs(ctx, a, t, raw)
	if err != nil {
		return imports.Report{}, err
	}
	return a.Imports.ImportNow(ctx, t.ID, imports.KindInvoices, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "demo/invoices.csv", Body: bytes.NewReader(raw)},
		&imports.File{Name: "demo/pdfs.zip", Body: bytes.NewReader(pdfs)})
}

// demoPDFs zips one generated PDF per line of the demo file (whose columns
// are ours: number, payer, object, date, due date, amount, …).
func demoPDFs(ctx context.Context, a *app.App, t *tenant.Tenant, raw []byte) ([]byte, error) {
	r := csv.NewReader(bytes.NewReader(raw))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, row := range rows[1:] {
		issued, err1 := invoice.ParseDate(row[3])
		due, err2 := invoice.ParseDate(row[4])
		cents, err3 := invoice.ParseAmount(row[5])
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("demo: line %v: bad date or amount", row)
		}
		var payer string
		if err := a.DB.GetContext(ctx, &payer, `SELECT display_name FROM accounts WHERE tenant_id = $1 AND external_ref = $2`, t.ID, row[1]); err != nil {
			return nil, fmt.Errorf("demo: payer %s: %w", row[1], err)
		}
		pdf, err := invoice.GenerateInvoicePDF(t, invoice.Invoice{Number: row[0], Object: row[2], IssuedOn: issued, DueOn: due, AmountCents: cents}, payer)
		if err != nil {
			return nil, err
		}
		w, err := zw.Create(row[0] + ".pdf")
		if err != nil {
			return nil, err
		}
		w.Write(pdf)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
