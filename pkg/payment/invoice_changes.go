package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/db"
	"portail/pkg/invoice"
	"portail/pkg/tenant"
)

// The staff's changes to one invoice ("Factures"): its status, direct
// debit, and the suspension of its online payment. They live here because
// they obey the payment rule that an invoice in a payment attempt in
// progress keeps the state the resident is paying (the import refuses a
// new amount for the same reason): its status and direct debit cannot
// change until the attempt ends. Each change needs a reason, is written
// with its audit entry (before → after, reason) in one transaction, and
// takes the invoice's row lock first, as Start does, so that a change and
// a payment starting at the same moment serialise.
//
// Status changes allowed (anything else is refused with the reason why):
//
//	unpaid    → paid (by other means), treasury, cancelled
//	treasury  → paid (collected by the treasury), cancelled, unpaid (sent by mistake)
//	paid      → unpaid, only when it was not paid online (a mistaken
//	            "paid by other means"); money collected through PayFiP is
//	            never undone here
//	cancelled → unpaid (cancelled by mistake)

// MaxReasonLength bounds a change's reason, in characters.
const MaxReasonLength = 500

// ChangeRefusedError is a staff change that may not be made; Message is
// French, fit to show next to Field ("status", "reason", or "" for the
// whole form).
type ChangeRefusedError struct {
	Field   string
	Message string
}

func (e *ChangeRefusedError) Error() string { return "payment: invoice change refused: " + e.Message }

// ReasonPendingChange refuses a change to an invoice being paid.
const ReasonPendingChange = "Un paiement en ligne est en cours pour cette facture : son état ne peut pas être modifié tant que ce paiement n'est pas terminé. Réessayez plus tard."

// StatusChangeRefusal is why an invoice of status from, paid how (for a
// paid one), may not become to; "" when it may.
func StatusChangeRefusal(from invoice.Status, paidHow string, to invoice.Status) string {
	if from == to {
		return "La facture est déjà « " + to.Label() + " »."
	}
	switch to {
	case invoice.StatusUnpaid:
		if from == invoice.StatusPaid && paidHow == invoice.PaidOnline {
			return "Cette facture a été réglée en ligne : ce paiement ne peut pas être annulé ici."
		}
		return ""
	case invoice.StatusPaid, invoice.StatusCancelled, invoice.StatusTreasury:
		switch from {
		case invoice.StatusPaid:
			return "Une facture réglée ne peut pas devenir « " + to.Label() + " » : si elle a été marquée réglée par erreur, remettez-la d'abord à « non réglée »."
		case invoice.StatusCancelled:
			return "Une facture annulée ne peut pas devenir « " + to.Label() + " » : remettez-la d'abord à « non réglée »."
		}
		return ""
	}
	return "Choisissez un nouvel état."
}

// cleanReason checks a change's reason: required, one bounded text.
func cleanReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return "", &ChangeRefusedError{Field: "reason", Message: "Indiquez le motif de la modification."}
	case !utf8.ValidString(reason) || strings.ContainsRune(reason, 0):
		return "", &ChangeRefusedError{Field: "reason", Message: "Le motif contient des caractères non valides."}
	case utf8.RuneCountInString(reason) > MaxReasonLength:
		return "", &ChangeRefusedError{Field: "reason", Message: fmt.Sprintf("Le motif ne doit pas dépasser %d caractères.", MaxReasonLength)}
	}
	return reason, nil
}

