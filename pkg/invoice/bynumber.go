package invoice

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// WithPayer is an invoice with its payer's reference, as billing software
// knows it.
type WithPayer struct {
	Invoice
	PayerRef string `db:"payer_ref" json:"payer_reference"`
}

// GetByNumber finds a commune's invoice by its number (staff and API use;
// residents go through Get, which checks the account).
func (s *Store) GetByNumber(ctx context.Context, tenantID int64, number string) (WithPayer, error) {
	var inv WithPayer
	err := s.DB.GetContext(ctx, &inv, `
		SELECT i.tenant_id, i.id, i.account_id, i.number, i.object, i.issued_on, i.due_on, i.amount_cents,
			i.status, i.paid_at, i.paid_how, i.direct_debit, i.payment_suspended, i.declared_paid_at,
			i.pdf_key, i.pdf_sha256, i.pdf_size, i.import_batch_id, i.created_at, i.updated_at,
			a.external_ref AS payer_ref
		FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id
		WHERE i.tenant_id = $1 AND i.number = $2`, tenantID, number)
	if errors.Is(err, sql.ErrNoRows) {
		return WithPayer{}, ErrNotFound
	}
	if err != nil {
		return WithPayer{}, fmt.Errorf("invoice: get by number: %w", err)
	}
	return inv, nil
}
