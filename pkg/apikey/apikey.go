// Package apikey manages the per-commune API keys of billing software:
// shown once at creation, stored as SHA-256 only, revocable.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// ErrInvalid means the key is unknown, revoked, malformed or of another commune.
var ErrInvalid = errors.New("apikey: invalid key")

// Key describes a key (never its secret).
type Key struct {
	TenantID   int64      `db:"tenant_id"`
	ID         int64      `db:"id"`
	Name       string     `db:"name"`
	Prefix     string     `db:"prefix"`
	CreatedAt  time.Time  `db:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
}

// Store keeps the keys.
type Store struct{ DB *sqlx.DB }

// Create makes a key for a commune and returns it in clear, once:
// "pdf_<prefix>_<secret>" with a 256-bit secret.
func (s *Store) Create(ctx context.Context, tenantID int64, name string) (string, *Key, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", nil, errors.New("apikey: name must have 1 to 100 characters")
	}
	prefix := strings.ToLower(rand.Text()[:10])
	raw := "pdf_" + prefix + "_" + rand.Text() + rand.Text()[:26]
	h := sha256.Sum256([]byte(raw))
	k := &Key{}
	err := s.DB.GetContext(ctx, k, `INSERT INTO api_keys (tenant_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4)
		RETURNING tenant_id, id, name, prefix, created_at, last_used_at, revoked_at`, tenantID, name, prefix, h[:])
	if err != nil {
		return "", nil, fmt.Errorf("apikey: create: %w", err)
	}
	return raw, k, nil
}

// Verify checks a presented key against the commune of the request.
func (s *Store) Verify(ctx context.Context, tenantID int64, raw string) (*Key, error) {
	parts := strings.Split(raw, "_")
	if len(parts) != 3 || parts[0] != "pdf" || len(parts[1]) != 10 || len(raw) > 200 {
		return nil, ErrInvalid
	}
	var row struct {
		Key
		Hash []byte `db:"key_hash"`
	}
	err := s.DB.GetContext(ctx, &row, `SELECT tenant_id, id, name, prefix, created_at, last_used_at, revoked_at, key_hash
		FROM api_keys WHERE tenant_id = $1 AND prefix = $2`, tenantID, parts[1])
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("apikey: verify: %w", err)
	}
	h := sha256.Sum256([]byte(raw))
	if subtle.ConstantTimeCompare(h[:], row.Hash) != 1 || row.RevokedAt != nil {
		return nil, ErrInvalid
	}
	// Last use is informative: one write per key and minute is plenty.
	if row.LastUsedAt == nil || time.Since(*row.LastUsedAt) > time.Minute {
		s.DB.ExecContext(ctx, `UPDATE api_keys SET last_used_at = now() WHERE tenant_id = $1 AND id = $2`, tenantID, row.ID)
	}
	return &row.Key, nil
}

// List returns a commune's keys.
func (s *Store) List(ctx context.Context, tenantID int64) ([]Key, error) {
	var ks []Key
	err := s.DB.SelectContext(ctx, &ks, `SELECT tenant_id, id, name, prefix, created_at, last_used_at, revoked_at
		FROM api_keys WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("apikey: list: %w", err)
	}
	return ks, nil
}

// Revoke disables a key at once.
func (s *Store) Revoke(ctx context.Context, tenantID int64, prefix string) error {
	res, err := s.DB.ExecContext(ctx, `UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND prefix = $2 AND revoked_at IS NULL`, tenantID, prefix)
	if err != nil {
		return fmt.Errorf("apikey: revoke: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrInvalid
	}
	return nil
}
