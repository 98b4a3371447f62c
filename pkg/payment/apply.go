package payment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/audit"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/paris"
	"portail/pkg/payfip"
	"portail/pkg/tenant"
)

// ResolveWS asks PayFiP for the result of the WS attempt idOp of tenant t
// (recupererDetailPaiementSecurise: the only trusted result) and applies
// it. source is SourceNotification, SourceReturn or SourceReconciliation.
// While the payer is on PayFiP (P5) the attempt stays pending; an idOp
// PayFiP no longer knows (P1) expires the attempt once older than 15
// minutes. An idOp unknown to t is ErrNotFound, without asking PayFiP.
func (s *Service) ResolveWS(ctx context.Context, t *tenant.Tenant, idOp, source string) (*Attempt, bool, error) {
	if t == nil {
		return nil, false, errors.New("payment: resolve: no tenant")
	}
	if source != SourceNotification && source != SourceReturn && source != SourceReconciliation {
		return nil, false, fmt.Errorf("payment: resolve: invalid source %q", source)
	}
	s.Metrics.PayFiPResultReceived(source)
	if !payfip.ValidIdOp(idOp) {
		return nil, false, ErrNotFound
	}
	a, err := getAttempt(ctx, s.DB, `p.tenant_id = $1 AND p.id_op = $2`, t.ID, idOp)
	if err != nil {
		return nil, false, err
	}
	if a.Status != StatusPending {
		return a, false, nil // replay: nothing to ask
	}
	_, _, client := s.endpoints(t)
	if client == nil {
		return nil, false, errors.New("payment: resolve: no PayFiP client configured")
	}
	sctx, cancel := s.soapContext(ctx)
	res, err := client.RecupererDetailPaiementSecurise(sctx, idOp)
	cancel()
	s.Metrics.PayFiPCall("recupererDetailPaiementSecurise", payfipOutcome(err))
	switch {
	case err == nil:
		return s.apply(ctx, t, res, source, true)
	case payfip.IsPending(err):
		return a, false, nil
	case payfip.IsUnknown(err):
		if s.now().Sub(a.CreatedAt) <= idOpValidity {
			return a, false, nil
		}
		return s.transition(ctx, t, a, change{status: StatusExpired, source: source,
			errMsg: "PayFiP ne connaît pas (ou plus) cette opération (P1) : " + err.Error()})
	default:
		return a, false, fmt.Errorf("payment: resolve %s: %w", idOp, err)
	}
}

