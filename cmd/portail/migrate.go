package main

import (
	"context"
	"errors"
	"log/slog"

	"portail/pkg/config"
	"portail/pkg/db"
)

func runMigrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.Database.URL == "" {
		return errors.New("config: database.url is required (env PORTAIL_DATABASE_URL)")
	}
	d, err := db.Open(ctx, cfg.Database.URL, 2)
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
