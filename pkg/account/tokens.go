package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/auth"
)

// Purpose says what a one-time token is for.
type Purpose string

// Token purposes.
const (
	PurposeActivation  Purpose = "activation"
	PurposeReset       Purpose = "reset"
	PurposeEmailChange Purpose = "email_change"
)

func (p Purpose) valid() bool {
	return p == PurposeActivation || p == PurposeReset || p == PurposeEmailChange
}

// Token is what a valid one-time token stands for.
type Token struct {
	AccountID int64     `db:"account_id"`
	Purpose   Purpose   `db:"purpose"`
	NewEmail  string    `db:"new_email"` // email change only
	ExpiresAt time.Time `db:"expires_at"`
}

// issueToken invalidates the account's unused tokens of this purpose and
// stores a new one; it returns the raw token (for the email only).
func issueToken(ctx context.Context, tx *sqlx.Tx, tenantID, accountID int64, p Purpose, newEmail string, now time.Time, ttl time.Duration) (string, time.Time, error) {
	raw, hash, err := auth.NewToken()
	if err != nil {
		return "", time.Time{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE account_tokens SET used_at = $4
		WHERE tenant_id = $1 AND account_id = $2 AND purpose = $3 AND used_at IS NULL`,
		tenantID, accountID, p, now); err != nil {
		return "", time.Time{}, fmt.Errorf("account: invalidate tokens: %w", err)
	}
	var ne sql.NullString
	if p == PurposeEmailChange {
		ne = sql.NullString{String: newEmail, Valid: true}
	}
	exp := now.Add(ttl)
	if _, err := tx.ExecContext(ctx, `INSERT INTO account_tokens
		(tenant_id, account_id, purpose, token_hash, new_email, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		tenantID, accountID, p, hash, ne, now, exp); err != nil {
		return "", time.Time{}, fmt.Errorf("account: store token: %w", err)
	}
	return raw, exp, nil
}

// invalidateTokens marks the account's unused tokens of these purposes used.
func invalidateTokens(ctx context.Context, tx *sqlx.Tx, tenantID, accountID int64, now time.Time, purposes ...Purpose) error {
	ps := make([]string, len(purposes))
	for i, p := range purposes {
		ps[i] = string(p)
	}
	_, err := tx.ExecContext(ctx, `UPDATE account_tokens SET used_at = $3
		WHERE tenant_id = $1 AND account_id = $2 AND used_at IS NULL AND purpose = ANY($4)`,
		tenantID, accountID, now, pq.Array(ps))
	if err != nil {
		return fmt.Errorf("account: invalidate tokens: %w", err)
	}
	return nil
}

// PeekToken tells whether rawToken is a valid unused token of this purpose
// in this tenant, without consuming it: the GET of a link shows the form
// (mail scanners prefetch links), the POST consumes the token.
func (s *Service) PeekToken(ctx context.Context, tenantID int64, rawToken string, p Purpose) (*Token, error) {
	if !p.valid() || !auth.WellFormed(rawToken, auth.TokenBytes) {
		return nil, ErrTokenInvalid
	}
	var tok Token
	var ne sql.NullString
	row := s.DB.QueryRowxContext(ctx, `SELECT t.account_id, t.purpose, t.new_email, t.expires_at
		FROM account_tokens t JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
		WHERE t.tenant_id = $1 AND t.token_hash = $2 AND t.purpose = $3
		  AND t.used_at IS NULL AND t.expires_at > $4 AND a.status <> 'disabled'`,
		tenantID, auth.Hash(rawToken), p, s.now())
	if err := row.Scan(&tok.AccountID, &tok.Purpose, &ne, &tok.ExpiresAt); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrTokenInvalid
		}
		return nil, fmt.Errorf("account: peek token: %w", err)
	}
	tok.NewEmail = ne.String
	return &tok, nil
}

// consumeToken atomically marks a valid token used and returns it; a second
// use, an expired token or another tenant's token gives ErrTokenInvalid.
func consumeToken(ctx context.Context, tx *sqlx.Tx, tenantID int64, rawToken string, p Purpose, now time.Time) (*Token, error) {
	if !p.valid() || !auth.WellFormed(rawToken, auth.TokenBytes) {
		return nil, ErrTokenInvalid
	}
	var tok Token
	var ne sql.NullString
	row := tx.QueryRowxContext(ctx, `UPDATE account_tokens t SET used_at = $4
		FROM accounts a
		WHERE t.tenant_id = $1 AND t.token_hash = $2 AND t.purpose = $3
		  AND t.used_at IS NULL AND t.expires_at > $4
		  AND a.tenant_id = t.tenant_id AND a.id = t.account_id AND a.status <> 'disabled'
		RETURNING t.account_id, t.purpose, t.new_email, t.expires_at`,
		tenantID, auth.Hash(rawToken), p, now)
	if err := row.Scan(&tok.AccountID, &tok.Purpose, &ne, &tok.ExpiresAt); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrTokenInvalid
		}
		return nil, fmt.Errorf("account: consume token: %w", err)
	}
	tok.NewEmail = ne.String
	return &tok, nil
}
