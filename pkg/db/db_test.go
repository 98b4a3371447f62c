package db_test

import (
	"context"
	"strings"
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

// TestSchemaMeetsCitusRules checks what distributing every tenant table by
// tenant_id with Citus needs: unique indexes include tenant_id, and every
// table is either a tenant table or a known reference/local one.
func TestSchemaMeetsCitusRules(t *testing.T) {
	d := dbtest.New(t)
	var badIndexes []string
	err := d.Select(&badIndexes, `
		SELECT i.indexrelid::regclass::text
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid AND c.relnamespace = 'public'::regnamespace
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = 'tenant_id'
		WHERE i.indisunique AND NOT (a.attnum = ANY (i.indkey::int2[]))
		  AND c.relname NOT IN ('tenant_hosts')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if len(badIndexes) > 0 {
		t.Errorf("unique indexes without tenant_id: %v", badIndexes)
	}
	// Tables without tenant_id must be deliberate: reference tables
	// (replicated to every node) or the job queue's and migrator's own.
	reference := map[string]bool{"tenants": true, "tenant_hosts": true, "goose_db_version": true}
	var noTenant []string
	err = d.Select(&noTenant, `
		SELECT c.relname FROM pg_class c
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
		  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range noTenant {
		if !reference[name] && !strings.HasPrefix(name, "river_") {
			t.Errorf("table %s has no tenant_id and is not a known reference table", name)
		}
	}
	// Foreign keys of tenant tables point to a tenant table with tenant_id
	// in the key, or to the tenants reference table.
	var badFKs []string
	err = d.Select(&badFKs, `
		SELECT c.conrelid::regclass::text || '.' || c.conname
		FROM pg_constraint c
		WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
		  AND c.confrelid::regclass::text NOT IN ('tenants')
		  AND NOT EXISTS (SELECT 1 FROM pg_attribute a
		                  WHERE a.attrelid = c.confrelid AND a.attname = 'tenant_id' AND a.attnum = ANY (c.confkey))
		  AND c.conrelid::regclass::text NOT LIKE 'river_%'
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if len(badFKs) > 0 {
		t.Errorf("foreign keys not co-located by tenant_id: %v", badFKs)
	}
}