// lockedState locks invoiceID of t (ErrNotFound for another commune's)
// and reads its state with a statement of its own, whose snapshot, taken
// once the lock is held, sees an attempt a concurrent Start committed.
func lockedState(ctx context.Context, tx *sqlx.Tx, tenantID, invoiceID int64) (InvoiceState, error) {
	var id int64
	err := tx.GetContext(ctx, &id, `SELECT id FROM invoices WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenantID, invoiceID)
	if isNoRows(err) {
		return InvoiceState{}, ErrNotFound
	}
	if err != nil {
		return InvoiceState{}, fmt.Errorf("payment: lock invoice: %w", err)
	}
	sts, err := selectStates(ctx, tx, tenantID, `i.id = $2`, ``, invoiceID)
	if err != nil {
		return InvoiceState{}, err
	}
	if len(sts) == 0 {
		return InvoiceState{}, ErrNotFound
	}
	return sts[0], nil
}

// changeInvoice runs one staff change: reason checked, invoice locked,
// apply's update and audit entry in one transaction.
func (s *Service) changeInvoice(ctx context.Context, t *tenant.Tenant, invoiceID int64, reason string,
	apply func(tx *sqlx.Tx, st InvoiceState) (action string, details map[string]any, err error)) error {
	reason, err := cleanReason(reason)
	if err != nil {
		return err
	}
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		st, err := lockedState(ctx, tx, t.ID, invoiceID)
		if err != nil {
			return err
		}
		action, details, err := apply(tx, st)
		if err != nil {
			return err
		}
		details["reason"] = reason
		details["number"] = st.Number
		return audit.Record(ctx, tx, t.ID, action, audit.Of(audit.ObjectInvoice, invoiceID), details)
	})
}

// SetInvoiceStatus changes an invoice's status (see the rules above) for
// reason. Becoming paid records it paid by other means now (by direct
// debit when the invoice is in direct debit); leaving paid clears that.
func (s *Service) SetInvoiceStatus(ctx context.Context, t *tenant.Tenant, invoiceID int64, to invoice.Status, reason string) error {
	if !to.Valid() {
		return &ChangeRefusedError{Field: "status", Message: "Choisissez un nouvel état."}
	}
	return s.changeInvoice(ctx, t, invoiceID, reason, func(tx *sqlx.Tx, st InvoiceState) (string, map[string]any, error) {
		if st.Pending {
			return "", nil, &ChangeRefusedError{Message: ReasonPendingChange}
		}
		if why := StatusChangeRefusal(st.Status, st.PaidHow, to); why != "" {
			return "", nil, &ChangeRefusedError{Field: "status", Message: why}
		}
		now := s.now()
		var err error
		if to == invoice.StatusPaid {
			how := invoice.PaidElsewhere
			if st.DirectDebit {
				how = invoice.PaidDirectDebit
			}
			_, err = tx.ExecContext(ctx, `UPDATE invoices SET status = 'paid', paid_at = $3, paid_how = $4, updated_at = $3
				WHERE tenant_id = $1 AND id = $2`, t.ID, st.ID, now, how)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE invoices SET status = $3, paid_at = NULL, paid_how = '', updated_at = $4
				WHERE tenant_id = $1 AND id = $2`, t.ID, st.ID, string(to), now)
		}
		if err != nil {
			return "", nil, fmt.Errorf("payment: set invoice status: %w", err)
		}
		return "invoice.status_changed", map[string]any{
			"status": map[string]string{"before": string(st.Status), "after": string(to)}}, nil
	})
}

// SetInvoiceDirectDebit puts an invoice in direct debit (on) or takes it
// out, for reason. Residents then read "Ma facture est en prélèvement
// automatique." instead of a payment button. Refused while a payment of
// the invoice is in progress (it would be collected twice).
func (s *Service) SetInvoiceDirectDebit(ctx context.Context, t *tenant.Tenant, invoiceID int64, on bool, reason string) error {
	return s.changeInvoice(ctx, t, invoiceID, reason, func(tx *sqlx.Tx, st InvoiceState) (string, map[string]any, error) {
		if st.DirectDebit == on {
			msg := "La facture n'est pas en prélèvement automatique."
			if on {
				msg = "La facture est déjà en prélèvement automatique."
			}
			return "", nil, &ChangeRefusedError{Message: msg}
		}
		if st.Pending {
			return "", nil, &ChangeRefusedError{Message: ReasonPendingChange}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invoices SET direct_debit = $3, updated_at = $4
			WHERE tenant_id = $1 AND id = $2`, t.ID, st.ID, on, s.now()); err != nil {
			return "", nil, fmt.Errorf("payment: set direct debit: %w", err)
		}
		return "invoice.direct_debit_changed", map[string]any{
			"direct_debit": map[string]bool{"before": st.DirectDebit, "after": on}}, nil
	})
}

// SetInvoicePaymentSuspended suspends (on) or resumes the online payment
// of one invoice, for reason; residents then read "Le paiement a été
// temporairement suspendu.". A payment already in progress is not
// interrupted (it was started before): the suspension stops new ones.
func (s *Service) SetInvoicePaymentSuspended(ctx context.Context, t *tenant.Tenant, invoiceID int64, on bool, reason string) error {
	return s.changeInvoice(ctx, t, invoiceID, reason, func(tx *sqlx.Tx, st InvoiceState) (string, map[string]any, error) {
		if st.PaymentSuspended == on {
			msg := "Le paiement en ligne de cette facture n'est pas suspendu."
			if on {
				msg = "Le paiement en ligne de cette facture est déjà suspendu."
			}
			return "", nil, &ChangeRefusedError{Message: msg}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invoices SET payment_suspended = $3, updated_at = $4
			WHERE tenant_id = $1 AND id = $2`, t.ID, st.ID, on, s.now()); err != nil {
			return "", nil, fmt.Errorf("payment: suspend invoice payment: %w", err)
		}
		return "invoice.payment_suspension_changed", map[string]any{
			"payment_suspended": map[string]bool{"before": st.PaymentSuspended, "after": on}}, nil
	})
}

// InvoiceState returns any invoice of the commune (cancelled included)
// with its attempts' state: the staff's detail page says whether a payment
// is in progress. ErrNotFound for another commune's.
func (s *Service) InvoiceState(ctx context.Context, tenantID, invoiceID int64) (InvoiceState, error) {
	sts, err := selectStates(ctx, s.DB, tenantID, `i.id = $2`, ``, invoiceID)
	if err != nil {
		return InvoiceState{}, err
	}
	if len(sts) == 0 {
		return InvoiceState{}, ErrNotFound
	}
	return sts[0], nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
