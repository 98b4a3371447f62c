package main

import (
	"archive/zip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"portail/pkg/account"
	"portail/pkg/app"
	"portail/pkg/config"
	"portail/pkg/invoice"
)

const importUsage = `usage:
  portail import payers   --tenant SLUG payers.csv
  portail import invoices --tenant SLUG invoices.csv [pdfs.zip]`

// runImport loads the billing software's files with the same import code
// as the staff screens and the API.
func runImport(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	if len(args) == 0 || (args[0] != "payers" && args[0] != "invoices") {
		return errors.New(importUsage)
	}
	kind := args[0]
	fs := flag.NewFlagSet("import "+kind, flag.ContinueOnError)
	slug := fs.String("tenant", "", "commune (slug)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	files := fs.Args()
	if *slug == "" || len(files) < 1 || (kind == "payers" && len(files) != 1) || len(files) > 2 {
		return errors.New(importUsage)
	}
	d, err := openDB(ctx, cfg, 4)
	if err != nil {
		return err
	}
	defer d.Close()
	a, err := app.New(ctx, cfg, d, log, app.Options{})
	if err != nil {
		return err
	}
	t, err := a.Tenants.BySlug(ctx, *slug)
	if err != nil {
		return fmt.Errorf("commune %q: %w", *slug, err)
	}
	csvFile, err := os.Open(files[0])
	if err != nil {
		return err
	}
	defer csvFile.Close()

	if kind == "payers" {
		rep, err := a.Accounts.ImportPayers(ctx, t.ID, csvFile)
		if err != nil {
			var input *account.InputError
			if errors.As(err, &input) {
				return fmt.Errorf("%s: fichier refusé : %s", files[0], input.Message)
			}
			return err
		}
		fmt.Printf("%s: %d créés, %d mis à jour, %d inchangés, %d lignes refusées\n", files[0], rep.Inserted, rep.Updated, rep.Unchanged, len(rep.Rejected))
		for _, l := range rep.Notes {
			fmt.Printf("  ligne %d : %s (remarque)\n", l.Line, l.Reason)
		}
		for _, l := range rep.Rejected {
			fmt.Printf("  ligne %d : %s\n", l.Line, l.Reason)
		}
		if len(rep.Rejected) > 0 {
			return fmt.Errorf("%d lignes refusées", len(rep.Rejected))
		}
		return nil
	}

	var pdfs *zip.Reader
	if len(files) == 2 {
		zf, err := zip.OpenReader(files[1])
		if err != nil {
			return fmt.Errorf("%s: archive illisible : %w", files[1], err)
		}
		defer zf.Close()
		pdfs = &zf.Reader
	}
	rep, err := a.Importer.Import(ctx, t, csvFile, pdfs, invoice.ImportOptions{
		Filename: files[0],
		Progress: invoice.CLIProgress(os.Stderr),
	})
	printInvoiceReport(os.Stdout, files[0], rep)
	return err
}

func printInvoiceReport(w io.Writer, name string, rep invoice.Report) {
	switch {
	case rep.AlreadyImported:
		fmt.Fprintf(w, "%s: déjà importé (lot %d), rien n'a changé\n", name, rep.BatchID)
	case rep.Rejected > 0:
		fmt.Fprintf(w, "%s: fichier refusé, rien n'a été importé : %d lignes en erreur sur %d\n", name, rep.Rejected, rep.Lines)
		for _, l := range rep.Errors {
			if l.Line > 0 {
				fmt.Fprintf(w, "  ligne %d : %s\n", l.Line, l.Reason)
			} else {
				fmt.Fprintf(w, "  %s\n", l.Reason)
			}
		}
	default:
		fmt.Fprintf(w, "%s: %d lignes en %s (%.0f lignes/s) : %d créées, %d mises à jour, %d inchangées, %d PDF, %d alertes\n",
			name, rep.Lines, rep.Duration.Round(1e6), float64(rep.Lines)/max(rep.Duration.Seconds(), 1e-9),
			rep.Inserted, rep.Updated, rep.Unchanged, rep.PDFs, rep.Alerts)
	}
}
