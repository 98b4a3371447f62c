package account

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// Errors of the package. Handlers map them to the manual's messages.
var (
	ErrNotFound           = errors.New("account: not found")
	ErrInvalidCredentials = errors.New("account: invalid email or password")
	ErrWrongPassword      = errors.New("account: wrong current password")
	ErrTokenInvalid       = errors.New("account: token unknown, used or expired")
	ErrEmailTaken         = errors.New("account: email already used by another account")
	ErrEmailUnchanged     = errors.New("account: new email equals the current one")
	ErrInvalidEmail       = errors.New("account: invalid email address")
	ErrTooManyRequests    = errors.New("account: too many requests")
	ErrPaperlessDisabled  = errors.New("account: paperless is disabled for this commune")
	ErrSessionNotFound    = errors.New("account: session not found or expired")
	ErrRememberInvalid    = errors.New("account: remember-me cookie invalid or expired")
	ErrRememberReplayed   = errors.New("account: remember-me validator replayed; all remember-me tokens revoked")
	ErrAccountInactive    = errors.New("account: account not active")
)

// ThrottledError refuses a login attempt for RetryAfter.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("account: too many login failures, retry after %s", e.RetryAfter.Round(time.Second))
}

// InputError is a refused input (contact form, import file); Message is
// French, fit to show next to Field.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return "account: invalid " + e.Field + ": " + e.Message }

// Account statuses.
const (
	StatusPending  = "pending"
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Account is a resident (payer) of one commune.
type Account struct {
	TenantID          int64      `db:"tenant_id"`
	ID                int64      `db:"id"`
	ExternalRef       string     `db:"external_ref"`
	DisplayName       string     `db:"display_name"`
	Email             string     `db:"email"`
	Status            string     `db:"status"`
	Paperless         bool       `db:"paperless"`
	PaperlessAt       *time.Time `db:"paperless_at"`
	InvoiceAlerts     bool       `db:"invoice_alerts"`
	DueReminders      bool       `db:"due_reminders"` // reminders before the due date
	PasswordChangedAt *time.Time `db:"password_changed_at"`
	CreatedAt         time.Time  `db:"created_at"`
	UpdatedAt         time.Time  `db:"updated_at"`
}

const accountColumns = `tenant_id, id, external_ref, display_name, email, status, paperless,
	paperless_at, invoice_alerts, due_reminders, password_changed_at, created_at, updated_at`

// prefixedAccountColumns are accountColumns of the table aliased "a".
var prefixedAccountColumns = func() string {
	cols := strings.Split(strings.Join(strings.Fields(accountColumns), " "), ", ")
	return "a." + strings.Join(cols, ", a.")
}()

// Limits tunes lifetimes and rate limits; zero fields take the defaults.
type Limits struct {
	ActivationTTL  time.Duration // default and maximum 72h
	ResetTTL       time.Duration // default and maximum 1h
	EmailChangeTTL time.Duration // default 24h
	RememberTTL    time.Duration // default and maximum 30 days

	ActivationPerHour  int // per email, default 5
	ResetPerHour       int // per email, default 5
	ResetPerHourPerIP  int // default 30
	EmailChangePerHour int // per account, default 5
	ContactPerHour     int // per account, default 20
}

func (l Limits) withDefaults() Limits {
	capDur := func(v, def, maxV time.Duration) time.Duration {
		if v <= 0 {
			return def
		}
		return min(v, maxV)
	}
	orInt := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	l.ActivationTTL = capDur(l.ActivationTTL, 72*time.Hour, 72*time.Hour)
	l.ResetTTL = capDur(l.ResetTTL, time.Hour, time.Hour)
	l.EmailChangeTTL = capDur(l.EmailChangeTTL, 24*time.Hour, 72*time.Hour)
	l.RememberTTL = capDur(l.RememberTTL, 30*24*time.Hour, 30*24*time.Hour)
	l.ActivationPerHour = orInt(l.ActivationPerHour, 5)
	l.ResetPerHour = orInt(l.ResetPerHour, 5)
	l.ResetPerHourPerIP = orInt(l.ResetPerHourPerIP, 30)
	l.EmailChangePerHour = orInt(l.EmailChangePerHour, 5)
	l.ContactPerHour = orInt(l.ContactPerHour, 20)
	return l
}

// Service runs the residents' account operations. Each operation takes the
// tenant resolved from the request host, never a tenant id from input.
type Service struct {
	DB     *sqlx.DB
	Hasher *Hasher
	Outbox *mail.Outbox
	// Jobs enqueues the address requests (AddressRequestArgs) that
	// AddressRequestWorker works.
	Jobs JobInserter
	// Links builds an absolute URL on the commune's primary host (never
	// from the request's Host header).
	Links  func(t *tenant.Tenant, path string) string
	Now    func() time.Time // nil: time.Now
	Limits Limits
}

// now is truncated to PostgreSQL's precision (microseconds, rounded on
// store): otherwise a row written with now can compare as a fraction of a
// microsecond in the future when read back.
func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().Truncate(time.Microsecond)
	}
	return time.Now().Truncate(time.Microsecond)
}