// apply checks res against the stored attempt and moves it out of
// 'pending'. trusted results come from recupererDetailPaiementSecurise and
// are looked up by idOp; classic ones (unsigned, received from PayFiP's
// networks: see ReceiveClassic) by refdet. Exactly one result moves an
// attempt out of 'pending'; a replay, or the loser of a race, gets the
// current state with changed false.
func (s *Service) apply(ctx context.Context, t *tenant.Tenant, res payfip.Result, source string, trusted bool) (*Attempt, bool, error) {
	if t == nil {
		return nil, false, errors.New("payment: apply: no tenant")
	}
	switch source {
	case SourceNotification, SourceReturn, SourceReconciliation, SourceCallback:
	default:
		return nil, false, fmt.Errorf("payment: apply: invalid source %q", source)
	}
	var a *Attempt
	var err error
	if trusted {
		if !payfip.ValidIdOp(res.IdOp) {
			return nil, false, s.reject(ctx, t, nil, res, source, ErrNotFound, "invalid idOp")
		}
		a, err = getAttempt(ctx, s.DB, `p.tenant_id = $1 AND p.id_op = $2`, t.ID, res.IdOp)
	} else {
		if !payfip.ValidRefDet(res.RefDet) {
			return nil, false, s.reject(ctx, t, nil, res, source, ErrNotFound, "invalid refdet")
		}
		a, err = getAttempt(ctx, s.DB, `p.tenant_id = $1 AND p.refdet = $2`, t.ID, res.RefDet)
	}
	if errors.Is(err, ErrNotFound) {
		return nil, false, s.reject(ctx, t, nil, res, source, ErrNotFound, "no such attempt for this tenant")
	}
	if err != nil {
		return nil, false, err
	}
	switch {
	case a.Mode == payfip.ModeWS && !trusted:
		return nil, false, s.reject(ctx, t, a, res, source, ErrUntrusted, "unsigned result for a WS attempt")
	case res.NumCli != t.PayFiPNumcli:
		return nil, false, s.reject(ctx, t, a, res, source, ErrMismatch, "numcli "+res.NumCli)
	case !trusted && res.Exer != attemptExer(a):
		// PayFiP echoes the exer the attempt was sent with (Start: the
		// year of its creation in Paris, which is not stored otherwise).
		return nil, false, s.reject(ctx, t, a, res, source, ErrMismatch, "exer "+res.Exer)
	case res.RefDet != a.RefDet:
		return nil, false, s.reject(ctx, t, a, res, source, ErrMismatch, "refdet "+res.RefDet)
	case res.Montant != a.AmountCents:
		return nil, false, s.reject(ctx, t, a, res, source, ErrMismatch, fmt.Sprintf("montant %d", res.Montant))
	case trusted && res.IdOp != a.IdOp:
		return nil, false, s.reject(ctx, t, a, res, source, ErrMismatch, "idOp "+res.IdOp)
	}
	if a.Status != StatusPending {
		if res.Outcome() == payfip.OutcomePaid && a.Status != StatusPaid {
			// A paid result after the attempt was given up (e.g. a classic
			// callback hours late): the decision stands, but the money is
			// put on record for staff.
			s.log().Error("payment: paid result for a resolved attempt", "tenant", t.Slug,
				"payment_id", a.ID, "status", a.Status, "refdet", a.RefDet, "numauto", res.NumAuto)
			if err := audit.Record(asSystem(ctx), s.DB, t.ID, "payment.late_paid_result", paymentObject(a.ID), map[string]any{
				"payment_id": a.ID, "status": a.Status, "source": source, "refdet": a.RefDet,
				"numauto": res.NumAuto, "dattrans": res.DatTrans, "heurtrans": res.HeurTrans,
				"amount_cents": res.Montant,
			}); err != nil {
				return a, false, err
			}
		}
		return a, false, nil // replay
	}
	c := change{source: source, res: res}
	switch res.Outcome() {
	case payfip.OutcomePaid:
		c.status = StatusPaid
		paidAt, err := res.PaidAt()
		if err != nil {
			// Paid all the same: never drop money over a missing timestamp.
			paidAt = s.now()
		}
		c.paidAt = &paidAt
	case payfip.OutcomeRefused:
		c.status = StatusRefused
	case payfip.OutcomeCancelled:
		c.status = StatusCancelled
	default:
		c.status = StatusError
		c.errMsg = fmt.Sprintf("résultat PayFiP inconnu : %q", res.ResultTrans)
	}
	return s.transition(ctx, t, a, c)
}

// attemptExer is the exer Start sent PayFiP for a: the year it was
// created, in Paris.
func attemptExer(a *Attempt) string { return strconv.Itoa(a.CreatedAt.In(paris.Location).Year()) }

// reject records a result that matched no pending attempt (a forgery, a
// misrouted call or a bug) and returns the error for the caller.
func (s *Service) reject(ctx context.Context, t *tenant.Tenant, a *Attempt, res payfip.Result, source string, cause error, why string) error {
	details := map[string]any{
		"source": source, "reason": why, "refdet": res.RefDet, "idop": res.IdOp,
		"numcli": res.NumCli, "montant": res.Montant, "resultrans": res.ResultTrans,
	}
	if a != nil {
		details["payment_id"] = a.ID
	}
	s.log().Warn("payment: result rejected", "tenant", t.Slug, "source", source, "reason", why,
		"refdet", res.RefDet, "idop", res.IdOp)
	obj := audit.Object{}
	if a != nil {
		obj = paymentObject(a.ID)
	}
	if err := audit.Record(asSystem(ctx), s.DB, t.ID, "payment.result_rejected", obj, details); err != nil {
		return errors.Join(fmt.Errorf("%w: %s", cause, why), err)
	}
	return fmt.Errorf("%w: %s", cause, why)
}

