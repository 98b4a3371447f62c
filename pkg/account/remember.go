package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// residentRemember is where residents' remember-me tokens live.
var residentRemember = auth.RememberTable{Table: "remember_tokens", Principal: "account_id"}

func (s *Service) remember() *auth.RememberStore {
	return &auth.RememberStore{DB: s.DB, Table: residentRemember, TTL: s.limits().RememberTTL, Now: s.Now}
}

// IssueRemember creates a remember-me token ("Se souvenir de moi") for the
// account and returns the cookie value "selector:validator" and its expiry
// (the cookie's Max-Age). The expiry is fixed at issue: using the cookie
// rotates the validator but never extends the 30 days.
func (s *Service) IssueRemember(ctx context.Context, tenantID, accountID int64) (string, time.Time, error) {
	return s.remember().Issue(ctx, tenantID, accountID)
}

// UseRemember checks a remember-me cookie of this tenant and rotates it: it
// returns the account to log in and the new cookie value. A known selector
// with a wrong validator means the cookie was copied and used by someone
// else (or is being replayed): whoever used it first may be a thief holding
// a session, so every session and every remember-me token of the account
// are revoked, the resident is told by email, and ErrRememberReplayed is
// returned.
func (s *Service) UseRemember(ctx context.Context, t *tenant.Tenant, cookieValue string) (int64, string, error) {
	var accountID int64
	var newValue string
	var outcome error
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		id, rotated, err := s.remember().Use(ctx, tx, t.ID, cookieValue)
		switch {
		case errors.Is(err, ErrRememberReplayed):
			outcome = err
			a, err := getAccount(ctx, tx, t.ID, id)
			if err != nil {
				return err
			}
			return s.rememberStolen(ctx, tx, t, a)
		case errors.Is(err, ErrRememberInvalid):
			outcome = err
			return nil
		case err != nil:
			return err
		}
		a, err := getAccount(ctx, tx, t.ID, id)
		if err != nil {
			return err
		}
		if a.Status != StatusActive {
			outcome = ErrRememberInvalid
			return s.remember().Forget(ctx, tx, t.ID, rotated)
		}
		accountID, newValue = id, rotated
		if err := markLogin(ctx, tx, t.ID, id, s.now()); err != nil {
			return err
		}
		return audit.Record(asResident(ctx, id), tx, t.ID, "login.remembered", accountObject(id), nil)
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
	if err := s.remember().RevokeAll(ctx, tx, t.ID, a.ID); err != nil {
		return err
	}
	closed, err := deleteSessions(ctx, tx, t.ID, a.ID, "")
	if err != nil {
		return fmt.Errorf("account: end sessions after remember-me replay: %w", err)
	}
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
	return s.remember().RevokeAll(ctx, s.DB, tenantID, accountID)
}

// ForgetRemember deletes the one token behind a cookie (at logout).
func (s *Service) ForgetRemember(ctx context.Context, tenantID int64, cookieValue string) error {
	return s.remember().Forget(ctx, s.DB, tenantID, cookieValue)
}

// RecordLogout records a resident's logout in the audit trail (their
// login history).
func (s *Service) RecordLogout(ctx context.Context, tenantID, accountID int64) error {
	return audit.Record(asResident(ctx, accountID), s.DB, tenantID, "logout", accountObject(accountID), nil)
}
