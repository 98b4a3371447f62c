package invoice

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// WithPayer is an invoice with its payer's reference, as billing software
// knows it, and name.
type WithPayer struct {
	Invoice
	PayerRef  string `db:"payer_ref" json:"payer_reference"`
	PayerName string `db:"payer_name" json:"-"`
}

// GetByNumber finds a commune's invoice by its number (staff and API use;
// residents go through Get, which checks the account).
func (s *Store) GetByNumber(ctx context.Context, tenantID int64, number string) (WithPayer, error) {
	var inv WithPayer
	err := s.DB.GetContext(ctx, &inv, `
		SELECT `+searchColumns+searchFrom+`i.tenant_id = $1 AND i.number = $2`, tenantID, number)
	if errors.Is(err, sql.ErrNoRows) {
		return WithPayer{}, ErrNotFound
	}
	if err != nil {
		return WithPayer{}, fmt.Errorf("invoice: get by number: %w", err)
	}
	return inv, nil
}

// GetInCommune finds any invoice of the commune by id, cancelled ones
// included, with its payer: the staff's detail page (residents go through
// Get, which checks the account).
func (s *Store) GetInCommune(ctx context.Context, tenantID, invoiceID int64) (Row, error) {
	var inv Row
	err := s.DB.GetContext(ctx, &inv, `SELECT `+searchColumns+searchFrom+`i.tenant_id = $1 AND i.id = $2`, tenantID, invoiceID)
	if errors.Is(err, sql.ErrNoRows) {
		return Row{}, ErrNotFound
	}
	if err != nil {
		return Row{}, fmt.Errorf("invoice: get: %w", err)
	}
	return inv, nil
}