// change is one transition out of 'pending'.
type change struct {
	status Status
	source string
	res    payfip.Result
	paidAt *time.Time
	errMsg string
}

// transition is the one place where an attempt leaves 'pending': UPDATE …
// WHERE status = 'pending' in one transaction with its consequences (paid
// invoices, confirmation email, audit). When another caller got there first
// it changes nothing and returns the current state with changed false.
func (s *Service) transition(ctx context.Context, t *tenant.Tenant, a *Attempt, c change) (*Attempt, bool, error) {
	now := s.now()
	var out Attempt
	changed := false
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var invs []lockedInvoice
		if c.status == StatusPaid {
			// Invoices first, as Start does: one lock order, no deadlock.
			err := tx.SelectContext(ctx, &invs, `
				SELECT i.id, i.number, i.status, i.amount_cents AS invoice_cents, pi.amount_cents
				FROM payment_invoices pi
				JOIN invoices i ON i.tenant_id = pi.tenant_id AND i.id = pi.invoice_id
				WHERE pi.tenant_id = $1 AND pi.payment_id = $2
				ORDER BY i.id
				FOR UPDATE OF i`, t.ID, a.ID)
			if err != nil {
				return fmt.Errorf("payment: lock invoices: %w", err)
			}
		}
		rows, err := tx.QueryxContext(ctx, `
			UPDATE payments p SET status = $3, resolved_at = $4, resolved_by = $5, resultrans = $6,
				numauto = $7, dattrans = $8, heurtrans = $9, paid_at = $10, error_message = $11
			WHERE p.tenant_id = $1 AND p.id = $2 AND p.status = 'pending'
			RETURNING `+attemptColumns,
			t.ID, a.ID, c.status, now, c.source, c.res.ResultTrans, c.res.NumAuto, c.res.DatTrans,
			c.res.HeurTrans, c.paidAt, c.errMsg)
		if err != nil {
			return fmt.Errorf("payment: transition: %w", err)
		}
		if rows.Next() {
			changed = true
			err = rows.StructScan(&out)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return fmt.Errorf("payment: transition: %w", err)
		}
		if !changed {
			return nil // someone else resolved it: nothing to do
		}
		details := map[string]any{
			"payment_id": a.ID, "refdet": a.RefDet, "idop": a.IdOp, "source": c.source,
			"status": c.status, "resultrans": c.res.ResultTrans, "amount_cents": a.AmountCents,
		}
		if c.status == StatusPaid {
			unsettled, err := s.settle(ctx, tx, t, &out, invs)
			if err != nil {
				return err
			}
			details["refund_cents"] = out.RefundCents
			if len(unsettled) > 0 {
				details["unsettled"] = unsettled
			}
		}
		return audit.Record(asSystem(ctx), tx, t.ID, "payment."+string(c.status), paymentObject(a.ID), details)
	})
	if err != nil {
		return nil, false, err
	}
	if !changed {
		cur, err := getAttempt(ctx, s.DB, `p.tenant_id = $1 AND p.id = $2`, t.ID, a.ID)
		return cur, false, err
	}
	s.Metrics.PaymentResolved(string(out.Mode), string(out.Status), out.AmountCents)
	return &out, true, nil
}

// lockedInvoice is an invoice of a paid attempt, locked for settling.
type lockedInvoice struct {
	ID           int64  `db:"id"`
	Number       string `db:"number"`
	Status       string `db:"status"`
	InvoiceCents int64  `db:"invoice_cents"` // the invoice's amount now
	AmountCents  int64  `db:"amount_cents"`  // the share of this attempt
}

// unsettledInvoice is an invoice a paid attempt did not settle, and why
// (for staff: audit details and the log).
type unsettledInvoice struct {
	Number       string `json:"number"`
	Reason       string `json:"reason"` // "status" or "amount"
	Status       string `json:"status"`
	InvoiceCents int64  `json:"invoice_cents"`
	PaidCents    int64  `json:"paid_cents"`
}

