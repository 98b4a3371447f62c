package account

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/metrics"
	"portail/pkg/tenant"
)

// ActivationOutcome is the result of an activation request; the web layer
// shows the manual's message for each (or one neutral message when the
// commune chose tenant.ActivationMessages = "neutral": the outcome is then
// ActivationRequested, decided later by a job).
type ActivationOutcome int

// Activation outcomes.
const (
	// ActivationUnknown: "Activation impossible, adresse inconnue" (also for
	// disabled accounts: the resident must contact the service).
	ActivationUnknown ActivationOutcome = iota + 1
	// ActivationAlreadyActive: "Activation impossible, il existe déjà un
	// compte actif avec cette adresse mail."
	ActivationAlreadyActive
	// ActivationSent: "Un message d'activation du compte vous a été envoyé
	// avec succès."
	ActivationSent
	// ActivationRequested: neutral mode; the request was queued and its job
	// emails a link if the address is that of a pending account.
	ActivationRequested
)

func (o ActivationOutcome) String() string {
	switch o {
	case ActivationUnknown:
		return "unknown"
	case ActivationAlreadyActive:
		return "already_active"
	case ActivationSent:
		return "sent"
	case ActivationRequested:
		return "requested"
	}
	return fmt.Sprintf("ActivationOutcome(%d)", int(o))
}

// SetPasswordWithToken sets the password chosen on an activation or reset
// link's form and consumes the token. Activation makes the account active.
// Every session and remember-me token of the account is revoked; the
// resident then logs in (no automatic login). A *PolicyError leaves the
// token usable so that the form can be shown again.
func (s *Service) SetPasswordWithToken(ctx context.Context, t *tenant.Tenant, rawToken string, p Purpose, newPassword string) error {
	if p != PurposeActivation && p != PurposeReset {
		return ErrTokenInvalid
	}
	tok, err := s.PeekToken(ctx, t.ID, rawToken, p)
	if err != nil {
		return err
	}
	acc, err := s.Get(ctx, t.ID, tok.AccountID)
	if err != nil {
		return err
	}
	if err := auth.CheckPassword(newPassword, t.PasswordMinLength, t.Name, acc.Email); err != nil {
		return err
	}
	hash, err := s.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	now := s.now()
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		// Consumed here, atomically: a concurrent POST with the same token loses.
		tok, err := consumeToken(ctx, tx, t.ID, rawToken, p, now)
		if err != nil {
			return err
		}
		a, _, err := getAccountForUpdate(ctx, tx, t.ID, tok.AccountID)
		if err != nil {
			return err
		}
		if p == PurposeReset && a.Status != StatusActive {
			return ErrTokenInvalid
		}
		// Activating or resetting the password is a sign of life, as a
		// login is (see markLogin).
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = $3, status = 'active',
			password_changed_at = $4, updated_at = $4, last_login_at = $4, inactivity_warned_at = NULL
			WHERE tenant_id = $1 AND id = $2`, t.ID, a.ID, hash, now); err != nil {
			return fmt.Errorf("account: set password: %w", err)
		}
		if err := s.afterPasswordChange(ctx, tx, t.ID, a, "", now); err != nil {
			return err
		}
		action := "password.reset"
		if p == PurposeActivation {
			action = "account.activated"
		}
		return audit.Record(asResident(ctx, a.ID), tx, t.ID, action, accountObject(a.ID), nil)
	})
}

// afterPasswordChange revokes what the old password gave: outstanding
// tokens, other sessions, remember-me tokens; and clears the login counter.
func (s *Service) afterPasswordChange(ctx context.Context, tx *sqlx.Tx, tenantID int64, a *Account, keepSessionID string, now time.Time) error {
	if err := invalidateTokens(ctx, tx, tenantID, a.ID, now, PurposeActivation, PurposeReset, PurposeEmailChange); err != nil {
		return err
	}
	if _, err := deleteSessions(ctx, tx, tenantID, a.ID, keepSessionID); err != nil {
		return err
	}
	if err := s.remember().RevokeAll(ctx, tx, tenantID, a.ID); err != nil {
		return err
	}
	return s.throttle().Clear(ctx, tx, tenantID, a.Email)
}

// Authenticate checks an email and password. Unknown email, wrong
// password, pending and disabled accounts all give ErrInvalidCredentials
// after one argon2 computation; too many failures give *ThrottledError.
func (s *Service) Authenticate(ctx context.Context, t *tenant.Tenant, email, password, ip string) (*Account, error) {
	email = NormalizeEmail(email)
	wait, err := s.throttle().Reserve(ctx, t.ID, email, ip)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		return nil, &ThrottledError{RetryAfter: wait}
	}
	var row struct {
		Account
		PasswordHash string `db:"password_hash"`
	}
	err = s.DB.GetContext(ctx, &row, `SELECT `+accountColumns+`, password_hash FROM accounts
		WHERE tenant_id = $1 AND email = $2`, t.ID, email)
	found := err == nil
	if err != nil && !isNoRows(err) {
		return nil, fmt.Errorf("account: authenticate: %w", err)
	}
	var ok, rehash bool
	if !found || row.PasswordHash == "" {
		if err := s.Hasher.DummyVerify(ctx, password); err != nil {
			return nil, err
		}
	} else if ok, rehash, err = s.Hasher.Verify(ctx, password, row.PasswordHash); err != nil {
		return nil, err
	}
	if !ok || row.Status != StatusActive {
		// The attempt was already counted as a failure by the reservation.
		if err := audit.Record(asAnonymous(ctx, ip), s.DB, t.ID, "login.failed", accountObject(row.ID),
			map[string]any{"email": email}); err != nil {
			return nil, err
		}
		s.Metrics.LoginFailed(metrics.WhoResident)
		return nil, ErrInvalidCredentials
	}
	var newHash string
	if rehash {
		// Best effort: a failed rehash only delays the upgrade.
		newHash, _ = s.Hasher.Hash(ctx, password)
	}
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := s.throttle().Succeeded(ctx, tx, t.ID, email, ip); err != nil {
			return err
		}
		if newHash != "" {
			// Only if unchanged meanwhile (a concurrent reset wins).
			if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = $4
				WHERE tenant_id = $1 AND id = $2 AND password_hash = $3`, t.ID, row.ID, row.PasswordHash, newHash); err != nil {
				return fmt.Errorf("account: rehash: %w", err)
			}
		}
		if err := markLogin(ctx, tx, t.ID, row.ID, s.now()); err != nil {
			return err
		}
		return audit.Record(asResident(asAnonymous(ctx, ip), row.ID), tx, t.ID, "login.ok", accountObject(row.ID), nil)
	})
	if err != nil {
		return nil, err
	}
	return &row.Account, nil
}

