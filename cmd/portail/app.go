package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/jmoiron/sqlx"

	"portail/pkg/app"
	"portail/pkg/config"
)

// serveApp runs the portal on an open, migrated database until ctx is
// cancelled; ready is called once it listens.
func serveApp(ctx context.Context, cfg config.Config, d *sqlx.DB, log *slog.Logger, ready func()) error {
	a, err := app.New(ctx, cfg, d, log, app.Options{})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	if ready != nil {
		ready()
	}
	return a.Run(ctx, l)
}
