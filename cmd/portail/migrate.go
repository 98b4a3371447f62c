package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"portail/pkg/config"
	"portail/pkg/db"
)

func runMigrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	d, err := openDB(ctx, cfg, 2)
	if err != nil {
		return err
	}
	defer d.Close()
	pending, err := db.Pending(ctx, d.DB)
	if err != nil {
		return err
	}
	if err := db.Migrate(ctx, d.DB); err != nil {
		return err
	}
	log.Info("migrations applied", "count", len(pending))
	return nil
}

// openDB opens the configured database for a one-off command.
func openDB(ctx context.Context, cfg config.Config, maxConns int) (*sqlx.DB, error) {
	if cfg.Database.URL == "" {
		return nil, errors.New("config: database.url is required (env PORTAIL_DATABASE_URL)")
	}
	return db.Open(ctx, cfg.Database.URL, maxConns)
}
