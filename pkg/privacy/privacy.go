// Package privacy applies the retention of personal data, once a day: it
// warns residents whose account nobody logged into for
// privacy.inactive_after − privacy.inactive_notice, closes the accounts
// still unused privacy.inactive_notice after the warning (as a resident
// closing theirs would: account.Service.CloseTx), and deletes the messages,
// audit entries, sessions and tokens older than their retention period.
//
// Every step reads the state, not the date of the last run: a run missed
// (no instance up) is caught up by the next one, and a rerun does nothing
// twice. Accounts are taken FOR UPDATE SKIP LOCKED and changed in the
// transaction that enqueues their email, so that several instances running
// the job at once warn and close each account once.
package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	_ "time/tzdata" // Europe/Paris even where the system has no zone files

	"github.com/jmoiron/sqlx"

	"portail/pkg/account"
	"portail/pkg/config"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/paris"
	"portail/pkg/tenant"
)

// WarningTemplate is the inactivity warning email.
const WarningTemplate = "inactivity_warning"

// defaultPageSize is how many accounts one transaction handles.
const defaultPageSize = 100

// deleteBatch bounds the rows one retention statement deletes, so that no
// transaction grows with the backlog of a first run.
const deleteBatch = 5000

// TenantLister lists the communes.
type TenantLister interface {
	List(ctx context.Context) ([]*tenant.Tenant, error)
}

// Service runs the daily privacy work.
type Service struct {
	DB       *sqlx.DB
	Tenants  TenantLister
	Accounts *account.Service // closes accounts (CloseTx)
	Sessions *account.Sessions
	Outbox   *mail.Outbox
	// Links builds an absolute link to path on the commune's primary host.
	Links    func(t *tenant.Tenant, path string) string
	Settings config.Privacy
	Now      func() time.Time
	Log      *slog.Logger
	// PageSize is how many accounts one transaction handles (default 100).
	PageSize int
}

// Result counts what a run did.
type Result struct {
	Warned, Closed int
	Threads        int64 // message threads deleted, with their messages
	AuditEntries   int64 // deleted
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().Truncate(time.Microsecond)
	}
	return time.Now().Truncate(time.Microsecond)
}

func (s *Service) pageSize() int {
	if s.PageSize > 0 {
		return s.PageSize
	}
	return defaultPageSize
}

// Run does the day's work in every commune, then the retention. A commune
// that fails does not stop the others; the errors are returned together.
func (s *Service) Run(ctx context.Context) (Result, error) {
	var r Result
	ts, err := s.Tenants.List(ctx)
	if err != nil {
		return r, fmt.Errorf("privacy: %w", err)
	}
	var errs []error
	for _, t := range ts {
		warned, closed, err := s.Inactive(ctx, t)
		r.Warned += warned
		r.Closed += closed
		if err != nil {
			errs = append(errs, fmt.Errorf("privacy: %s: %w", t.Slug, err))
		}
	}
	threads, audits, err := s.Retention(ctx)
	r.Threads, r.AuditEntries = threads, audits
	if err != nil {
		errs = append(errs, err)
	}
	return r, errors.Join(errs...)
}

// Inactive warns, then closes, t's inactive accounts.
func (s *Service) Inactive(ctx context.Context, t *tenant.Tenant) (warned, closed int, err error) {
	now := s.now()
	after, notice := s.Settings.InactiveAfter, s.Settings.InactiveNotice
	if after <= 0 || notice <= 0 || notice >= after {
		return 0, 0, errors.New("privacy: inactive_after and inactive_notice must be positive, the notice the shorter")
	}
	// First the closures, then the warnings: an account warned in this run
	// is never closed in it.
	for {
		n, err := s.closePage(ctx, t, now.Add(-notice))
		closed += n
		if err != nil {
			return warned, closed, err
		}
		if n < s.pageSize() {
			break
		}
	}
	for {
		n, err := s.warnPage(ctx, t, now, now.Add(-(after - notice)), now.Add(notice))
		warned += n
		if err != nil {
			return warned, closed, err
		}
		if n < s.pageSize() {
			break
		}
	}
	return warned, closed, nil
}

// lastSignOfLife is what inactivity counts from: the last
// login, else (an account activated before logins were recorded) its
// creation.
const lastSignOfLife = `coalesce(last_login_at, created_at)`

