package account

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

const (
	selectorBytes  = 12
	validatorBytes = 32
)

// IssueRemember creates a remember-me token ("Se souvenir de moi") for the
// account and returns the cookie value "selector:validator" and its expiry
// (the cookie's Max-Age). The expiry is fixed at issue: using the cookie
// rotates the validator but never extends the 30 days.
func (s *Service) IssueRemember(ctx context.Context, tenantID, accountID int64) (string, time.Time, error) {
	sel, err := newSecret(selectorBytes)
	if err != nil {
		return "", time.Time{}, err
	}
	val, err := newSecret(validatorBytes)
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	exp := now.Add(s.limits().RememberTTL)
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO remember_tokens
		(tenant_id, account_id, selector, validator_hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, tenantID, accountID, sel, sha(val), now, exp); err != nil {
		return "", time.Time{}, fmt.Errorf("account: issue remember-me: %w", err)
	}
	return sel + ":" + val, exp, nil
}

func splitRemember(v string) (sel, val string, ok bool) {
	sel, val, ok = strings.Cut(v, ":")
	return sel, val, ok && wellFormed(sel, selectorBytes) && wellFormed(val, validatorBytes)
}

// UseRemember checks a remember-me cookie of this tenant and rotates it: it
// returns the account to log in and the new cookie value. A known selector
// with a wrong validator means the cookie was copied and used by someone
// else (or is being replayed): whoever used it first may be a thief holding
// a session, so every session and every remember-me token of the account
// are revoked, the resident is told by email, and ErrRememberReplayed is
// returned.
func (s *Service) UseRemember(ctx context.Context, t *tenant.Tenant, cookieValue string) (int64, string, error) {
	tenantID := t.ID
	sel, val, ok := splitRemember(cookieValue)
	if !ok {
		return 0, "", ErrRememberInvalid
	}
	now := s.now()
	var accountID int64
	var newValue string
	var outcome error
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var row struct {
			ID            int64     `db:"id"`
			AccountID     int64     `db:"account_id"`
			ValidatorHash []byte    `db:"validator_hash"`
			ExpiresAt     time.Time `db:"expires_at"`
			Status        string    `db:"status"`
			Email         string    `db:"email"`
			DisplayName   string    `db:"display_name"`
		}
		err := tx.GetContext(ctx, &row, `SELECT r.id, r.account_id, r.validator_hash, r.expires_at, a.status,
			a.email, a.display_name
			FROM remember_tokens r JOIN accounts a ON a.tenant_id = r.tenant_id AND a.id = r.account_id
			WHERE r.tenant_id = $1 AND r.selector = $2 FOR UPDATE OF r`, tenantID, sel)
		if errors.Is(err, sql.ErrNoRows) {
			outcome = ErrRememberInvalid
			return nil
		}
		if err != nil {
			return fmt.Errorf("account: load remember-me: %w", err)
		}
		if subtle.ConstantTimeCompare(row.ValidatorHash, sha(val)) != 1 {
			outcome = ErrRememberReplayed
			return s.rememberStolen(ctx, tx, t, &Account{TenantID: tenantID, ID: row.AccountID,
				Email: row.Email, DisplayName: row.DisplayName, Status: row.Status})
		}
		if !now.Before(row.ExpiresAt) || row.Status != StatusActive {
			outcome = ErrRememberInvalid
			_, err := tx.ExecContext(ctx, `DELETE FROM remember_tokens WHERE tenant_id = $1 AND id = $2`, tenantID, row.ID)
			return err
		}
		nv, err := newSecret(validatorBytes)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE remember_tokens SET validator_hash = $3, last_used_at = $4
			WHERE tenant_id = $1 AND id = $2`, tenantID, row.ID, sha(nv), now); err != nil {
			return fmt.Errorf("account: rotate remember-me: %w", err)
		}
		accountID, newValue = row.AccountID, sel+":"+nv
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	if outcome != nil {
		return 0, "", outcome
	}
	return accountID, newValue, nil
}

// rememberStolen ends everything a copied remember-me cookie may have given:
// every session of the account (the thief's among them: the replay usually
// comes from the victim's browser, after the thief's use) and every
// remember-me token; then it tells the resident, in the same transaction.
func (s *Service) rememberStolen(ctx context.Context, tx *sqlx.Tx, t *tenant.Tenant, a *Account) error {
	if err := revokeRemember(ctx, tx, t.ID, a.ID); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE tenant_id = $1 AND account_id = $2`, t.ID, a.ID)
	if err != nil {
		return fmt.Errorf("account: end sessions after remember-me replay: %w", err)
	}
	closed, _ := res.RowsAffected()
	if a.Status == StatusActive {
		link, err := s.link(t, "/")
		if err != nil {
			return err
		}
		if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
			TenantID: t.ID, To: a.Email, Template: "sessions_closed",
			Data: map[string]any{"Link": link, "DisplayName": a.DisplayName},
		}); err != nil {
			return fmt.Errorf("account: sessions closed email: %w", err)
		}
	}
	return audit.Record(asAnonymous(ctx, ""), tx, t.ID, "remember.replayed", accountObject(a.ID),
		map[string]any{"sessions_closed": closed})
}

// RevokeRemember deletes every remember-me token of the account.
func (s *Service) RevokeRemember(ctx context.Context, tenantID, accountID int64) error {
	return revokeRemember(ctx, s.DB, tenantID, accountID)
}

// ForgetRemember deletes the one token behind a cookie (at logout).
func (s *Service) ForgetRemember(ctx context.Context, tenantID int64, cookieValue string) error {
	sel, _, ok := splitRemember(cookieValue)
	if !ok {
		return nil
	}
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM remember_tokens WHERE tenant_id = $1 AND selector = $2`, tenantID, sel); err != nil {
		return fmt.Errorf("account: forget remember-me: %w", err)
	}
	return nil
}

func revokeRemember(ctx context.Context, x sqlx.ExecerContext, tenantID, accountID int64) error {
	if _, err := x.ExecContext(ctx, `DELETE FROM remember_tokens WHERE tenant_id = $1 AND account_id = $2`, tenantID, accountID); err != nil {
		return fmt.Errorf("account: revoke remember-me: %w", err)
	}
	return nil
}
