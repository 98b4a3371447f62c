package db_test

import (
	"context"
	"testing"

	"portail/pkg/db"
	"portail/pkg/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestFreshDatabaseHasNoPendingMigrations(t *testing.T) {
	d := dbtest.New(t)
	pending, err := db.Pending(context.Background(), d.DB)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 {
		t.Fatalf("pending migrations on a migrated database: %v", pending)
	}
}

func TestEmptyDatabaseReportsPendingMigrations(t *testing.T) {
	d := dbtest.New(t)
	if _, err := d.Exec(`DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	pending, err := db.Pending(context.Background(), d.DB)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) == 0 {
		t.Fatal("an empty database reports no pending migration")
	}
	if err := db.Migrate(context.Background(), d.DB); err != nil {
		t.Fatal(err)
	}
	if pending, _ = db.Pending(context.Background(), d.DB); len(pending) != 0 {
		t.Fatalf("still pending after Migrate: %v", pending)
	}
}

func TestEveryTenantTableKeysStartWithTenantID(t *testing.T) {
	d := dbtest.New(t)
	// Every primary key, unique constraint and foreign key of a table with a
	// tenant_id column must include tenant_id (Citus co-location; isolation).
	// tenant_hosts is a small reference table (replicated, not distributed):
	// a host name must be globally unique, so its key is the host alone.
	var bad []string
	err := d.Select(&bad, `
		SELECT c.conrelid::regclass::text || '.' || c.conname
		FROM pg_constraint c
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attname = 'tenant_id'
		WHERE c.contype IN ('p', 'u', 'f')
		  AND c.connamespace = 'public'::regnamespace
		  AND NOT (a.attnum = ANY (c.conkey))
		  AND c.conrelid::regclass::text NOT IN ('tenant_hosts')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("constraints without tenant_id: %v", bad)
	}
}
