package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AlertsByToken finds the account of an unsubscribe link (ErrNotFound if none).
func (s *Service) AlertsByToken(ctx context.Context, tenantID int64, token string) (*Account, error) {
	if len(token) != 32 {
		return nil, ErrNotFound
	}
	var a Account
	err := s.DB.GetContext(ctx, &a, `SELECT `+accountColumns+` FROM accounts WHERE tenant_id = $1 AND unsubscribe_token = $2`, tenantID, token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: alerts: %w", err)
	}
	return &a, nil
}

// SetAlerts turns new-invoice alerts on or off for an account.
func (s *Service) SetAlerts(ctx context.Context, tenantID, accountID int64, on bool) error {
	if _, err := s.DB.ExecContext(ctx, `UPDATE accounts SET invoice_alerts = $3, updated_at = now()
		WHERE tenant_id = $1 AND id = $2`, tenantID, accountID, on); err != nil {
		return fmt.Errorf("account: alerts: %w", err)
	}
	return nil
}

// SetDueReminders turns reminders before the due date on or off for an
// account.
func (s *Service) SetDueReminders(ctx context.Context, tenantID, accountID int64, on bool) error {
	if _, err := s.DB.ExecContext(ctx, `UPDATE accounts SET due_reminders = $3, updated_at = now()
		WHERE tenant_id = $1 AND id = $2`, tenantID, accountID, on); err != nil {
		return fmt.Errorf("account: reminders: %w", err)
	}
	return nil
}

// SetAnnouncements turns the commune's information emails ("informations
// diverses") on or off for an account.
func (s *Service) SetAnnouncements(ctx context.Context, tenantID, accountID int64, on bool) error {
	if _, err := s.DB.ExecContext(ctx, `UPDATE accounts SET announcements = $3, updated_at = now()
		WHERE tenant_id = $1 AND id = $2`, tenantID, accountID, on); err != nil {
		return fmt.Errorf("account: announcements: %w", err)
	}
	return nil
}
