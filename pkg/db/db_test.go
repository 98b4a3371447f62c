package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"portail/pkg/db"
	"portail/pkg/dbtest"
	"portail/pkg/pgcluster"
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
	// a host name must be globally unique, so its key is the host alone. A
	// foreign key to the staff_users reference table (a person may work for
	// several communes) names the user alone.
	var bad []string
	err := d.Select(&bad, `
		SELECT c.conrelid::regclass::text || '.' || c.conname
		FROM pg_constraint c
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attname = 'tenant_id'
		WHERE c.contype IN ('p', 'u', 'f')
		  AND c.connamespace = 'public'::regnamespace
		  AND NOT (a.attnum = ANY (c.conkey))
		  AND c.conrelid::regclass::text NOT IN ('tenant_hosts')
		  AND NOT (c.contype = 'f' AND c.confrelid::regclass::text = 'staff_users')
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
	// (replicated to every node: the communes, and the staff users, who
	// may work for several communes) or the job queue's and migrator's own.
	reference := map[string]bool{"tenants": true, "tenant_hosts": true, "goose_db_version": true,
		"staff_users": true, "staff_recovery_codes": true}
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
	// in the key, or to a reference table.
	var badFKs []string
	err = d.Select(&badFKs, `
		SELECT c.conrelid::regclass::text || '.' || c.conname
		FROM pg_constraint c
		WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
		  AND c.confrelid::regclass::text NOT IN ('tenants', 'staff_users')
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

// Unavailable is told apart on real failures: a refused connection and a
// connection ended by the server are; a bad query is not.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t)
	if _, err := d.ExecContext(ctx, `SELECT * FROM no_such_table`); err == nil || db.Unavailable(err) {
		t.Errorf("a bad query counts as unavailable: %v", err)
	}
	if _, err := d.ExecContext(ctx, `SELECT 1/0`); err == nil || db.Unavailable(err) {
		t.Errorf("a failing query counts as unavailable: %v", err)
	}
	if _, err := d.ExecContext(ctx, "SELECT $1::text", "a\x00b"); err == nil || db.Unavailable(err) {
		t.Errorf("a NUL byte counts as unavailable: %v", err)
	}

	// A connection terminated by an administrator (57P01), as at shutdown.
	conn, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(ctx, `SELECT 1`)
	if err == nil || !db.Unavailable(err) {
		t.Errorf("terminated connection: %v, want unavailable", err)
	}

	// Nothing listening.
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	closed, err := sql.Open("postgres", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable", port))
	if err != nil {
		t.Fatal(err)
	}
	defer closed.Close()
	if err := closed.PingContext(ctx); err == nil || !db.Unavailable(err) {
		t.Errorf("refused connection: %v, want unavailable", err)
	}
	if db.Unavailable(nil) {
		t.Error("nil is unavailable")
	}
}
