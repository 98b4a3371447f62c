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
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/db"
)

// ErrInvalid means the key is unknown, revoked, malformed or of another commune.
var ErrInvalid = errors.New("apikey: invalid key")

// ErrInvalidName refuses a key without a name or with a name too long.
var ErrInvalidName = errors.New("apikey: name must have 1 to 100 characters")

// ErrNotFound means the commune has no key of that id.
var ErrNotFound = errors.New("apikey: not found")

// MaxNameLength bounds a key's name, in characters.
const MaxNameLength = 100

// Key describes a key (never its secret).
type Key struct {
	TenantID   int64      `db:"tenant_id"`
	ID         int64      `db:"id"`
	Name       string     `db:"name"`
	Prefix     string     `db:"prefix"`
	CreatedAt  time.Time  `db:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
	// CreatedBy is the name of the staff member who created it ("": the
	// command line).
	CreatedBy string `db:"created_by"`
}

// LastUsed is when the key was last used (the zero time: never).
func (k Key) LastUsed() time.Time {
	if k.LastUsedAt == nil {
		return time.Time{}
	}
	return *k.LastUsedAt
}

// Store keeps the keys.
type Store struct{ DB *sqlx.DB }

// Create makes a key for a commune and returns it in clear, once:
// "pdf_<prefix>_<secret>" with a 256-bit secret (the command line's
// keys: no staff creator).
func (s *Store) Create(ctx context.Context, tenantID int64, name string) (string, *Key, error) {
	return s.Issue(ctx, tenantID, 0, name)
}

// Issue is Create by staff member staffID (0: none), audited in the
// transaction that stores the key.
func (s *Store) Issue(ctx context.Context, tenantID, staffID int64, name string) (string, *Key, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > MaxNameLength {
		return "", nil, ErrInvalidName
	}
	prefix := strings.ToLower(rand.Text()[:10])
	raw := "pdf_" + prefix + "_" + rand.Text() + rand.Text()[:26]
	h := sha256.Sum256([]byte(raw))
	var creator sql.NullInt64
	if staffID != 0 {
		creator = sql.NullInt64{Int64: staffID, Valid: true}
	}
	k := &Key{}
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, k, `INSERT INTO api_keys (tenant_id, name, prefix, key_hash, created_by) VALUES ($1, $2, $3, $4, $5)
			RETURNING tenant_id, id, name, prefix, created_at, last_used_at, revoked_at`, tenantID, name, prefix, h[:], creator); err != nil {
			return fmt.Errorf("apikey: create: %w", err)
		}
		return audit.Record(ctx, tx, tenantID, "api_key.create", audit.Of(audit.ObjectAPIKey, k.ID),
			map[string]any{"name": name, "prefix": prefix})
	})
	if err != nil {
		return "", nil, err
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
	err := s.DB.SelectContext(ctx, &ks, `SELECT k.tenant_id, k.id, k.name, k.prefix, k.created_at, k.last_used_at, k.revoked_at,
		coalesce(u.name, '') AS created_by
		FROM api_keys k LEFT JOIN staff_users u ON u.id = k.created_by WHERE k.tenant_id = $1 ORDER BY k.id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("apikey: list: %w", err)
	}
	return ks, nil
}

// Revoke disables the key of that prefix at once (the next request with
// it is refused: Verify reads the key at every request), audited.
func (s *Store) Revoke(ctx context.Context, tenantID int64, prefix string) error {
	return s.revoke(ctx, tenantID, "prefix = $2", prefix, ErrInvalid)
}

// RevokeID is Revoke by the key's id; ErrNotFound when the commune has no
// active key of that id.
func (s *Store) RevokeID(ctx context.Context, tenantID, id int64) error {
	return s.revoke(ctx, tenantID, "id = $2", id, ErrNotFound)
}

func (s *Store) revoke(ctx context.Context, tenantID int64, where string, arg any, notFound error) error {
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var k Key
		err := tx.GetContext(ctx, &k, `UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND `+where+` AND revoked_at IS NULL
			RETURNING tenant_id, id, name, prefix, created_at, last_used_at, revoked_at`, tenantID, arg)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound
		}
		if err != nil {
			return fmt.Errorf("apikey: revoke: %w", err)
		}
		return audit.Record(ctx, tx, tenantID, "api_key.revoke", audit.Of(audit.ObjectAPIKey, k.ID),
			map[string]any{"name": k.Name, "prefix": k.Prefix})
	})
}
