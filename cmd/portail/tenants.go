package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"

	"portail/pkg/audit"
	"portail/pkg/config"
	"portail/pkg/payfip"
	"portail/pkg/tenant"
)

const tenantsUsage = `usage: portail tenants COMMAND
  check [DIR]                   validate tenants/<slug>/tenant.yaml files (default: tenants.dir)
  apply [--force] [DIR]         create or update the communes they describe; refuses to overwrite
                                a field changed elsewhere since the last apply unless --force
  export SLUG [DIR]             write DIR/SLUG/tenant.yaml (and its logo, templates) from the database
  create SLUG FIELD=VALUE…      create a commune (fields named as in tenant.yaml)
  set SLUG FIELD=VALUE…         change fields (e.g. contact.phone="05 61 00 00 00",
                                branding.logo=@logo.svg, hosts.aliases=a.fr,b.fr)
  suspend SLUG                  show the maintenance page (PayFiP's results still processed)
  resume SLUG                   reopen a suspended commune`

func runTenants(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		return errors.New(tenantsUsage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "check":
		files, err := tenant.LoadDir(dirArg(cfg, args))
		if err != nil {
			return err
		}
		for _, f := range files {
			fmt.Printf("ok  %-20s %s (%s)\n", f.Slug, f.Name, f.Hosts.Primary)
			if f.PayFiP.Mode == string(payfip.ModeClassic) {
				fmt.Print(classicAdvice(cfg, f))
			}
		}
		return nil
	case "apply", "export", "create", "set", "suspend", "resume":
	default:
		return errors.New(tenantsUsage)
	}
	d, err := openDB(ctx, cfg, 2)
	if err != nil {
		return err
	}
	defer d.Close()
	store := tenant.NewStore(d)
	svc := tenant.NewService(d, store)
	ctx = cliContext(ctx)
	switch cmd {
	case "apply":
		fs := flag.NewFlagSet("tenants apply", flag.ContinueOnError)
		force := fs.Bool("force", false, "overwrite fields changed elsewhere since the last apply")
		if err := fs.Parse(args); err != nil {
			return err
		}
		files, err := tenant.LoadDir(dirArg(cfg, fs.Args()))
		if err != nil {
			return err
		}
		return applyTenants(ctx, svc, files, tenant.ApplyOptions{Force: *force}, log)
	case "export":
		if len(args) < 1 || len(args) > 2 {
			return errors.New(tenantsUsage)
		}
		dir, err := exportTenant(ctx, store, args[0], dirArg(cfg, args[1:]))
		if err == nil {
			fmt.Println("exported", args[0], "to", dir)
		}
		return err
	case "create":
		if len(args) < 1 {
			return errors.New(tenantsUsage)
		}
		set := tenant.DefaultSettings()
		set.Slug = args[0]
		if _, err := assign(&set, args[1:]); err != nil {
			return err
		}
		t, err := svc.Create(ctx, set)
		if err != nil {
			return err
		}
		fmt.Printf("created %s (%s), version %d\n", t.Slug, t.PrimaryHost, t.Version)
		return nil
	}
	if len(args) < 1 {
		return errors.New(tenantsUsage)
	}
	t, err := store.BySlug(ctx, args[0])
	if errors.Is(err, tenant.ErrNotFound) {
		return fmt.Errorf("tenants: no commune %q", args[0])
	}
	if err != nil {
		return err
	}
	switch cmd {
	case "set":
		next := t.Settings()
		groups, assignErr := assign(&next, args[1:])
		if assignErr != nil {
			return assignErr
		}
		if len(groups) == 0 {
			return errors.New(tenantsUsage)
		}
		t, err = svc.Update(ctx, t.ID, t.Version, next, groups...)
	case "suspend":
		t, err = svc.Suspend(ctx, t.ID, t.Version)
	case "resume":
		t, err = svc.Resume(ctx, t.ID, t.Version)
	}
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s, version %d\n", t.Slug, t.Status, t.Version)
	return nil
}

// cliContext makes the command line the actor of its changes: the system,
// with the operating system user named in the audit entries.
func cliContext(ctx context.Context) context.Context {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return tenant.WithCommandLineUser(audit.WithActor(ctx, audit.System), name)
}

func dirArg(cfg config.Config, args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return cfg.Tenants.Dir
}

// assign sets FIELD=VALUE pairs and returns the groups they belong to.
func assign(s *tenant.Settings, pairs []string) ([]tenant.Group, error) {
	var groups []tenant.Group
	var errs []error
	for _, p := range pairs {
		field, value, ok := strings.Cut(p, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("%q: write FIELD=VALUE", p))
			continue
		}
		g, err := tenant.SetField(s, field, value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return groups, errors.Join(errs...)
}

func applyTenants(ctx context.Context, svc *tenant.Service, files []*tenant.File, opt tenant.ApplyOptions, log *slog.Logger) error {
	results, err := svc.Apply(ctx, files, opt)
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
		for _, c := range r.Changes {
			log.Info("tenant field", "slug", r.Slug, "field", c.Field, "before", c.Before, "after", c.After)
		}
	}
	return nil
}

// exportTenant writes dir/slug/tenant.yaml, its logo and its template
// overrides from what the database holds, and returns the folder.
func exportTenant(ctx context.Context, store *tenant.Store, slug, dir string) (string, error) {
	set, overrides, err := store.Export(ctx, slug)
	if errors.Is(err, tenant.ErrNotFound) {
		return "", fmt.Errorf("tenants: no commune %q", slug)
	}
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, slug)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	logoName := ""
	if len(set.Branding.LogoData) > 0 {
		logoName = tenant.LogoFileName(set.Branding.LogoType)
		if err := os.WriteFile(filepath.Join(out, logoName), set.Branding.LogoData, 0o644); err != nil {
			return "", err
		}
	}
	b, err := set.Marshal(logoName)
	if err != nil {
		return "", err
	}
	header := "# Exported by `portail tenants export " + slug + "` from the database.\n"
	if err := os.WriteFile(filepath.Join(out, "tenant.yaml"), append([]byte(header), b...), 0o644); err != nil {
		return "", err
	}
	tdir := filepath.Join(out, "templates")
	old, _ := filepath.Glob(filepath.Join(tdir, "*.html"))
	for _, o := range old {
		if _, keep := overrides[filepath.Base(o)]; !keep {
			os.Remove(o)
		}
	}
	for name, src := range overrides {
		if filepath.Base(name) != name {
			continue
		}
		if err := os.MkdirAll(tdir, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(tdir, name), []byte(src), 0o644); err != nil {
			return "", err
		}
	}
	return out, nil
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
