package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river/rivertype"

	"portail/pkg/audit"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// ClosedTemplate is the email telling a resident their account is closed.
const ClosedTemplate = "account_closed"

// ClosedName is the name a closed account keeps in place of its
// resident's: staff see a payer reference and this label.
const ClosedName = "Compte fermé"

// Why an account was closed, recorded in the audit trail.
const (
	ClosedByResident    = "resident"
	ClosedForInactivity = "inactivity"
)

// ErrAccountClosed: the account is closed already.
var ErrAccountClosed = errors.New("account: account closed")

// JobCanceller is what closing an account needs of River's client to
// cancel the emails still queued to the address.
type JobCanceller interface {
	JobCancelTx(ctx context.Context, tx *sql.Tx, jobID int64) (*rivertype.JobRow, error)
}

// cancelQueuedEmails cancels the emails not sent yet to email in the
// commune (an alert, a reminder): once the account is closed they would
// reach a person who asked to leave. Without a canceller (tests of the
// package alone) they are left.
func (s *Service) cancelQueuedEmails(ctx context.Context, tx *sqlx.Tx, tenantID int64, email string) error {
	c, ok := s.Jobs.(JobCanceller)
	if !ok {
		return nil
	}
	var ids []int64
	if err := tx.SelectContext(ctx, &ids, `SELECT id FROM river_job
		WHERE kind = 'send_email' AND state IN ('available', 'scheduled', 'retryable', 'pending')
		  AND args->'email'->>'to' = $1 AND args->'email'->>'tenant_id' = $2::text`, email, tenantID); err != nil {
		return fmt.Errorf("account: close: queued emails: %w", err)
	}
	for _, id := range ids {
		if _, err := c.JobCancelTx(ctx, tx.Tx, id); err != nil {
			return fmt.Errorf("account: close: cancel email %d: %w", id, err)
		}
	}
	return nil
}

// markLogin records a sign of life: inactivity counts from it, and a
// pending inactivity warning is void.
func markLogin(ctx context.Context, x sqlx.ExecerContext, tenantID, accountID int64, now time.Time) error {
	if _, err := x.ExecContext(ctx, `UPDATE accounts SET last_login_at = $3, inactivity_warned_at = NULL
		WHERE tenant_id = $1 AND id = $2 AND status = 'active'`, tenantID, accountID, now); err != nil {
		return fmt.Errorf("account: last login: %w", err)
	}
	return nil
}

// Close closes a logged-in resident's own account ("Fermer mon compte")
// once their password is checked (throttled like a login): see CloseTx.
func (s *Service) Close(ctx context.Context, t *tenant.Tenant, accountID int64, password string) error {
	a, hash, err := s.loadWithHash(ctx, t.ID, accountID)
	if err != nil {
		return err
	}
	if a.Status != StatusActive {
		return ErrAccountInactive
	}
	if err := s.checkCurrentPassword(ctx, t, a, hash, password, "account.close"); err != nil {
		return err
	}
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		return s.CloseTx(asResident(ctx, accountID), tx, t, accountID, ClosedByResident)
	})
}

// CloseTx closes the account in tx: the person's data is erased and the
// account keeps only what the commune needs for its accounts.
//
// What stays: the row with its reference (the commune's own identifier of
// the payer, from its billing software), its invoices and its payments
// (amounts, dates, PayFiP's references and results): they are the
// commune's accounting records, which it must keep, and they name the payer
// by that reference only.
//
// What goes: the name (ClosedName instead), the email (a placeholder of
// the reserved .invalid domain, which the unique key needs), the password
// hash, the email choices (alerts, reminders, announcements) and the
// paperless request (back to the defaults), the unsubscribe token, every one-time token, remember-me
// token and session, the login counters of the address, the text and
// subjects of the messages both ways (the threads stay, for the staff's
// counts, until their retention), the address sent to PayFiP with each payment, and
// the addresses recorded in the account's audit entries. One audit entry
// records the closure, without personal data. A closing email goes to the
// address before it is erased, through the outbox of tx.
//
// If the commune imports the same reference again, the account becomes a
// new pending account with the imported name and address (pkg/imports).
func (s *Service) CloseTx(ctx context.Context, tx *sqlx.Tx, t *tenant.Tenant, accountID int64, reason string) error {
	a, _, err := getAccountForUpdate(ctx, tx, t.ID, accountID)
	if err != nil {
		return err
	}
	if a.Status == StatusClosed {
		return ErrAccountClosed
	}
	now := s.now()
	if err := s.cancelQueuedEmails(ctx, tx, t.ID, a.Email); err != nil {
		return err
	}
	if ValidEmail(a.Email) {
		link, err := s.link(t, "/")
		if err != nil {
			return err
		}
		if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
			TenantID: t.ID, To: a.Email, Template: ClosedTemplate,
			Data: map[string]any{"Reason": reason, "Reference": a.ExternalRef, "Link": link},
		}); err != nil {
			return fmt.Errorf("account: closing email: %w", err)
		}
	}
	// Every statement takes the account ($1, $2); the first also now ($3).
	steps := []struct{ what, query string }{
		{"account", `UPDATE accounts SET status = 'closed', closed_at = $3, updated_at = $3,
			display_name = '` + ClosedName + `', email = 'ferme-' || id || '@compte.invalid', password_hash = '',
			paperless = false, paperless_at = NULL, invoice_alerts = true, due_reminders = true, announcements = true,
			password_changed_at = NULL, last_login_at = NULL, inactivity_warned_at = NULL,
			unsubscribe_token = replace(gen_random_uuid()::text, '-', '')
			WHERE tenant_id = $1 AND id = $2`},
		{"tokens", `DELETE FROM account_tokens WHERE tenant_id = $1 AND account_id = $2`},
		{"sessions", `DELETE FROM sessions WHERE tenant_id = $1 AND account_id = $2`},
		{"remember-me", `DELETE FROM remember_tokens WHERE tenant_id = $1 AND account_id = $2`},
		{"messages", `UPDATE messages SET subject = '', body = '[Message effacé à la fermeture du compte]'
			WHERE tenant_id = $1 AND account_id = $2`},
		{"threads", `UPDATE message_threads SET subject = '' WHERE tenant_id = $1 AND account_id = $2`},
		{"payments", `UPDATE payments SET email = '' WHERE tenant_id = $1 AND account_id = $2 AND email <> ''`},
		{"audit", `UPDATE audit_log SET details = details - 'email' - 'old_email' - 'new_email'
			WHERE tenant_id = $1 AND object_type = 'account' AND object_id = $2::text
			  AND details ?| array['email', 'old_email', 'new_email']`},
	}
	for i, st := range steps {
		args := []any{t.ID, a.ID}
		if i == 0 {
			args = append(args, now)
		}
		if _, err := tx.ExecContext(ctx, st.query, args...); err != nil {
			return fmt.Errorf("account: close: %s: %w", st.what, err)
		}
	}
	// Counters keyed by the address (login throttling, rate limits).
	if _, err := tx.ExecContext(ctx, `DELETE FROM login_throttle WHERE tenant_id = $1 AND key = $2`, t.ID, a.Email); err != nil {
		return fmt.Errorf("account: close: throttling: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM rate_limits WHERE tenant_id = $1 AND key = $2`, t.ID, a.Email); err != nil {
		return fmt.Errorf("account: close: rate limits: %w", err)
	}
	return audit.Record(ctx, tx, t.ID, "account.closed", accountObject(a.ID), map[string]any{"reason": reason})
}
