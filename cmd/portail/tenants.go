package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"portail/pkg/config"
	"portail/pkg/payfip"
	"portail/pkg/tenant"
)

func runTenants(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	if len(args) == 0 || (args[0] != "check" && args[0] != "apply") {
		return errors.New("usage: portail tenants check|apply [DIR]")
	}
	dir := cfg.Tenants.Dir
	if len(args) > 1 {
		dir = args[1]
	}
	files, err := tenant.LoadDir(dir)
	if err != nil {
		return err
	}
	if args[0] == "check" {
		for _, f := range files {
			fmt.Printf("ok  %-20s %s (%s)\n", f.Slug, f.Name, f.Hosts.Primary)
			if f.PayFiP.Mode == string(payfip.ModeClassic) {
				fmt.Print(classicAdvice(cfg, f))
			}
		}
		return nil
	}
	d, err := openDB(ctx, cfg, 2)
	if err != nil {
		return err
	}
	defer d.Close()
	return applyTenants(ctx, tenant.NewStore(d), files, log)
}

func applyTenants(ctx context.Context, store *tenant.Store, files []*tenant.File, log *slog.Logger) error {
	results, err := store.Apply(ctx, files)
	if err != nil {
		return err
	}
	for _, r := range results {
		state := "unchanged"
		switch {
		case r.Created:
			state = "created"
		case r.Changed:
			state = "updated"
		}
		log.Info("tenant applied", "slug", r.Slug, "state", state)
	}
	return nil
}

// classicAdvice is printed by `tenants check` for a classic-mode commune:
// a recommendation, not an error.
func classicAdvice(cfg config.Config, f *tenant.File) string {
	out := "    recommendation: " + f.Slug + " uses PayFiP classic mode, whose results are unsigned and are accepted only\n" +
		"    from PayFiP's networks (payfip.callback_networks); web-service mode (payfip.mode: ws) is recommended.\n"
	if len(f.PayFiP.Endpoints.CallbackNetworks) == 0 && len(cfg.PayFiP.CallbackNetworks) == 0 {
		out += "    note: payfip.callback_networks is empty in this configuration: `portail serve` will refuse to start.\n"
	}
	return out
}