// settle marks the paid attempt's invoices paid and enqueues the
// confirmation email. An invoice is settled only when it is still unpaid
// and its amount still equals the share this attempt collected for it. One
// that is no longer unpaid (paid by another route, in treasury, cancelled),
// or whose amount changed while the payment was pending (the billing
// software sent a new amount meanwhile), keeps its state; its share is
// flagged for refund: the money is recorded, never dropped, and never
// marks an invoice paid at an amount that was not paid.
func (s *Service) settle(ctx context.Context, tx *sqlx.Tx, t *tenant.Tenant, a *Attempt, invs []lockedInvoice) ([]unsettledInvoice, error) {
	var payable []int64
	var refund int64
	var settled, notSettled []string
	var unsettled []unsettledInvoice
	for _, inv := range invs {
		switch {
		case inv.Status != "unpaid":
			unsettled = append(unsettled, unsettledInvoice{Number: inv.Number, Reason: "status",
				Status: inv.Status, InvoiceCents: inv.InvoiceCents, PaidCents: inv.AmountCents})
		case inv.InvoiceCents != inv.AmountCents:
			unsettled = append(unsettled, unsettledInvoice{Number: inv.Number, Reason: "amount",
				Status: inv.Status, InvoiceCents: inv.InvoiceCents, PaidCents: inv.AmountCents})
		default:
			payable = append(payable, inv.ID)
			settled = append(settled, inv.Number)
			continue
		}
		refund += inv.AmountCents
		notSettled = append(notSettled, inv.Number)
	}
	if len(payable) > 0 {
		_, err := tx.ExecContext(ctx, `
			UPDATE invoices SET status = 'paid', paid_at = $3, paid_how = 'online', updated_at = $4
			WHERE tenant_id = $1 AND id = ANY ($2::bigint[]) AND status = 'unpaid'`,
			t.ID, pq.Array(payable), a.PaidAt, s.now())
		if err != nil {
			return nil, fmt.Errorf("payment: mark invoices paid: %w", err)
		}
	}
	if refund > 0 { // shares are never 0: Start refuses a zero invoice
		_, err := tx.ExecContext(ctx, `UPDATE payments SET refund_needed = true, refund_cents = $3
			WHERE tenant_id = $1 AND id = $2`, t.ID, a.ID, refund)
		if err != nil {
			return nil, fmt.Errorf("payment: flag refund: %w", err)
		}
		a.RefundNeeded, a.RefundCents = true, refund
	}
	if len(unsettled) > 0 {
		s.log().Error("payment: paid for invoices no longer payable as paid (settled elsewhere, or amount changed), refund needed",
			"tenant", t.Slug, "payment_id", a.ID, "refdet", a.RefDet, "refund_cents", refund, "unsettled", unsettled)
	}
	if s.Outbox == nil {
		// Start refuses without an outbox; never lose the payment over it.
		s.log().Error("payment: no outbox, confirmation email not sent", "tenant", t.Slug, "payment_id", a.ID)
		return unsettled, nil
	}
	var name string
	if err := tx.GetContext(ctx, &name, `SELECT display_name FROM accounts WHERE tenant_id = $1 AND id = $2`,
		t.ID, a.AccountID); err != nil {
		return nil, fmt.Errorf("payment: payer name: %w", err)
	}
	link := ""
	if s.Links != nil {
		link = s.Links(t, "/paiements")
	}
	return unsettled, s.Outbox.EnqueueTx(ctx, tx, mail.Email{
		TenantID: t.ID,
		To:       a.Email,
		Template: "payment_confirmation",
		Data: map[string]any{
			"DisplayName":  name,
			"Amount":       a.AmountCents,
			"AmountText":   a.Amount(),
			"Numbers":      settled,
			"Unsettled":    notSettled,
			"Reference":    a.RefDet,
			"NumAuto":      a.NumAuto,
			"PaidAt":       FormatDateTime(*a.PaidAt),
			"Link":         link,
			"RefundNeeded": a.RefundNeeded,
		},
	})
}
