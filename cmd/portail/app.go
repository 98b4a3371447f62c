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
	if err := serveMetrics(ctx, a, log); err != nil {
		l.Close()
		return err
	}
	if ready != nil {
		ready()
	}
	return a.Run(ctx, l)
}

// serveMetrics serves /metrics on metrics.addr, when set, until ctx is
// cancelled. The address is taken now, so that a port in use stops the
// start rather than leaving the portal unobserved.
func serveMetrics(ctx context.Context, a *app.App, log *slog.Logger) error {
	if a.Config.Metrics.Addr == "" {
		return nil
	}
	ml, err := net.Listen("tcp", a.Config.Metrics.Addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	go func() {
		if err := a.ServeMetrics(ctx, ml); err != nil {
			log.Error("metrics: listener stopped", "error", err)
		}
	}()
	log.Info("metrics listening", "addr", a.Config.Metrics.Addr)
	return nil
}
