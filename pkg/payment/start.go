package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/db"
	"portail/pkg/invoice"
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
	ids := slices.Clone(invoiceIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil, "", &RefusedError{Reason: ReasonNoSelection}
	}
	if !t.Active() {
		return nil, "", &RefusedError{Reason: invoice.ReasonUnavailable}
	}
	if t.PaymentsSuspended {
		return nil, "", &RefusedError{Reason: invoice.ReasonSuspended}
	}
	if len(ids) > 1 && (!t.BatchAllowed || t.BatchMax <= 1) {
		return nil, "", &RefusedError{Reason: ReasonBatchNotAllowed}
	}
	if batchMax := max(t.BatchMax, 1); len(ids) > batchMax {
		return nil, "", &RefusedError{Reason: fmt.Sprintf("Vous pouvez régler au plus %d factures en un seul paiement.", batchMax)}
	}

	now := s.now()
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

		// The lock: two tabs (or a tab and staff) serialise here, and the
		// second one then sees the first one's committed attempt.
		var invs []invoice.Invoice
		err = tx.SelectContext(ctx, &invs, `
			SELECT tenant_id, id, account_id, number, object, amount_cents, status, direct_debit, payment_suspended
			FROM invoices
			WHERE tenant_id = $1 AND account_id = $2 AND id = ANY ($3::bigint[])
			ORDER BY id
			FOR UPDATE`, t.ID, accountID, pq.Array(ids))
		if err != nil {
			return fmt.Errorf("payment: start: lock invoices: %w", err)
		}
		if len(invs) != len(ids) {
			return ErrNotFound
		}
		if r := refusal(t, invs); r != nil {
			return r
		}
		pr, err := pendingRefusal(ctx, tx, t.ID, invs)
		if err != nil {
			return err
		}
		if pr != nil {
			return pr
		}
		last, err := lastFailure(ctx, tx, t.ID, ids)
		if err != nil {
			return err
		}
		if at, wait := retryAt(last, t.RetryDelay(), now); wait {
			return &RefusedError{Reason: RetryReason(at, now), RetryAt: at}
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
			Exer:    strconv.Itoa(now.In(paris()).Year()),
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
		return audit(ctx, tx, t.ID, "resident", accountID, "payment.started", map[string]any{
			"payment_id": a.ID, "refdet": a.RefDet, "mode": mode, "amount_cents": a.AmountCents, "invoices": numbers,
		})
	})
	if err != nil {
		return nil, "", err
	}
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

// refusal applies the invoice package's payability rules to each invoice
// (paid, treasury, cancelled, direct debit, suspended) and the amount limits
// to the total: in a batch, an invoice under 1 € may ride along with others.
func refusal(t *tenant.Tenant, invs []invoice.Invoice) *RefusedError {
	batch := len(invs) > 1
	var total int64
	for _, inv := range invs {
		// Probe with an amount inside the limits: only the other reasons remain.
		probe := inv
		probe.AmountCents = minCents(t)
		ok, reason := invoice.Payability(probe, t)
		if ok && inv.AmountCents <= 0 {
			ok, reason = invoice.Payability(inv, t)
			if ok { // the tenant allows 0 €; PayFiP does not, nor do we
				ok, reason = false, "Le montant de cette facture est nul : il n'y a rien à régler."
			}
		}
		if !ok {
			if batch {
				reason = "Facture " + inv.Number + " : " + reason
			}
			return &RefusedError{Reason: reason}
		}
		total += inv.AmountCents
	}
	lo, hi := minCents(t), maxCents(t)
	if total >= lo && total <= hi {
		return nil
	}
	if !batch {
		if ok, reason := invoice.Payability(invs[0], t); !ok {
			return &RefusedError{Reason: reason}
		}
		if total < lo {
			return &RefusedError{Reason: fmt.Sprintf("Le montant de cette facture est inférieur à %s : elle ne peut pas être réglée en ligne.", invoice.FormatAmount(lo))}
		}
		return &RefusedError{Reason: fmt.Sprintf("Le montant de cette facture dépasse %s : elle ne peut pas être réglée en ligne.", invoice.FormatAmount(hi))}
	}
	if total < lo {
		return &RefusedError{Reason: fmt.Sprintf("Le montant total à régler (%s) est inférieur à %s : le paiement en ligne n'est pas possible.",
			invoice.FormatAmount(total), invoice.FormatAmount(lo))}
	}
	return &RefusedError{Reason: fmt.Sprintf("Le montant total à régler (%s) dépasse %s : veuillez sélectionner moins de factures.",
		invoice.FormatAmount(total), invoice.FormatAmount(hi))}
}

// pendingRefusal refuses when one of invs is already in a pending attempt.
func pendingRefusal(ctx context.Context, tx *sqlx.Tx, tenantID int64, invs []invoice.Invoice) (*RefusedError, error) {
	ids := make([]int64, len(invs))
	for i, inv := range invs {
		ids[i] = inv.ID
	}
	var numbers []string
	err := tx.SelectContext(ctx, &numbers, `
		SELECT i.number FROM payment_invoices pi
		JOIN invoices i ON i.tenant_id = pi.tenant_id AND i.id = pi.invoice_id
		WHERE pi.tenant_id = $1 AND pi.invoice_id = ANY ($2::bigint[]) AND pi.status = 'pending'
		ORDER BY i.number`, tenantID, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("payment: start: pending attempts: %w", err)
	}
	if len(numbers) == 0 {
		return nil, nil
	}
	if len(invs) > 1 {
		return &RefusedError{Reason: "Facture " + numbers[0] + " : " + ReasonPending}, nil
	}
	return &RefusedError{Reason: ReasonPending}, nil
}

// lastFailure is when the last attempt on one of invoiceIDs that imposes a
// retry delay was resolved (nil: none).
func lastFailure(ctx context.Context, q sqlx.QueryerContext, tenantID int64, invoiceIDs []int64) (*time.Time, error) {
	var last *time.Time
	err := sqlx.GetContext(ctx, q, &last, `
		SELECT max(p.resolved_at) FROM payments p
		JOIN payment_invoices pi ON pi.tenant_id = p.tenant_id AND pi.payment_id = p.id
		WHERE p.tenant_id = $1 AND pi.invoice_id = ANY ($2::bigint[]) AND `+retryCondition,
		tenantID, pq.Array(invoiceIDs))
	if err != nil {
		return nil, fmt.Errorf("payment: last failed attempt: %w", err)
	}
	return last, nil
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