// loadWithHash returns an active account and its password hash.
func (s *Service) loadWithHash(ctx context.Context, tenantID, accountID int64) (*Account, string, error) {
	var row struct {
		Account
		PasswordHash string `db:"password_hash"`
	}
	err := s.DB.GetContext(ctx, &row, `SELECT `+accountColumns+`, password_hash FROM accounts
		WHERE tenant_id = $1 AND id = $2`, tenantID, accountID)
	if isNoRows(err) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("account: load: %w", err)
	}
	if row.Status != StatusActive || row.PasswordHash == "" {
		return nil, "", ErrAccountInactive
	}
	return &row.Account, row.PasswordHash, nil
}

// checkCurrentPassword verifies a logged-in resident's password, throttled
// like a login on the account's email (a stolen session must not become a
// password oracle).
func (s *Service) checkCurrentPassword(ctx context.Context, t *tenant.Tenant, a *Account, hash, current, action string) error {
	wait, err := s.throttle().Reserve(ctx, t.ID, a.Email, "")
	if err != nil {
		return err
	}
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	ok, _, err := s.Hasher.Verify(ctx, current, hash)
	if err != nil {
		return err
	}
	if !ok {
		if err := audit.Record(asResident(ctx, a.ID), s.DB, t.ID, action+".wrong_password", accountObject(a.ID), nil); err != nil {
			return err
		}
		return ErrWrongPassword
	}
	return s.throttle().Clear(ctx, s.DB, t.ID, a.Email)
}

