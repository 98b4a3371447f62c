package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portail/pkg/config"
	"portail/pkg/db"
	"portail/pkg/dbtest"
	"portail/pkg/tenant"
)

// TestTenantsCommands: set, apply refused over it then forced, export
// then apply changing nothing, suspend and resume, create — all through
// the service, audited with the operating system user.
func TestTenantsCommands(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database.URL = dbtest.NewURL(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func(args ...string) error { return runTenants(ctx, cfg, log, args) }
	d, err := db.Open(ctx, cfg.Database.URL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	store := tenant.NewStore(d)
	sistec := func() *tenant.Tenant {
		t.Helper()
		s, err := store.BySlug(ctx, "sistec")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	if err := run("apply", "../../tenants"); err != nil {
		t.Fatal(err)
	}
	if err := run("set", "sistec", "contact.phone=05 61 99 99 99", "reminders.days_before=9"); err != nil {
		t.Fatal(err)
	}
	if s := sistec(); s.ContactPhone != "05 61 99 99 99" || s.RemindersDaysBefore != 9 {
		t.Fatalf("after set: %q %d", s.ContactPhone, s.RemindersDaysBefore)
	}
	var details string
	d.Get(&details, `SELECT details::text FROM audit_log WHERE action = 'tenant.updated' ORDER BY id DESC LIMIT 1`)
	var entry struct {
		OSUser string `json:"os_user"`
	}
	json.Unmarshal([]byte(details), &entry)
	if entry.OSUser == "" {
		t.Fatalf("audit without the OS user: %s", details)
	}
	if err := run("set", "sistec", "payfip.numcli=00420"); err == nil || !strings.Contains(err.Error(), "payfip.numcli") {
		t.Fatalf("bad numcli: %v", err)
	}
	err = run("apply", "../../tenants")
	var conflict *tenant.ConflictError
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), `sistec: contact.phone: YAML "05 61 00 19 30" → database "05 61 99 99 99"`) {
		t.Fatalf("apply over set: %v", err)
	}
	if err := run("apply", "--force", "../../tenants"); err != nil {
		t.Fatal(err)
	}
	if s := sistec(); s.ContactPhone != "05 61 00 19 30" {
		t.Fatalf("after --force: %q", s.ContactPhone)
	}

	out := t.TempDir()
	for _, slug := range []string{"sistec", "belcastel"} {
		if err := run("export", slug, out); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "belcastel", "templates")); err != nil {
		t.Fatalf("belcastel's overrides not exported: %v", err)
	}
	before := sistec().Version
	if err := run("apply", out); err != nil {
		t.Fatal(err)
	}
	if after := sistec().Version; after != before {
		t.Fatalf("applying the export changed sistec: version %d → %d", before, after)
	}

	if err := run("suspend", "sistec"); err != nil || sistec().Status != tenant.StatusSuspended {
		t.Fatalf("suspend: %v", err)
	}
	if err := run("resume", "sistec"); err != nil || sistec().Status != tenant.StatusActive {
		t.Fatalf("resume: %v", err)
	}
	if err := run("create", "test", "name=MAIRIE DE TEST", "hosts.primary=test.localhost", "contact.email=service@test.localhost",
		"payfip.numcli=004299"); err != nil {
		t.Fatal(err)
	}
	if err := run("create", "autre", "name=Autre", "hosts.primary=sistec.localhost", "contact.email=a@b.fr",
		"payfip.numcli=004298"); err == nil || !strings.Contains(err.Error(), "already used by the commune sistec") {
		t.Fatalf("create on sistec's host: %v", err)
	}
}
