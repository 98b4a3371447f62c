package payment

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"portail/pkg/payfip"
)

// Get returns one of the account's attempts with its invoices; ErrNotFound
// for another account's or tenant's.
func (s *Service) Get(ctx context.Context, tenantID, accountID, paymentID int64) (*AttemptWithInvoices, error) {
	a, err := getAttempt(ctx, s.DB, `p.tenant_id = $1 AND p.account_id = $2 AND p.id = $3`, tenantID, accountID, paymentID)
	if err != nil {
		return nil, err
	}
	out, err := s.withInvoices(ctx, tenantID, []Attempt{*a})
	if err != nil {
		return nil, err
	}
	return &out[0], nil
}

// GetByRefDet is Get by the refdet PayFiP echoes (the classic return page):
// the account's attempt only, ErrNotFound for anyone else's.
func (s *Service) GetByRefDet(ctx context.Context, tenantID, accountID int64, refdet string) (*AttemptWithInvoices, error) {
	if !payfip.ValidRefDet(refdet) {
		return nil, ErrNotFound
	}
	a, err := getAttempt(ctx, s.DB, `p.tenant_id = $1 AND p.account_id = $2 AND p.refdet = $3`, tenantID, accountID, refdet)
	if err != nil {
		return nil, err
	}
	out, err := s.withInvoices(ctx, tenantID, []Attempt{*a})
	if err != nil {
		return nil, err
	}
	return &out[0], nil
}

// ListForAccount returns one page (1-based) of the account's attempts,
// most recent first, with their invoices ("Mes paiements"), and how many
// attempts the account has.
func (s *Service) ListForAccount(ctx context.Context, tenantID, accountID int64, page, perPage int) ([]AttemptWithInvoices, int, error) {
	perPage = max(perPage, 1)
	var total int
	err := s.DB.GetContext(ctx, &total, `SELECT count(*) FROM payments WHERE tenant_id = $1 AND account_id = $2`, tenantID, accountID)
	if err != nil {
		return nil, 0, fmt.Errorf("payment: list: %w", err)
	}
	offset := int64(max(page, 1)-1) * int64(perPage)
	if total == 0 || offset >= int64(total) {
		return []AttemptWithInvoices{}, total, nil
	}
	// The page's ids from the index payments_account alone, then only
	// those rows: a deep page costs about what the first does.
	var as []Attempt
	err = s.DB.SelectContext(ctx, &as, `
		SELECT `+attemptColumns+` FROM payments p
		WHERE p.tenant_id = $1 AND p.id IN (
			SELECT id FROM payments
			WHERE tenant_id = $1 AND account_id = $2
			ORDER BY created_at DESC, id DESC
			LIMIT $3 OFFSET $4)
		ORDER BY p.created_at DESC, p.id DESC`, tenantID, accountID, perPage, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("payment: list: %w", err)
	}
	out, err := s.withInvoices(ctx, tenantID, as)
	return out, total, err
}

// ForInvoice returns the paid attempt that settled invoiceID (the first
// one, should PayFiP have reported two), for its receipt; ErrNotFound when
// the account has none.
func (s *Service) ForInvoice(ctx context.Context, tenantID, accountID, invoiceID int64) (*Attempt, error) {
	return getAttempt(ctx, s.DB, `p.tenant_id = $1 AND p.account_id = $2 AND p.status = 'paid'
		AND EXISTS (SELECT 1 FROM payment_invoices pi
		            WHERE pi.tenant_id = p.tenant_id AND pi.payment_id = p.id AND pi.invoice_id = $3)
		ORDER BY p.resolved_at, p.id LIMIT 1`, tenantID, accountID, invoiceID)
}

func (s *Service) withInvoices(ctx context.Context, tenantID int64, as []Attempt) ([]AttemptWithInvoices, error) {
	out := make([]AttemptWithInvoices, len(as))
	if len(as) == 0 {
		return out, nil
	}
	ids := make([]int64, len(as))
	index := make(map[int64]int, len(as))
	for i, a := range as {
		out[i].Attempt = a
		ids[i] = a.ID
		index[a.ID] = i
	}
	var rows []struct {
		PaymentID int64 `db:"payment_id"`
		AttemptInvoice
	}
	err := s.DB.SelectContext(ctx, &rows, `
		SELECT pi.payment_id, pi.invoice_id, i.number, i.object, pi.amount_cents
		FROM payment_invoices pi
		JOIN invoices i ON i.tenant_id = pi.tenant_id AND i.id = pi.invoice_id
		WHERE pi.tenant_id = $1 AND pi.payment_id = ANY ($2::bigint[])
		ORDER BY pi.payment_id, i.number`, tenantID, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("payment: attempt invoices: %w", err)
	}
	for _, r := range rows {
		i := index[r.PaymentID]
		out[i].Invoices = append(out[i].Invoices, r.AttemptInvoice)
	}
	return out, nil
}
