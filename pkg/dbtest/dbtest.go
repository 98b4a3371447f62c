// Package dbtest gives each test its own freshly migrated PostgreSQL database,
// cloned from a template database migrated once per test binary.
//
// The server is PORTAIL_TEST_DATABASE_URL when set (make test starts one
// private cluster for the whole run); otherwise a private cluster is started
// for this test binary and stopped when it exits (see Main).
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"portail/migrations"
	"portail/pkg/db"
	"portail/pkg/pgcluster"
)

var (
	setupOnce sync.Once
	serverURL string // URL of the maintenance database "postgres"
	template  string
	setupErr  error
	cluster   *pgcluster.Cluster
)

// Main wraps testing.M.Run so that a cluster started for this binary is
// stopped, after the cleanups given (e.g. stopping a shared browser).
// Use it from TestMain: func TestMain(m *testing.M) { dbtest.Main(m) }
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	if cluster != nil {
		cluster.Stop()
		os.RemoveAll(filepath.Dir(cluster.Dir))
	}
	os.Exit(code)
}

// ServerURL returns the maintenance URL of the test server, starting it if needed.
func ServerURL(t testing.TB) string {
	t.Helper()
	setupOnce.Do(setup)
	if setupErr != nil {
		t.Fatalf("dbtest: %v", setupErr)
	}
	return serverURL
}

// Cluster is the private cluster of this test binary, or nil when the
// server comes from PORTAIL_TEST_DATABASE_URL.
func Cluster(t testing.TB) *pgcluster.Cluster {
	ServerURL(t)
	return cluster
}

func setup() {
	ctx := context.Background()
	serverURL = os.Getenv("PORTAIL_TEST_DATABASE_URL")
	if serverURL == "" {
		port, err := pgcluster.FreePort()
		if err != nil {
			setupErr = err
			return
		}
		dir, err := os.MkdirTemp("", "portail-pg-")
		if err != nil {
			setupErr = err
			return
		}
		os.Chmod(dir, 0o755)
		cluster, setupErr = pgcluster.Start(ctx, filepath.Join(dir, "data"), port)
		if setupErr != nil {
			return
		}
		serverURL = cluster.URL("postgres")
	}
	template = "tmpl_" + migrationsHash()
	setupErr = ensureTemplate(ctx)
}

// migrationsHash names the template after the migrations' content, so a
// changed migration gets a new template and parallel test binaries share one.
func migrationsHash() string {
	h := fnv.New64a()
	names, _ := fs.Glob(migrations.FS, "*.sql")
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(migrations.FS, n)
		h.Write([]byte(n))
		h.Write(b)
	}
	return fmt.Sprintf("%x", h.Sum64())
}

func ensureTemplate(ctx context.Context) error {
	admin, err := sql.Open("postgres", serverURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Test binaries run in parallel: one builds the template, the others wait.
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(727274)`); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, `SELECT pg_advisory_unlock(727274)`)
	var exists bool
	if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, template).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := template + "_building"
	conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+building)
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+building); err != nil {
		return err
	}
	tdb, err := sql.Open("postgres", withDatabase(serverURL, building))
	if err != nil {
		return err
	}
	err = db.Migrate(ctx, tdb)
	tdb.Close()
	if err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, `ALTER DATABASE `+building+` RENAME TO `+template)
	return err
}

func withDatabase(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	p.Path = "/" + name
	return p.String()
}

// NewURL creates a fresh migrated database for this test, dropped at cleanup,
// and returns its URL.
func NewURL(t testing.TB) string {
	t.Helper()
	ServerURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	admin, err := sql.Open("postgres", serverURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE DATABASE ` + name + ` TEMPLATE ` + template); err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("postgres", serverURL)
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})
	return withDatabase(serverURL, name)
}

// New returns a connection pool to a fresh migrated database for this test.
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	d, err := db.Open(context.Background(), NewURL(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
