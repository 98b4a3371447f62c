package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jmoiron/sqlx"

	"portail/pkg/config"
	"portail/pkg/db"
	"portail/pkg/payment"
	"portail/pkg/tenant"
)

// runServe is production mode: every service comes from configuration, and
// the schema must already be migrated (`portail migrate` is a deliberate step).
func runServe(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := cfg.RequireProduction(); err != nil {
		return fmt.Errorf("refusing to start: configuration incomplete:\n%w", err)
	}
	d, err := db.Open(ctx, cfg.Database.URL, cfg.Database.MaxOpenConns)
	if err != nil {
		return err
	}
	defer d.Close()
	pending, err := db.Pending(ctx, d.DB)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("refusing to start: %d database migration(s) pending (%s); run `portail migrate` first",
			len(pending), strings.Join(pending, ", "))
	}
	if err := checkClassicNetworks(ctx, cfg, d); err != nil {
		return err
	}
	return serveApp(ctx, cfg, d, log, func() {
		log.Info("portal listening", "addr", cfg.HTTP.Addr)
	})
}

// checkClassicNetworks refuses a classic-mode commune without PayFiP's
// source networks: none of its payment results could ever be applied.
func checkClassicNetworks(ctx context.Context, cfg config.Config, d *sqlx.DB) error {
	ts, err := tenant.NewStore(d).List(ctx)
	if err != nil {
		return err
	}
	if err := (&payment.Service{Config: cfg.PayFiP}).CheckClassicNetworks(ts); err != nil {
		return fmt.Errorf("refusing to start: configuration incomplete:\n%w", err)
	}
	return nil
}
