// Package reminder sends the reminders before the due date. Once a day,
// each commune that enables them emails every resident whose unpaid
// invoices fall due within its reminders.days_before: one email per
// account listing those invoices, each with its amount, due date and a
// link to pay it. An invoice is reminded once, ever: the reminder is
// recorded in the transaction that enqueues its email, under a key that
// refuses a second one, so that two instances running at once, or a rerun
// after a missed day, never send it twice.
package reminder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/db"
	"portail/pkg/invoice"
	"portail/pkg/mail"
	"portail/pkg/paris"
	"portail/pkg/payment"
	"portail/pkg/tenant"
)

// Template is the reminder email, templates/email/due_reminder.tmpl.
const Template = "due_reminder"

// defaultPageSize is how many accounts one transaction handles.
const defaultPageSize = 200

// TenantLister lists the communes.
type TenantLister interface {
	List(ctx context.Context) ([]*tenant.Tenant, error)
}

// Service finds the invoices to remind and enqueues the emails.
type Service struct {
	DB      *sqlx.DB
	Tenants TenantLister
	Outbox  *mail.Outbox
	// Links builds an absolute link to path on the commune's primary host.
	Links func(t *tenant.Tenant, path string) string
	Now   func() time.Time
	Log   *slog.Logger
	// PageSize is how many accounts one transaction handles (default 200).
	PageSize int
}

// Result counts what a run enqueued.
type Result struct {
	Emails   int // one per account
	Invoices int // reminded invoices
}

func (r *Result) add(o Result) {
	r.Emails += o.Emails
	r.Invoices += o.Invoices
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run sends the reminders due now in every commune that enables them. A
// commune that fails does not stop the others; the errors are returned
// together.
func (s *Service) Run(ctx context.Context) (Result, error) {
	ts, err := s.Tenants.List(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("reminder: %w", err)
	}
	var total Result
	var errs []error
	for _, t := range ts {
		if !t.RemindersEnabled {
			continue
		}
		r, err := s.RunTenant(ctx, t)
		total.add(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("reminder: %s: %w", t.Slug, err))
		}
	}
	return total, errors.Join(errs...)
}

// Window is the due dates a run on the day of now reminds for t: from that
// day (Paris) to days_before days later, both included. Invoices that
// entered it on a day no run happened are still in it, until they fall due.
func Window(t *tenant.Tenant, now time.Time) (from, to time.Time) {
	p := now.In(paris.Location)
	from = time.Date(p.Year(), p.Month(), p.Day(), 0, 0, 0, 0, time.UTC)
	return from, from.AddDate(0, 0, max(t.RemindersDaysBefore, 1))
}

// RunTenant sends t's reminders due now, a page of accounts per
// transaction.
func (s *Service) RunTenant(ctx context.Context, t *tenant.Tenant) (Result, error) {
	var total Result
	if payment.CommuneRefusal(t) != "" {
		return total, nil // nothing can be paid: nothing to remind
	}
	now := s.now()
	from, to := Window(t, now)
	size := s.PageSize
	if size <= 0 {
		size = defaultPageSize
	}
	after := int64(0)
	for {
		var r Result
		var n int
		err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
			accounts, err := lockAccounts(ctx, tx, t.ID, from, to, after, size)
			if err != nil {
				return err
			}
			if n = len(accounts); n == 0 {
				return nil
			}
			after = accounts[n-1].ID
			r, err = s.remind(ctx, tx, t, accounts, from, to, now)
			return err
		})
		if err != nil {
			return total, err
		}
		total.add(r)
		if n < size {
			return total, nil
		}
	}
}

// recipient is an account that may get a reminder.
type recipient struct {
	ID          int64  `db:"id"`
	Email       string `db:"email"`
	DisplayName string `db:"display_name"`
}

// lockAccounts returns the next accounts (by id, after after) that want
// reminders and have unpaid invoices due between from and to not reminded
// yet, locked for this transaction. Accounts another instance holds are
// skipped: it is reminding them. NO KEY UPDATE leaves the account's
// foreign keys usable meanwhile (a payment may start).
func lockAccounts(ctx context.Context, tx *sqlx.Tx, tenantID int64, from, to time.Time, after int64, limit int) ([]recipient, error) {
	var out []recipient
	err := tx.SelectContext(ctx, &out, `
		SELECT a.id, a.email, a.display_name FROM accounts a
		WHERE a.tenant_id = $1 AND a.id > $4
		  AND a.status = 'active' AND a.due_reminders AND a.email <> ''
		  AND a.id IN (
			SELECT i.account_id FROM invoices i
			WHERE i.tenant_id = $1 AND i.status = 'unpaid' AND i.due_on BETWEEN $2::date AND $3::date
			  AND i.account_id > $4
			  AND NOT EXISTS (SELECT 1 FROM invoice_reminders r WHERE r.tenant_id = i.tenant_id AND r.invoice_id = i.id))
		ORDER BY a.id
		LIMIT $5
		FOR NO KEY UPDATE OF a SKIP LOCKED`,
		tenantID, from.Format(time.DateOnly), to.Format(time.DateOnly), after, limit)
	if err != nil {
		return nil, fmt.Errorf("reminder: accounts: %w", err)
	}
	return out, nil
}

