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
	if err := checkClassicNetworks(ctx, cfg, d, log); err != nil {
		return err
	}
	return serveApp(ctx, cfg, d, log, func() {
		log.Info("portal listening", "addr", cfg.HTTP.Addr)
	})
}

// checkClassicNetworks refuses a classic-mode commune without PayFiP's
// source networks: none of its payment results could ever be applied. It
// warns about networks that are loopback, link-local or private: PayFiP
// calls from public addresses, so such an entry only lets machines near the
// portal post classic results.
func checkClassicNetworks(ctx context.Context, cfg config.Config, d *sqlx.DB, log *slog.Logger) error {
	ts, err := tenant.NewStore(d).List(ctx)
	if err != nil {
		return err
	}
	svc := &payment.Service{Config: cfg.PayFiP}
	if err := svc.CheckClassicNetworks(ts); err != nil {
		return fmt.Errorf("refusing to start: configuration incomplete:\n%w", err)
	}
	for _, w := range svc.NonPublicCallbackNetworks(ts) {
		log.Warn("PayFiP callback networks include loopback, link-local or private addresses: "+
			"classic-mode results are accepted from there; in production list only PayFiP's public networks",
			"setting", w.Where, "networks", strings.Join(w.Networks, ","))
	}
	return nil
}
