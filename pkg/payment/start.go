package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/audit"
	"portail/pkg/db"
	"portail/pkg/payfip"
	"portail/pkg/tenant"
)

// Start creates a payment attempt for invoiceIDs of the account and returns
// the URL to send the browser to (same window). tenant and accountID come
// from the host and the session; an invoice of another account or tenant is
// ErrNotFound. A payment that may not start is a *RefusedError whose Reason
// is for the resident; a PayFiP failure in WS mode, or a classic commune
// without PayFiP's callback networks, is an *UnavailableError.
//
// The attempt is committed, pending, before PayFiP is called or the URL
// returned, so every result that may come back finds it.
func (s *Service) Start(ctx context.Context, t *tenant.Tenant, accountID int64, invoiceIDs []int64) (*Attempt, string, error) {
	if t == nil {
		return nil, "", errors.New("payment: start: no tenant")
	}
	if s.Links == nil || s.Outbox == nil {
		return nil, "", errors.New("payment: start: Links and Outbox are required")
	}
	mode, err := payfip.ParseMode(t.PayFiPMode)
	if err != nil {
		return nil, "", fmt.Errorf("payment: tenant %s: %w", t.Slug, err)
	}
	classicURL, _, client := s.endpoints(t)
	if mode == payfip.ModeWS && client == nil {
		return nil, "", errors.New("payment: start: no PayFiP client configured")
	}
	if mode == payfip.ModeClassic && len(s.CallbackNetworks(t)) == 0 {
		// PayFiP's result could never be applied: the resident would pay
		// and the invoice stay unpaid. `serve` refuses this configuration;
		// this covers a commune switched to classic while running.
		s.log().Error("payment: classic commune without PayFiP callback networks", "tenant", t.Slug)
		return nil, "", &UnavailableError{Message: MessageUnavailable, Err: ErrNoCallbackNetworks}
	}
	ids, err := selection(t, invoiceIDs)
	if err != nil {
		return nil, "", err
	}

	// As PostgreSQL stores it (microseconds): the exer sent is its year.
	now := s.now().Truncate(time.Microsecond)
	a := &Attempt{
		TenantID: t.ID, AccountID: accountID, RefDet: payfip.NewRefDet(), Mode: mode,
		Status: StatusPending, CreatedAt: now,
	}
	var req payfip.Request
	var redirect string
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var acc struct {
			Email  string `db:"email"`
			Status string `db:"status"`
		}
		err := tx.GetContext(ctx, &acc, `SELECT email, status FROM accounts WHERE tenant_id = $1 AND id = $2`, t.ID, accountID)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && acc.Status == "disabled") {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("payment: start: account: %w", err)
		}

		// The lock, in id order: two tabs (or a tab and staff) serialise
		// here. The rows are then read by a statement of their own, whose
		// snapshot, taken once the lock is held, sees the first tab's
		// committed attempt (one statement's snapshot would predate it).
		var locked []int64
		err = tx.SelectContext(ctx, &locked, `
			SELECT id FROM invoices
			WHERE tenant_id = $1 AND account_id = $2 AND id = ANY ($3::bigint[])
			ORDER BY id
			FOR UPDATE`, t.ID, accountID, pq.Array(ids))
		if err != nil {
			return fmt.Errorf("payment: start: lock invoices: %w", err)
		}
		if len(locked) != len(ids) {
			return ErrNotFound
		}
		invs, err := checkSelection(ctx, tx, t, accountID, ids, now)
		if err != nil {
			return err
		}

		numbers := make([]string, len(invs))
		for i, inv := range invs {
			numbers[i] = inv.Number
			a.AmountCents += inv.AmountCents
		}
		if !payfip.ValidMel(acc.Email) {
			return &RefusedError{Reason: ReasonBadEmail}
		}
		a.Email = acc.Email
		req = payfip.Request{
			NumCli:  t.PayFiPNumcli,
			Exer:    attemptExer(a), // a.CreatedAt is now
			RefDet:  a.RefDet,
			Montant: a.AmountCents,
			Mel:     a.Email,
			Objet:   objet(numbers),
			Saisie:  t.PayFiPSaisie,
		}
		if mode == payfip.ModeClassic {
			req.URLCl = s.Links(t, "/paiement/retour-classique")
		} else {
			req.URLNotif = s.Links(t, "/paiement/notification")
			req.URLRedirect = s.Links(t, "/paiement/retour")
		}
		// A request PayFiP would refuse is a configuration problem: find it
		// before anything is stored.
		if err := req.Validate(mode, maxCents(t)); err != nil {
			return fmt.Errorf("payment: tenant %s: PayFiP request: %w", t.Slug, err)
		}
		if mode == payfip.ModeClassic {
			if redirect, err = payfip.ClassicURL(classicURL, req); err != nil {
				return fmt.Errorf("payment: tenant %s: %w", t.Slug, err)
			}
		}

		err = tx.GetContext(ctx, &a.ID, `
			INSERT INTO payments (tenant_id, account_id, refdet, mode, amount_cents, email, status, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)
			RETURNING id`, t.ID, accountID, a.RefDet, mode, a.AmountCents, a.Email, now)
		if err != nil {
			return fmt.Errorf("payment: start: insert attempt: %w", err)
		}
		for _, inv := range invs {
			_, err := tx.ExecContext(ctx, `
				INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents, status)
				VALUES ($1, $2, $3, $4, 'pending')`, t.ID, a.ID, inv.ID, inv.AmountCents)
			if db.IsUniqueViolation(err) {
				// Cannot happen under the lock; the index guarantees it anyway.
				return &RefusedError{Reason: ReasonPending}
			}
			if err != nil {
				return fmt.Errorf("payment: start: insert attempt invoice: %w", err)
			}
		}
		return audit.Record(audit.As(ctx, audit.KindResident, accountID), tx, t.ID, "payment.started", paymentObject(a.ID), map[string]any{
			"payment_id": a.ID, "refdet": a.RefDet, "mode": mode, "amount_cents": a.AmountCents, "invoices": numbers,
		})
	})
	if err != nil {
		return nil, "", err
	}
	s.Metrics.PaymentStarted(string(mode))
	if mode == payfip.ModeClassic {
		return a, redirect, nil
	}
	return s.createWS(ctx, t, a, req)
}

