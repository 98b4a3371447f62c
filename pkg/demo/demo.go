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

// Load imports each commune's demo payers and invoices, only into a commune
// that has no payer yet. So the first `make run` fills an empty database
// and later runs change nothing: what was done since (an activated account,
// a changed address, a paid invoice, payers of the commune's own) is never
// overwritten by the demo files again. A commune added to tenants/ later
// gets its demo data at the next run.
func Load(ctx context.Context, a *app.App, tenantsDir string, log *slog.Logger) error {
	ts, err := a.Tenants.List(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		dir := filepath.Join(tenantsDir, t.Slug, "demo")
		payersPath := filepath.Join(dir, "payers.csv")
		if _, err := os.Stat(payersPath); errors.Is(err, os.ErrNotExist) {
			continue
		}
		hasPayers, err := exists(ctx, a, `SELECT EXISTS (SELECT 1 FROM accounts WHERE tenant_id = $1)`, t.ID)
		if err != nil {
			return err
		}
		if hasPayers {
			log.Info("demo data not loaded: the commune has payers already", "tenant", t.Slug)
			continue
		}
		if err := loadPayers(ctx, a, t.ID, t.Slug, payersPath, log); err != nil {
			return err
		}
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

func exists(ctx context.Context, a *app.App, query string, tenantID int64) (bool, error) {
	var found bool
	if err := a.DB.GetContext(ctx, &found, query, tenantID); err != nil {
		return false, fmt.Errorf("demo: %w", err)
	}
	return found, nil
}

func loadPayers(ctx context.Context, a *app.App, tenantID int64, slug, path string, log *slog.Logger) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer f.Close()
	rep, err := a.Imports.ImportNow(ctx, tenantID, imports.KindPayers, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "demo/payers.csv", Body: f}, nil)
	if err != nil {
		return fmt.Errorf("demo: %s payers: %w", slug, err)
	}
	if rep.Rejected > 0 {
		return fmt.Errorf("demo: %s payers: %d lines rejected: %+v", slug, rep.Rejected, rep.Errors)
	}
	log.Info("demo payers", "tenant", slug, "status", rep.Status, "inserted", rep.Inserted, "updated", rep.Updated, "unchanged", rep.Unchanged)
	return nil
}
