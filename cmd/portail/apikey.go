package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"portail/pkg/apikey"
	"portail/pkg/config"
	"portail/pkg/tenant"
)

const apikeyUsage = `usage:
  portail apikey create --tenant SLUG --name NAME
  portail apikey list   --tenant SLUG
  portail apikey revoke --tenant SLUG --prefix PREFIX`

// runAPIKey manages the API keys billing software uses on /api/v1.
func runAPIKey(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		return errors.New(apikeyUsage)
	}
	fs := flag.NewFlagSet("apikey", flag.ContinueOnError)
	slug := fs.String("tenant", "", "commune (slug)")
	name := fs.String("name", "", "what the key is for, e.g. the billing software's name")
	prefix := fs.String("prefix", "", "the key's prefix (shown by list)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *slug == "" {
		return errors.New(apikeyUsage)
	}
	d, err := openDB(ctx, cfg, 2)
	if err != nil {
		return err
	}
	defer d.Close()
	t, err := tenant.NewStore(d).BySlug(ctx, *slug)
	if err != nil {
		return fmt.Errorf("commune %q: %w", *slug, err)
	}
	keys := &apikey.Store{DB: d}
	switch args[0] {
	case "create":
		raw, k, err := keys.Create(ctx, t.ID, *name)
		if err != nil {
			return err
		}
		fmt.Printf("API key %q created for %s (prefix %s). It is shown only now:\n%s\n", k.Name, t.Name, k.Prefix, raw)
		return nil
	case "list":
		ks, err := keys.List(ctx, t.ID)
		if err != nil {
			return err
		}
		for _, k := range ks {
			state := "active"
			if k.RevokedAt != nil {
				state = "revoked " + k.RevokedAt.Format("2006-01-02")
			}
			used := "never used"
			if k.LastUsedAt != nil {
				used = "last used " + k.LastUsedAt.Format("2006-01-02 15:04")
			}
			fmt.Printf("%s  %-30s %s, %s\n", k.Prefix, k.Name, state, used)
		}
		return nil
	case "revoke":
		return keys.Revoke(ctx, t.ID, *prefix)
	}
	return errors.New(apikeyUsage)
}