// createWS asks PayFiP for an idOp. On failure the attempt becomes 'error'
// without idOp: PayFiP has nothing the payer could pay (even when a timed-out
// call did create an idOp, nobody will ever open it), so the invoices are
// free and no retry delay applies.
func (s *Service) createWS(ctx context.Context, t *tenant.Tenant, a *Attempt, req payfip.Request) (*Attempt, string, error) {
	_, wsPaymentURL, client := s.endpoints(t)
	sctx, cancel := s.soapContext(ctx)
	idOp, err := client.CreerPaiementSecurise(sctx, req)
	cancel()
	s.Metrics.PayFiPCall("creerPaiementSecurise", payfipOutcome(err))
	if err == nil {
		// The browser has not seen the idOp yet, so no result can race this.
		err = s.storeIdOp(ctx, t.ID, a.ID, idOp)
		if err == nil {
			a.IdOp = idOp
			return a, payfip.WSPaymentURL(wsPaymentURL, idOp), nil
		}
	}
	msg := MessageUnavailable
	if !payfip.IsTechnical(err) {
		var f *payfip.Fault
		if errors.As(err, &f) {
			msg = MessageRejected
		}
	}
	// The resident may have gone (ctx canceled): record the failure anyway.
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer mcancel()
	_, _, terr := s.transition(mctx, t, a, change{status: StatusError, source: sourceStart, errMsg: err.Error()})
	if terr != nil {
		return nil, "", errors.Join(&UnavailableError{Message: msg, Err: err}, terr)
	}
	return nil, "", &UnavailableError{Message: msg, Err: err}
}

func (s *Service) storeIdOp(ctx context.Context, tenantID, paymentID int64, idOp string) error {
	res, err := s.DB.ExecContext(ctx, `
		UPDATE payments SET id_op = $3
		WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND id_op IS NULL`, tenantID, paymentID, idOp)
	if err != nil {
		return fmt.Errorf("payment: store idOp: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("payment: store idOp: attempt %d is no longer pending", paymentID)
	}
	return nil
}

// minCents is the smallest payable total: the tenant's, never below PayFiP's.
func minCents(t *tenant.Tenant) int64 { return max(t.PayFiPMinCents, payfip.MinMontant) }

// maxCents is the largest payable total: the tenant's, never above PayFiP's.
func maxCents(t *tenant.Tenant) int64 {
	if t.PayFiPMaxCents <= 0 || t.PayFiPMaxCents > payfip.MaxMontant {
		return payfip.MaxMontant
	}
	return t.PayFiPMaxCents
}

// retryAt is when a new attempt is allowed after a failure resolved at last,
// rounded up to the minute shown to the resident, and whether now is before.
func retryAt(last *time.Time, delay time.Duration, now time.Time) (time.Time, bool) {
	if last == nil || delay <= 0 {
		return time.Time{}, false
	}
	at := ceilMinute(last.Add(delay))
	return at, now.Before(at)
}

func sortedUnique(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
