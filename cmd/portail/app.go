package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/jobs"
	"portail/pkg/mail"
	"portail/pkg/tenant"
	"portail/pkg/web"
	"portail/templates"
)

// serveApp runs the portal (web server and job workers) on an open,
// migrated database until ctx is cancelled, then stops gracefully.
func serveApp(ctx context.Context, cfg config.Config, d *sqlx.DB, log *slog.Logger, ready func()) error {
	blobs, err := blob.New(ctx, cfg.S3)
	if err != nil {
		return err
	}
	tenants := tenant.NewStore(d)

	workers := river.NewWorkers()
	river.AddWorker(workers, &mail.Worker{
		Tenants:  tenants,
		Renderer: mail.NewRenderer(templates.FS),
		Sender:   mail.NewSender(cfg.SMTP),
		Logger:   log,
	})
	jobClient, err := jobs.New(d, jobs.Options{Workers: workers, Logger: log})
	if err != nil {
		return err
	}
	if err := jobClient.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}

	srv, err := web.New(web.Deps{
		Config:    cfg,
		DB:        d,
		Tenants:   tenants,
		Templates: templates.FS,
		Logger:    log,
		Ready:     blobs.SelfCheck,
	})
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
	serveErr := web.Serve(ctx, l, srv.Handler(), cfg.HTTP, log)

	// Jobs in flight finish (or are released for another instance).
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := jobClient.Stop(stopCtx); err != nil {
		log.Warn("jobs: stop", "error", err)
	}
	return serveErr
}
