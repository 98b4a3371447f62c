package auth

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

const (
	selectorBytes  = 12
	validatorBytes = 32
)

// RememberTable says where a principal's remember-me tokens live: a table
// with tenant_id, id, the principal's id column, selector, validator_hash,
// created_at, expires_at and last_used_at. Code constants only.
type RememberTable struct {
	Table     string // e.g. "remember_tokens"
	Principal string // e.g. "account_id"
}

// RememberStore keeps "selector:validator" remember-me cookies: the
// selector finds the row, the validator (stored as its SHA-256) proves the
// cookie and is replaced at each use, so that a copied cookie used twice is
// noticed (ErrRememberReplayed). The expiry is fixed at issue: using the
// cookie never extends it.
type RememberStore struct {
	DB    *sqlx.DB
	Table RememberTable
	TTL   time.Duration // required
	Now   func() time.Time
}

func (r *RememberStore) now() time.Time { return Clock(r.Now) }

// Issue creates a token for the principal and returns the cookie value
// and its expiry (the cookie's Max-Age).
func (r *RememberStore) Issue(ctx context.Context, tenantID, principalID int64) (string, time.Time, error) {
	sel, err := NewSecret(selectorBytes)
	if err != nil {
		return "", time.Time{}, err
	}
	val, err := NewSecret(validatorBytes)
	if err != nil {
		return "", time.Time{}, err
	}
	now := r.now()
	exp := now.Add(r.TTL)
	if _, err := r.DB.ExecContext(ctx, `INSERT INTO `+r.Table.Table+`
		(tenant_id, `+r.Table.Principal+`, selector, validator_hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, tenantID, principalID, sel, Hash(val), now, exp); err != nil {
		return "", time.Time{}, fmt.Errorf("auth: issue remember-me: %w", err)
	}
	return sel + ":" + val, exp, nil
}

func splitRemember(v string) (sel, val string, ok bool) {
	sel, val, ok = strings.Cut(v, ":")
	return sel, val, ok && WellFormed(sel, selectorBytes) && WellFormed(val, validatorBytes)
}

// Use checks a cookie of this commune in tx, under a lock of its row, and
// rotates its validator: it returns the principal and the new cookie
// value. An unknown or expired cookie is ErrRememberInvalid (an expired
// token is deleted). A known selector with a wrong validator is
// ErrRememberReplayed with the principal it belongs to: the cookie was
// copied, and the caller must end everything it may have given (RevokeAll,
// the principal's sessions) in tx.
func (r *RememberStore) Use(ctx context.Context, tx *sqlx.Tx, tenantID int64, cookieValue string) (principalID int64, newValue string, err error) {
	sel, val, ok := splitRemember(cookieValue)
	if !ok {
		return 0, "", ErrRememberInvalid
	}
	var row struct {
		ID            int64     `db:"id"`
		PrincipalID   int64     `db:"principal_id"`
		ValidatorHash []byte    `db:"validator_hash"`
		ExpiresAt     time.Time `db:"expires_at"`
	}
	err = tx.GetContext(ctx, &row, `SELECT id, `+r.Table.Principal+` AS principal_id, validator_hash, expires_at
		FROM `+r.Table.Table+` WHERE tenant_id = $1 AND selector = $2 FOR UPDATE`, tenantID, sel)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", ErrRememberInvalid
	}
	if err != nil {
		return 0, "", fmt.Errorf("auth: load remember-me: %w", err)
	}
	if subtle.ConstantTimeCompare(row.ValidatorHash, Hash(val)) != 1 {
		return row.PrincipalID, "", ErrRememberReplayed
	}
	now := r.now()
	if !now.Before(row.ExpiresAt) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+r.Table.Table+` WHERE tenant_id = $1 AND id = $2`, tenantID, row.ID); err != nil {
			return 0, "", fmt.Errorf("auth: delete expired remember-me: %w", err)
		}
		return 0, "", ErrRememberInvalid
	}
	nv, err := NewSecret(validatorBytes)
	if err != nil {
		return 0, "", err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+r.Table.Table+` SET validator_hash = $3, last_used_at = $4
		WHERE tenant_id = $1 AND id = $2`, tenantID, row.ID, Hash(nv), now); err != nil {
		return 0, "", fmt.Errorf("auth: rotate remember-me: %w", err)
	}
	return row.PrincipalID, sel + ":" + nv, nil
}

// Forget deletes the one token behind a cookie (at logout), through x.
func (r *RememberStore) Forget(ctx context.Context, x sqlx.ExecerContext, tenantID int64, cookieValue string) error {
	sel, _, ok := splitRemember(cookieValue)
	if !ok {
		return nil
	}
	if _, err := x.ExecContext(ctx, `DELETE FROM `+r.Table.Table+` WHERE tenant_id = $1 AND selector = $2`, tenantID, sel); err != nil {
		return fmt.Errorf("auth: forget remember-me: %w", err)
	}
	return nil
}

// RevokeAll deletes every token of the principal, through x.
func (r *RememberStore) RevokeAll(ctx context.Context, x sqlx.ExecerContext, tenantID, principalID int64) error {
	if _, err := x.ExecContext(ctx, `DELETE FROM `+r.Table.Table+` WHERE tenant_id = $1 AND `+r.Table.Principal+` = $2`,
		tenantID, principalID); err != nil {
		return fmt.Errorf("auth: revoke remember-me: %w", err)
	}
	return nil
}

// Purge deletes expired tokens of every commune.
func (r *RememberStore) Purge(ctx context.Context) error {
	if _, err := r.DB.ExecContext(ctx, `DELETE FROM `+r.Table.Table+` WHERE expires_at < $1`, r.now()); err != nil {
		return fmt.Errorf("auth: purge remember-me: %w", err)
	}
	return nil
}