func (s *Service) limits() Limits { return s.Limits.withDefaults() }

func (s *Service) link(t *tenant.Tenant, path string) (string, error) {
	if s.Links == nil {
		return "", errors.New("account: Service.Links is not set")
	}
	return s.Links(t, path), nil
}

// Get returns the account of this tenant, or ErrNotFound.
func (s *Service) Get(ctx context.Context, tenantID, accountID int64) (*Account, error) {
	return getAccount(ctx, s.DB, tenantID, accountID)
}

// FindByEmail returns the account with this email (case-insensitive) in this
// tenant, or ErrNotFound.
func (s *Service) FindByEmail(ctx context.Context, tenantID int64, email string) (*Account, error) {
	var a Account
	err := sqlx.GetContext(ctx, s.DB, &a, `SELECT `+accountColumns+` FROM accounts
		WHERE tenant_id = $1 AND email = $2`, tenantID, NormalizeEmail(email))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: find by email: %w", err)
	}
	return &a, nil
}

func getAccount(ctx context.Context, q sqlx.QueryerContext, tenantID, accountID int64) (*Account, error) {
	var a Account
	err := sqlx.GetContext(ctx, q, &a, `SELECT `+accountColumns+` FROM accounts
		WHERE tenant_id = $1 AND id = $2`, tenantID, accountID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: get: %w", err)
	}
	return &a, nil
}

// getAccountForUpdate locks the account row and also returns its hash.
func getAccountForUpdate(ctx context.Context, tx *sqlx.Tx, tenantID, accountID int64) (*Account, string, error) {
	var row struct {
		Account
		PasswordHash string `db:"password_hash"`
	}
	err := tx.GetContext(ctx, &row, `SELECT `+accountColumns+`, password_hash FROM accounts
		WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenantID, accountID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("account: get for update: %w", err)
	}
	return &row.Account, row.PasswordHash, nil
}

// Audit actor kinds.
const (
	ActorAnonymous = "anonymous"
	ActorResident  = "resident"
	ActorStaff     = "staff"
	ActorOperator  = "operator"
	ActorSystem    = "system"
)

// AuditEntry is one row of audit_log. Never put passwords or tokens in
// Details.
type AuditEntry struct {
	TenantID  int64
	ActorKind string // Actor* constants
	ActorID   int64  // 0: none
	Action    string // e.g. "login.ok"
	IP        string // client IP, may be empty
	Details   map[string]any
}

// Audit appends e to audit_log, in the caller's transaction (or on a DB).
func Audit(ctx context.Context, x sqlx.ExecerContext, e AuditEntry) error {
	if e.ActorKind == "" {
		e.ActorKind = ActorSystem
	}
	details := []byte("{}")
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("account: audit details: %w", err)
		}
		details = b
	}
	var actor sql.NullInt64
	if e.ActorID != 0 {
		actor = sql.NullInt64{Int64: e.ActorID, Valid: true}
	}
	var ip sql.NullString
	if a, err := netip.ParseAddr(e.IP); err == nil {
		ip = sql.NullString{String: a.Unmap().String(), Valid: true}
	}
	_, err := x.ExecContext(ctx, `INSERT INTO audit_log (tenant_id, actor_kind, actor_id, action, ip, details)
		VALUES ($1, $2, $3, $4, $5::inet, $6::jsonb)`, e.TenantID, e.ActorKind, actor, e.Action, ip, string(details))
	if err != nil {
		return fmt.Errorf("account: audit: %w", err)
	}
	return nil
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
