package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/mail"
	"portail/pkg/metrics"
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
	ErrAccountInactive    = errors.New("account: account not active")

	// The shared authentication errors, under the names residents' code
	// has always matched.
	ErrSessionNotFound  = auth.ErrSessionNotFound
	ErrRememberInvalid  = auth.ErrRememberInvalid
	ErrRememberReplayed = auth.ErrRememberReplayed
)

// ThrottledError refuses a login attempt for RetryAfter.
type ThrottledError = auth.ThrottledError

// PolicyError is a refused password; Message is French, fit to show.
type PolicyError = auth.PolicyError

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
	// StatusClosed: closed by its resident or for inactivity; only the
	// commune's reference of the payer is left (see CloseTx).
	StatusClosed = "closed"
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
	Announcements     bool       `db:"announcements"` // the commune's information emails
	PasswordChangedAt *time.Time `db:"password_changed_at"`
	LastLoginAt       *time.Time `db:"last_login_at"`
	ClosedAt          *time.Time `db:"closed_at"`
	CreatedAt         time.Time  `db:"created_at"`
	UpdatedAt         time.Time  `db:"updated_at"`
}

const accountColumns = `tenant_id, id, external_ref, display_name, email, status, paperless,
	paperless_at, invoice_alerts, due_reminders, announcements, password_changed_at, last_login_at, closed_at,
	created_at, updated_at`

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
	Hasher *auth.Hasher
	Outbox *mail.Outbox
	// Jobs enqueues the address requests (AddressRequestArgs) that
	// AddressRequestWorker works.
	Jobs JobInserter
	// Links builds an absolute URL on the commune's primary host (never
	// from the request's Host header).
	Links  func(t *tenant.Tenant, path string) string
	Now    func() time.Time // nil: time.Now
	Limits Limits
	// Metrics counts refused and throttled logins (nil: not counted).
	Metrics *metrics.Metrics
}

// now is truncated to PostgreSQL's precision (see auth.Clock).
func (s *Service) now() time.Time { return auth.Clock(s.Now) }

func (s *Service) limits() Limits { return s.Limits.withDefaults() }

// residentThrottle is where residents count their login failures.
var residentThrottle = auth.ThrottleKinds{Principal: "account", IP: "ip", Who: metrics.WhoResident}

func (s *Service) throttle() *auth.Throttle {
	return &auth.Throttle{DB: s.DB, Kinds: residentThrottle, Now: s.Now, Metrics: s.Metrics}
}

// Allow is a fixed-window rate limiter shared by all instances (see
// auth.Allow).
func (s *Service) Allow(ctx context.Context, tenantID int64, bucket, key string, limit int, window time.Duration) (bool, error) {
	return auth.Allow(ctx, s.DB, s.now(), tenantID, bucket, key, limit, window)
}

// LoginDelay is how long attempts for this email from this IP must wait
// (0: allowed now).
func (s *Service) LoginDelay(ctx context.Context, tenantID int64, email, ip string) (time.Duration, error) {
	return s.throttle().Delay(ctx, tenantID, NormalizeEmail(email), ip)
}

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

// asResident is ctx with the account as the actor (keeping the client IP):
// the resident's own operations are recorded as theirs whoever set ctx.
func asResident(ctx context.Context, accountID int64) context.Context {
	return audit.As(ctx, audit.KindResident, accountID)
}

// asAnonymous is ctx with an anonymous actor at ip (the IP of ctx when ip
// is empty): requests by address and failed logins.
func asAnonymous(ctx context.Context, ip string) context.Context {
	if ip == "" {
		ip = audit.ActorFrom(ctx).IP
	}
	return audit.WithActor(ctx, audit.Actor{Kind: audit.KindAnonymous, IP: ip})
}

func accountObject(id int64) audit.Object {
	if id == 0 {
		return audit.Object{}
	}
	return audit.Of(audit.ObjectAccount, id)
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