// remind records and enqueues the reminders of accounts: their invoices
// due in the window that can be paid online now (payment's rule, Judge),
// less those the resident said were paid by other means. An invoice not
// payable today (a payment in progress, a retry delay) is left for the
// next run.
func (s *Service) remind(ctx context.Context, tx *sqlx.Tx, t *tenant.Tenant, accounts []recipient, from, to, now time.Time) (Result, error) {
	ids := make([]int64, len(accounts))
	for i, a := range accounts {
		ids[i] = a.ID
	}
	offers, err := payment.DueOffers(ctx, tx, t, ids, from, to, now)
	if err != nil {
		return Result{}, fmt.Errorf("reminder: %w", err)
	}
	var invoiceIDs, accountIDs []int64
	var dues []string
	for _, o := range offers {
		if o.Payable && o.DeclaredPaidAt == nil {
			invoiceIDs = append(invoiceIDs, o.ID)
			accountIDs = append(accountIDs, o.AccountID)
			dues = append(dues, o.DueOn.Format(time.DateOnly))
		}
	}
	if len(invoiceIDs) == 0 {
		return Result{}, nil
	}
	// The key keeps an invoice reminded once: what another transaction
	// recorded first is not returned, so not emailed again.
	var claimed []int64
	if err := tx.SelectContext(ctx, &claimed, `
		INSERT INTO invoice_reminders (tenant_id, invoice_id, account_id, due_on, reminded_at)
		SELECT $1, r.invoice_id, r.account_id, r.due_on, $5
		FROM unnest($2::bigint[], $3::bigint[], $4::date[]) AS r (invoice_id, account_id, due_on)
		ON CONFLICT (tenant_id, invoice_id) DO NOTHING
		RETURNING invoice_id`,
		t.ID, pq.Array(invoiceIDs), pq.Array(accountIDs), pq.Array(dues), now); err != nil {
		return Result{}, fmt.Errorf("reminder: record: %w", err)
	}
	isClaimed := make(map[int64]bool, len(claimed))
	for _, id := range claimed {
		isClaimed[id] = true
	}
	byAccount := map[int64][]payment.Offer{}
	for _, o := range offers {
		if isClaimed[o.ID] {
			byAccount[o.AccountID] = append(byAccount[o.AccountID], o)
		}
	}
	var r Result
	for _, a := range accounts {
		invs := byAccount[a.ID]
		if len(invs) == 0 {
			continue
		}
		if err := s.Outbox.EnqueueTx(ctx, tx, s.email(t, a, invs)); err != nil {
			return Result{}, fmt.Errorf("reminder: account %d: %w", a.ID, err)
		}
		r.Emails++
		r.Invoices += len(invs)
	}
	return r, nil
}

// maxListed bounds the invoices an email lists; it counts the others.
const maxListed = 20

// email is the reminder of invs (by due date) to account a: each invoice
// with a link to pay it, and a link to pay them all at once when the
// commune allows it.
func (s *Service) email(t *tenant.Tenant, a recipient, invs []payment.Offer) mail.Email {
	list := make([]map[string]any, 0, min(len(invs), maxListed))
	all := url.Values{}
	last := invs[0].DueOn
	for _, o := range invs {
		id := strconv.FormatInt(o.ID, 10)
		all.Add("facture", id)
		if o.DueOn.After(last) {
			last = o.DueOn
		}
		if len(list) == maxListed {
			continue
		}
		list = append(list, map[string]any{
			"Number":  o.Number,
			"Object":  o.Object,
			"Amount":  invoice.FormatAmount(o.AmountCents),
			"DueOn":   o.DueOn.Format("02/01/2006"),
			"PayLink": s.Links(t, "/paiement?facture="+id),
		})
	}
	payAll := ""
	if len(invs) > 1 && len(invs) <= payment.BatchLimit(t) {
		payAll = s.Links(t, "/paiement?"+all.Encode())
	}
	return mail.Email{
		TenantID: t.ID,
		To:       a.Email,
		Template: Template,
		Data: map[string]any{
			"DisplayName": a.DisplayName,
			"AccountID":   a.ID, // the unsubscribe link is added when sending
			"Count":       len(invs),
			"Invoices":    list,
			"More":        len(invs) - len(list),
			"PayAllLink":  payAll,
			"PortalLink":  s.Links(t, "/factures"),
		},
		// Pointless once the last due date has passed.
		NotAfter: time.Date(last.Year(), last.Month(), last.Day()+1, 0, 0, 0, 0, paris.Location),
	}
}