// warnPage warns the next accounts without a login since cutoff, not warned
// yet, that they will be closed on closeAt.
func (s *Service) warnPage(ctx context.Context, t *tenant.Tenant, now, cutoff, closeAt time.Time) (int, error) {
	n := 0
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var accounts []struct {
			ID          int64     `db:"id"`
			Email       string    `db:"email"`
			DisplayName string    `db:"display_name"`
			LastLogin   time.Time `db:"last_login"`
		}
		if err := tx.SelectContext(ctx, &accounts, `
			SELECT id, email, display_name, `+lastSignOfLife+` AS last_login FROM accounts
			WHERE tenant_id = $1 AND status = 'active' AND inactivity_warned_at IS NULL
			  AND `+lastSignOfLife+` < $2
			ORDER BY id LIMIT $3
			FOR UPDATE SKIP LOCKED`, t.ID, cutoff, s.pageSize()); err != nil {
			return fmt.Errorf("privacy: inactive accounts: %w", err)
		}
		n = len(accounts)
		link := s.Links(t, "/")
		for _, a := range accounts {
			if _, err := tx.ExecContext(ctx, `UPDATE accounts SET inactivity_warned_at = $3 WHERE tenant_id = $1 AND id = $2`,
				t.ID, a.ID, now); err != nil {
				return fmt.Errorf("privacy: warn: %w", err)
			}
			if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
				TenantID: t.ID, To: a.Email, Template: WarningTemplate,
				Data: map[string]any{
					"DisplayName": a.DisplayName,
					"LastLogin":   a.LastLogin.In(paris.Location).Format("02/01/2006"),
					"CloseOn":     closeAt.In(paris.Location).Format("02/01/2006"),
					"Link":        link,
				},
				NotAfter: closeAt, // pointless once the account is closed
			}); err != nil {
				return fmt.Errorf("privacy: warn: %w", err)
			}
		}
		return nil
	})
	return n, err
}

// closePage closes the next accounts warned before warnedBefore that did
// not log in since (a login clears the warning).
func (s *Service) closePage(ctx context.Context, t *tenant.Tenant, warnedBefore time.Time) (int, error) {
	n := 0
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var ids []int64
		if err := tx.SelectContext(ctx, &ids, `
			SELECT id FROM accounts
			WHERE tenant_id = $1 AND status = 'active' AND inactivity_warned_at <= $2
			ORDER BY id LIMIT $3
			FOR UPDATE SKIP LOCKED`, t.ID, warnedBefore, s.pageSize()); err != nil {
			return fmt.Errorf("privacy: accounts to close: %w", err)
		}
		n = len(ids)
		for _, id := range ids {
			if err := s.Accounts.CloseTx(ctx, tx, t, id, account.ClosedForInactivity); err != nil {
				return fmt.Errorf("privacy: close account %d: %w", id, err)
			}
		}
		return nil
	})
	return n, err
}

// Retention deletes, in every commune, the message threads whose last
// message is older than privacy.messages (with their messages), the audit entries older
// than privacy.audit (privacy.audit_payments for those about payments,
// the commune's accounting trail), and expired sessions and tokens. It
// returns how many threads and audit entries it deleted.
func (s *Service) Retention(ctx context.Context) (threads, audits int64, err error) {
	now := s.now()
	set := s.Settings
	if set.Messages <= 0 || set.Audit <= 0 || set.AuditPayments < set.Audit {
		return 0, 0, errors.New("privacy: retention periods must be positive, audit_payments at least audit")
	}
	// A thread goes with its messages (ON DELETE CASCADE).
	if threads, err = s.deleteAll(ctx, "messages", `
		DELETE FROM message_threads WHERE (tenant_id, id) IN (
			SELECT tenant_id, id FROM message_threads WHERE last_message_at < $1 LIMIT $2)`, now.Add(-set.Messages)); err != nil {
		return threads, 0, err
	}
	const aboutPayments = `(object_type = 'payment' OR starts_with(action, 'payment.'))`
	a1, err := s.deleteAll(ctx, "audit", `
		DELETE FROM audit_log WHERE (tenant_id, id) IN (
			SELECT tenant_id, id FROM audit_log WHERE at < $1 AND NOT `+aboutPayments+` LIMIT $2)`, now.Add(-set.Audit))
	audits += a1
	if err != nil {
		return threads, audits, err
	}
	a2, err := s.deleteAll(ctx, "audit of payments", `
		DELETE FROM audit_log WHERE (tenant_id, id) IN (
			SELECT tenant_id, id FROM audit_log WHERE at < $1 LIMIT $2)`, now.Add(-set.AuditPayments))
	audits += a2
	if err != nil {
		return threads, audits, err
	}
	// Expired sessions and tokens (the hourly purge deletes them too).
	if s.Sessions != nil {
		if _, err := s.Sessions.Purge(ctx); err != nil {
			return threads, audits, fmt.Errorf("privacy: %w", err)
		}
	}
	if s.Accounts != nil {
		if err := s.Accounts.Purge(ctx); err != nil {
			return threads, audits, fmt.Errorf("privacy: %w", err)
		}
	}
	return threads, audits, nil
}

// deleteAll runs a DELETE of at most deleteBatch groups ($2) older than
// cutoff ($1) until nothing is left, and counts the rows.
func (s *Service) deleteAll(ctx context.Context, what, query string, cutoff time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.DB.ExecContext(ctx, query, cutoff, deleteBatch)
		if err != nil {
			return total, fmt.Errorf("privacy: retention of %s: %w", what, err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n == 0 {
			return total, nil
		}
	}
}
