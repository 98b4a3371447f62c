package account

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/tenant"
)

// What the commune's staff do to a payer's account ("Redevables"). The
// actor is the staff member carried by ctx.

// Errors of the staff's actions.
var (
	// ErrAlreadyActive: the account is activated; there is nothing to
	// resend.
	ErrAlreadyActive = errors.New("account: already activated")
	// ErrStatusUnchanged: the account is already disabled (or enabled).
	ErrStatusUnchanged = errors.New("account: status unchanged")
)

// ResendActivation emails the payer of a pending account the activation
// link a resident gets from the activation page (same email, same token
// rules: earlier links stop working). It shares the per-address limit of
// that page, so neither can flood a resident's inbox. An activated account
// is ErrAlreadyActive, a disabled one ErrAccountInactive (enable it
// first), too many sends ErrTooManyRequests.
func (s *Service) ResendActivation(ctx context.Context, t *tenant.Tenant, accountID int64) error {
	now := s.now()
	var limited bool
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		a, _, err := getAccountForUpdate(ctx, tx, t.ID, accountID)
		if err != nil {
			return err
		}
		switch a.Status {
		case StatusActive:
			return ErrAlreadyActive
		case StatusDisabled:
			return ErrAccountInactive
		}
		ok, err := auth.Allow(ctx, tx, now, t.ID, "activation", a.Email, s.limits().ActivationPerHour, time.Hour)
		if err != nil {
			return err
		}
		if !ok {
			limited = true
			return nil
		}
		if err := s.sendActivation(ctx, tx, t, a, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, t.ID, "account.activation_resent", accountObject(a.ID),
			map[string]any{"email": a.Email})
	})
	if err != nil {
		return err
	}
	if limited {
		return ErrTooManyRequests
	}
	return nil
}

// SetDisabled disables (true) or enables (false) a payer's account and
// returns its status before and after. A disabled resident cannot log in,
// activate or reset a password; their sessions, remember-me cookies and
// outstanding links end in the same transaction (a session that raced it
// is refused at its next request anyway: sessions load only active
// accounts). Enabling gives back the state the account had earned:
// activated when it has a password, not activated otherwise.
func (s *Service) SetDisabled(ctx context.Context, t *tenant.Tenant, accountID int64, disabled bool) (before, after string, err error) {
	now := s.now()
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		a, hash, err := getAccountForUpdate(ctx, tx, t.ID, accountID)
		if err != nil {
			return err
		}
		before = a.Status
		switch {
		case a.Status == StatusClosed:
			// Its resident closed it (or it was closed for inactivity):
			// only a new import of its reference opens it again.
			return ErrAccountClosed
		case disabled && a.Status == StatusDisabled, !disabled && a.Status != StatusDisabled:
			return ErrStatusUnchanged
		case disabled:
			after = StatusDisabled
		case hash != "":
			after = StatusActive
		default:
			after = StatusPending
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET status = $3, updated_at = $4
			WHERE tenant_id = $1 AND id = $2`, t.ID, a.ID, after, now); err != nil {
			return fmt.Errorf("account: set status: %w", err)
		}
		details := map[string]any{"status": map[string]string{"before": before, "after": after}}
		action := "account.enabled"
		if disabled {
			action = "account.disabled"
			closed, err := deleteSessions(ctx, tx, t.ID, a.ID, "")
			if err != nil {
				return err
			}
			if err := s.remember().RevokeAll(ctx, tx, t.ID, a.ID); err != nil {
				return err
			}
			if err := invalidateTokens(ctx, tx, t.ID, a.ID, now, PurposeActivation, PurposeReset, PurposeEmailChange); err != nil {
				return err
			}
			details["sessions_closed"] = closed
		}
		return audit.Record(ctx, tx, t.ID, action, accountObject(a.ID), details)
	})
	return before, after, err
}

// History returns the audit entries about the account, most recent first
// (at most limit): the staff's view of what happened to it.
func (s *Service) History(ctx context.Context, tenantID, accountID int64, limit int) ([]audit.Entry, error) {
	es, _, err := audit.Search(ctx, s.DB, tenantID, audit.Filter{ObjectType: audit.ObjectAccount,
		ObjectID: strconv.FormatInt(accountID, 10)}, 1, limit)
	return es, err
}
