// Package db opens PostgreSQL through sqlx + lib/pq, applies the embedded
// migrations (goose for ours, rivermigrate for River's tables) and offers
// transaction helpers.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"

	"portail/migrations"
)

// Open connects and pings the database.
func Open(ctx context.Context, url string, maxOpen int) (*sqlx.DB, error) {
	d, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("db: open: %w", err)
	}
	if maxOpen > 0 {
		d.SetMaxOpenConns(maxOpen)
		d.SetMaxIdleConns(maxOpen)
	}
	d.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.PingContext(pingCtx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: ping: %w", err)
	}
	return d, nil
}

func provider(d *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, d, migrations.FS,
		goose.WithLogger(goose.NopLogger()))
	if err != nil {
		return nil, fmt.Errorf("db: migrations: %w", err)
	}
	return p, nil
}

func riverMigrator(d *sql.DB) (*rivermigrate.Migrator[*sql.Tx], error) {
	m, err := rivermigrate.New(riverdatabasesql.New(d), &rivermigrate.Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, fmt.Errorf("db: river migrations: %w", err)
	}
	return m, nil
}

// Migrate applies River's migrations, then ours. It is safe to run
// concurrently: goose takes a session lock.
func Migrate(ctx context.Context, d *sql.DB) error {
	rm, err := riverMigrator(d)
	if err != nil {
		return err
	}
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("db: river migrations: %w", err)
	}
	p, err := provider(d)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	return nil
}

// Pending lists the migrations not yet applied (ours and River's).
func Pending(ctx context.Context, d *sql.DB) ([]string, error) {
	p, err := provider(d)
	if err != nil {
		return nil, err
	}
	status, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: migration status: %w", err)
	}
	var pending []string
	for _, s := range status {
		if s.State == goose.StatePending {
			pending = append(pending, s.Source.Path)
		}
	}
	rm, err := riverMigrator(d)
	if err != nil {
		return nil, err
	}
	res, err := rm.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{DryRun: true})
	if err != nil {
		return nil, fmt.Errorf("db: river migration status: %w", err)
	}
	for _, v := range res.Versions {
		pending = append(pending, fmt.Sprintf("river/%03d_%s", v.Version, v.Name))
	}
	return pending, nil
}

// InTx runs fn in a transaction, committing when it returns nil.
func InTx(ctx context.Context, d *sqlx.DB, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := d.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
		if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("db: commit: %w", err)
	}
	return nil
}

// IsUniqueViolation tells whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	var pe interface{ SQLState() string }
	return errors.As(err, &pe) && pe.SQLState() == "23505"
}
