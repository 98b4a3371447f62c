package account

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/message"
	"portail/pkg/tenant"
)

// SetPaperless records the resident's choice "Ne pas recevoir les factures
// au format papier" (on) or its withdrawal (off) with its date, and emails
// the service about it. Setting the current value again does nothing.
func (s *Service) SetPaperless(ctx context.Context, t *tenant.Tenant, accountID int64, on bool) error {
	if on && !t.PaperlessEnabled {
		return ErrPaperlessDisabled
	}
	now := s.now()
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		a, _, err := getAccountForUpdate(ctx, tx, t.ID, accountID)
		if err != nil {
			return err
		}
		if a.Paperless == on {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET paperless = $3, paperless_at = $4, updated_at = $4
			WHERE tenant_id = $1 AND id = $2`, t.ID, a.ID, on, now); err != nil {
			return fmt.Errorf("account: paperless: %w", err)
		}
		// Without a service address the choice is still recorded and
		// visible to staff.
		if t.ContactEmail != "" {
			if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
				TenantID: t.ID, To: t.ContactEmail, ReplyTo: a.Email, Template: "paperless",
				Data: map[string]any{
					"DisplayName": a.DisplayName, "Reference": a.ExternalRef, "Email": a.Email,
					"Paperless": on, "At": now,
				},
			}); err != nil {
				return fmt.Errorf("account: paperless email: %w", err)
			}
		}
		action := "paperless.off"
		if on {
			action = "paperless.on"
		}
		return audit.Record(asResident(ctx, a.ID), tx, t.ID, action, accountObject(a.ID), nil)
	})
}

// Message directions.
const (
	FromResident = "resident"
	FromStaff    = "staff"
)

// Message is one message of the "Contact" exchange.
type Message struct {
	TenantID  int64      `db:"tenant_id"`
	ID        int64      `db:"id"`
	AccountID int64      `db:"account_id"`
	Direction string     `db:"direction"`
	Subject   string     `db:"subject"`
	Body      string     `db:"body"`
	CreatedAt time.Time  `db:"created_at"`
	ReadAt    *time.Time `db:"read_at"`
}

// Contact message bounds, in characters.
const (
	MaxSubjectLength = 200
	MaxBodyLength    = 5000
)

// cleanMessage validates and normalizes a contact message: one-line
// subject (it becomes an email subject), LF line ends, trimmed.
func cleanMessage(subject, body string) (string, string, error) {
	if !utf8.ValidString(subject) || strings.ContainsRune(subject, 0) {
		return "", "", &InputError{"subject", "L'objet contient des caractères non valides."}
	}
	if !utf8.ValidString(body) || strings.ContainsRune(body, 0) {
		return "", "", &InputError{"body", "Le message contient des caractères non valides."}
	}
	subject = strings.Join(strings.Fields(subject), " ")
	body = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n"))
	if utf8.RuneCountInString(subject) > MaxSubjectLength {
		return "", "", &InputError{"subject", fmt.Sprintf("L'objet ne doit pas dépasser %d caractères.", MaxSubjectLength)}
	}
	if body == "" {
		return "", "", &InputError{"body", "Veuillez saisir votre message."}
	}
	if utf8.RuneCountInString(body) > MaxBodyLength {
		return "", "", &InputError{"body", fmt.Sprintf("Le message ne doit pas dépasser %d caractères.", MaxBodyLength)}
	}
	return subject, body, nil
}

// SendContactMessage stores a resident's message to the service
// ("Contacter le service") and emails it to the service's address with the
// resident's address as Reply-To. It returns the message id.
func (s *Service) SendContactMessage(ctx context.Context, t *tenant.Tenant, accountID int64, subject, body string) (int64, error) {
	subject, body, err := cleanMessage(subject, body)
	if err != nil {
		return 0, err
	}
	ok, err := s.Allow(ctx, t.ID, "contact", fmt.Sprint(accountID), s.limits().ContactPerHour, time.Hour)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrTooManyRequests
	}
	now := s.now()
	var id int64
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		a, err := getAccount(ctx, tx, t.ID, accountID)
		if err != nil {
			return err
		}
		if a.Status != StatusActive {
			return ErrAccountInactive
		}
		// Each message of the form opens a thread the staff answer.
		if id, err = message.StartThread(ctx, tx, t.ID, a.ID, subject, body, now); err != nil {
			return fmt.Errorf("account: store message: %w", err)
		}
		if t.ContactEmail == "" {
			return nil // stored: staff read it in their inbox
		}
		if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
			TenantID: t.ID, To: t.ContactEmail, ReplyTo: a.Email, Template: "contact_message",
			Data: map[string]any{
				"DisplayName": a.DisplayName, "Reference": a.ExternalRef, "Email": a.Email,
				"Subject": subject, "Body": body, "MessageID": id, "At": now,
			},
		}); err != nil {
			return fmt.Errorf("account: contact email: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// ListMessages returns the account's exchange with the service, oldest
// first.
func (s *Service) ListMessages(ctx context.Context, tenantID, accountID int64) ([]Message, error) {
	var ms []Message
	if err := s.DB.SelectContext(ctx, &ms, `SELECT tenant_id, id, account_id, direction, subject, body, created_at, read_at
		FROM messages WHERE tenant_id = $1 AND account_id = $2 ORDER BY created_at, id`, tenantID, accountID); err != nil {
		return nil, fmt.Errorf("account: list messages: %w", err)
	}
	return ms, nil
}

// Purge deletes expired tokens, remember-me tokens and throttling counters
// of every tenant (run it periodically, e.g. as a River periodic job).
func (s *Service) Purge(ctx context.Context) error {
	now := s.now()
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM account_tokens WHERE expires_at < $1`, now.Add(-7*24*time.Hour)); err != nil {
		return fmt.Errorf("account: purge: %w", err)
	}
	if err := s.remember().Purge(ctx); err != nil {
		return err
	}
	return auth.PurgeThrottling(ctx, s.DB, now)
}
