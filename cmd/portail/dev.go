//go:build !prod

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"portail/pkg/app"
	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/db"
	"portail/pkg/demo"
	"portail/pkg/devenv"
	"portail/pkg/pgcluster"
	"portail/pkg/tenant"
)

// runDev starts the embedded default: every service on this machine, data
// under dev.data_dir, the demo communes applied, then the portal.
func runDev(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.HTTP.PublicScheme == "https" && cfg.HTTP.PublicPort == "" {
		// Links in dev emails must open the local server.
		cfg.HTTP.PublicScheme = "http"
		_, port, _ := splitAddr(cfg.HTTP.Addr)
		cfg.HTTP.PublicPort = port
	}
	env, err := devenv.Start(ctx, &cfg)
	if err == pgcluster.ErrNoServer {
		return fmt.Errorf("%w\nthen run `make run` again", err)
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := env.Close(); err != nil {
			log.Warn("dev: stop", "error", err)
		}
		log.Info("dev: everything stopped; data kept in " + cfg.Dev.DataDir)
	}()

	d, err := db.Open(ctx, cfg.Database.URL, cfg.Database.MaxOpenConns)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := db.Migrate(ctx, d.DB); err != nil {
		return err
	}
	blobs, err := blob.New(ctx, cfg.S3)
	if err != nil {
		return err
	}
	if err := blobs.EnsureBucket(ctx); err != nil {
		return err
	}
	if err := blobs.SelfCheck(ctx); err != nil {
		return fmt.Errorf("dev: S3 round-trip failed: %w", err)
	}
	files, err := tenant.LoadDir(cfg.Tenants.Dir)
	if err != nil {
		return err
	}
	// The demo communes' files are applied at each start; a field changed
	// since in the back office is kept (and said), not overwritten.
	err = applyTenants(cliContext(ctx), tenant.NewService(d, tenant.NewStore(d)), files, tenant.ApplyOptions{}, log)
	var conflicts *tenant.ConflictError
	if errors.As(err, &conflicts) {
		log.Warn("dev: tenant.yaml files not applied: the database holds changes made since", "detail", err)
	} else if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, d, log, app.Options{})
	if err != nil {
		return err
	}
	if err := demo.Load(ctx, a, cfg.Tenants.Dir, log); err != nil {
		return err
	}
	if err := demo.LoadStaff(ctx, a, log); err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	fmt.Fprintf(os.Stdout, "\nPortail des factures is running (Ctrl-C stops everything):\n")
	for _, f := range files {
		fmt.Fprintf(os.Stdout, "  %-22s %s/\n", f.Name, cfg.HTTP.PublicBaseURL(f.Hosts.Primary))
	}
	fmt.Fprintf(os.Stdout, "  caught emails          %s/  (JSON: %s/api/messages)\n", env.Mail.WebURL, env.Mail.WebURL)
	fmt.Fprintf(os.Stdout, "  S3 server              %s (bucket %s)\n", env.S3.URL, cfg.S3.Bucket)
	fmt.Fprintf(os.Stdout, "  PayFiP simulator       %s/\n", env.PayFiP.URL)
	fmt.Fprintf(os.Stdout, "  PostgreSQL             %s\n", cfg.Database.URL)
	fmt.Fprintf(os.Stdout, "  demo account           demo@demo.fr: click \"J'active mon compte\", the email arrives in the catcher\n")
	fmt.Fprintf(os.Stdout, "  staff back office      password %s for each (created only into an empty database):\n", demo.StaffPassword)
	for _, f := range files {
		fmt.Fprintf(os.Stdout, "    %s/admin\n", cfg.HTTP.PublicBaseURL(f.Hosts.Primary))
		for _, m := range demo.StaffOf(f.Slug) {
			note := ""
			if m.Role == "admin" {
				note = " (enrols a TOTP second factor at first login)"
			}
			fmt.Fprintf(os.Stdout, "      %-28s %s%s\n", m.Email, m.Role, note)
		}
	}
	fmt.Fprintln(os.Stdout)
	return a.Run(ctx, l)
}

func splitAddr(addr string) (string, string, error) {
	h, p, err := net.SplitHostPort(addr)
	return h, p, err
}
