// Package demo loads the demo data of tenants/<slug>/demo/ through the real
// import paths, as a commune's billing software would: used by `portail dev`
// and by end-to-end tests.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"portail/pkg/app"
	"portail/pkg/imports"
)

// Load imports every commune's demo payers (and invoices when present).
// Imports are idempotent: loading twice changes nothing.
func Load(ctx context.Context, a *app.App, tenantsDir string, log *slog.Logger) error {
	ts, err := a.Tenants.List(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		dir := filepath.Join(tenantsDir, t.Slug, "demo")
		f, err := os.Open(filepath.Join(dir, "payers.csv"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		rep, err := a.Imports.ImportNow(ctx, t.ID, imports.KindPayers, imports.Actor{Kind: imports.ActorSystem},
			imports.File{Name: "demo/payers.csv", Body: f}, nil)
		f.Close()
		if err != nil {
			return fmt.Errorf("demo: %s payers: %w", t.Slug, err)
		}
		if rep.Rejected > 0 {
			return fmt.Errorf("demo: %s payers: %d lines rejected: %+v", t.Slug, rep.Rejected, rep.Errors)
		}
		log.Info("demo payers", "tenant", t.Slug, "status", rep.Status, "inserted", rep.Inserted, "updated", rep.Updated, "unchanged", rep.Unchanged)

		invPath := filepath.Join(dir, "invoices.csv")
		if _, err := os.Stat(invPath); err != nil {
			continue
		}
		irep, err := loadInvoices(ctx, a, t, invPath)
		if err == nil && irep.Refused() {
			err = fmt.Errorf("refused: %+v", irep.Errors)
		}
		if err != nil {
			return fmt.Errorf("demo: %s invoices: %w", t.Slug, err)
		}
		log.Info("demo invoices", "tenant", t.Slug, "status", irep.Status, "inserted", irep.Inserted, "updated", irep.Updated, "unchanged", irep.Unchanged)
	}
	return nil
}
