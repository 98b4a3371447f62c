package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"portail/pkg/config"
	"portail/pkg/db"
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
	return serveApp(ctx, cfg, d, log, func() {
		log.Info("portal listening", "addr", cfg.HTTP.Addr)
	})
}