// ChangePassword replaces a logged-in resident's password ("Changer le mot
// de passe"); the current one is required. Other sessions (all but
// keepSessionID, the raw id of the current one) and every remember-me token
// are revoked.
func (s *Service) ChangePassword(ctx context.Context, t *tenant.Tenant, accountID int64, current, newPassword, keepSessionID string) error {
	a, hash, err := s.loadWithHash(ctx, t.ID, accountID)
	if err != nil {
		return err
	}
	if err := auth.CheckPassword(newPassword, t.PasswordMinLength, t.Name, a.Email); err != nil {
		return err
	}
	if err := s.checkCurrentPassword(ctx, t, a, hash, current, "password.change"); err != nil {
		return err
	}
	newHash, err := s.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	now := s.now()
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		a, _, err := getAccountForUpdate(ctx, tx, t.ID, accountID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = $3, password_changed_at = $4, updated_at = $4
			WHERE tenant_id = $1 AND id = $2`, t.ID, a.ID, newHash, now); err != nil {
			return fmt.Errorf("account: change password: %w", err)
		}
		if err := s.afterPasswordChange(ctx, tx, t.ID, a, keepSessionID, now); err != nil {
			return err
		}
		return audit.Record(asResident(ctx, a.ID), tx, t.ID, "password.changed", accountObject(a.ID), nil)
	})
}

// RequestEmailChange starts "Changer l'adresse mail": after checking the
// password and that no other account of the commune uses newEmail, it
// emails a verification link to the new address and a notice to the old
// one. The login changes only when the link is confirmed.
func (s *Service) RequestEmailChange(ctx context.Context, t *tenant.Tenant, accountID int64, currentPassword, newEmail string) error {
	newEmail = NormalizeEmail(newEmail)
	if !ValidEmail(newEmail) {
		return ErrInvalidEmail
	}
	a, hash, err := s.loadWithHash(ctx, t.ID, accountID)
	if err != nil {
		return err
	}
	if newEmail == a.Email {
		return ErrEmailUnchanged
	}
	lim := s.limits()
	ok, err := s.Allow(ctx, t.ID, "email_change", fmt.Sprint(accountID), lim.EmailChangePerHour, time.Hour)
	if err != nil {
		return err
	}
	if !ok {
		return ErrTooManyRequests
	}
	if err := s.checkCurrentPassword(ctx, t, a, hash, currentPassword, "email_change"); err != nil {
		return err
	}
	now := s.now()
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var taken bool
		if err := tx.GetContext(ctx, &taken, `SELECT EXISTS (SELECT 1 FROM accounts WHERE tenant_id = $1 AND email = $2)`,
			t.ID, newEmail); err != nil {
			return fmt.Errorf("account: email change: %w", err)
		}
		if taken {
			return ErrEmailTaken
		}
		raw, exp, err := issueToken(ctx, tx, t.ID, a.ID, PurposeEmailChange, newEmail, now, lim.EmailChangeTTL)
		if err != nil {
			return err
		}
		link, err := s.link(t, "/adresse/"+raw)
		if err != nil {
			return err
		}
		if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
			TenantID: t.ID, To: newEmail, Template: "email_change_verify", NotAfter: exp,
			Data: map[string]any{"Link": link, "DisplayName": a.DisplayName, "NewEmail": newEmail},
		}); err != nil {
			return fmt.Errorf("account: email change: %w", err)
		}
		if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
			TenantID: t.ID, To: a.Email, Template: "email_change_notice",
			Data: map[string]any{"DisplayName": a.DisplayName, "NewEmail": newEmail},
		}); err != nil {
			return fmt.Errorf("account: email change: %w", err)
		}
		return audit.Record(asResident(ctx, a.ID), tx, t.ID, "email_change.requested", accountObject(a.ID),
			map[string]any{"new_email": newEmail})
	})
}

// ConfirmEmailChange consumes an email-change link: the new address becomes
// the login. ErrEmailTaken if another account took it meanwhile (the token
// then stays usable).
func (s *Service) ConfirmEmailChange(ctx context.Context, t *tenant.Tenant, rawToken string) error {
	now := s.now()
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		tok, err := consumeToken(ctx, tx, t.ID, rawToken, PurposeEmailChange, now)
		if err != nil {
			return err
		}
		a, _, err := getAccountForUpdate(ctx, tx, t.ID, tok.AccountID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET email = $3, updated_at = $4
			WHERE tenant_id = $1 AND id = $2`, t.ID, a.ID, tok.NewEmail, now); err != nil {
			if db.IsUniqueViolation(err) {
				return ErrEmailTaken
			}
			return fmt.Errorf("account: confirm email change: %w", err)
		}
		if err := invalidateTokens(ctx, tx, t.ID, a.ID, now, PurposeEmailChange); err != nil {
			return err
		}
		return audit.Record(asResident(ctx, a.ID), tx, t.ID, "email.changed", accountObject(a.ID),
			map[string]any{"old_email": a.Email, "new_email": tok.NewEmail})
	})
	return err
}
