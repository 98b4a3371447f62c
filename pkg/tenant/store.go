package tenant

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ErrNotFound means no tenant has that host, id or slug.
var ErrNotFound = errors.New("tenant: not found")

// Store reads tenants from PostgreSQL and caches host lookups: they happen on
// every request. The cache is short-lived so that another instance's change
// (operator console, tenants apply) is seen within CacheTTL.
type Store struct {
	db       *sqlx.DB
	CacheTTL time.Duration

	mu     sync.Mutex
	byHost map[string]cached
}

type cached struct {
	t  *Tenant
	at time.Time
}

// NewStore returns a store with a 10-second host cache.
func NewStore(d *sqlx.DB) *Store {
	return &Store{db: d, CacheTTL: 10 * time.Second, byHost: map[string]cached{}}
}

const selectTenant = `SELECT id, slug, name, service_label, status, primary_host, logo, logo_type,
	color_primary, color_accent, template_overrides, contact_phone, contact_hours, contact_email,
	welcome_text, important_notice, payfip_numcli, payfip_mode, payfip_saisie, payfip_min_cents,
	payfip_max_cents, payfip_retry_minutes, batch_allowed, batch_max, activation_messages,
	password_min_length, paperless_enabled, invoice_alerts, payments_suspended, updated_at,
	payfip_classic_url, payfip_ws_payment_url, payfip_soap_url, payfip_callback_networks,
	reminders_enabled, reminders_days_before
	FROM tenants`

// ByHost resolves a normalised host name to its tenant (ErrNotFound if none).
func (s *Store) ByHost(ctx context.Context, host string) (*Tenant, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.byHost[host]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < s.CacheTTL {
		if c.t == nil {
			return nil, ErrNotFound
		}
		return c.t, nil
	}
	t, err := s.load(ctx, `WHERE id = (SELECT tenant_id FROM tenant_hosts WHERE host = $1)`, host)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	s.mu.Lock()
	if len(s.byHost) > 10000 { // unknown hosts must not grow the cache without bound
		s.byHost = map[string]cached{}
	}
	s.byHost[host] = cached{t, now}
	s.mu.Unlock()
	return t, err
}

// ByID loads a tenant (uncached).
func (s *Store) ByID(ctx context.Context, id int64) (*Tenant, error) {
	return s.load(ctx, `WHERE id = $1`, id)
}

// BySlug loads a tenant (uncached).
func (s *Store) BySlug(ctx context.Context, slug string) (*Tenant, error) {
	return s.load(ctx, `WHERE slug = $1`, slug)
}

// List returns every tenant, by slug.
func (s *Store) List(ctx context.Context) ([]*Tenant, error) {
	var ts []*Tenant
	if err := s.db.SelectContext(ctx, &ts, selectTenant+` ORDER BY slug`); err != nil {
		return nil, fmt.Errorf("tenant: list: %w", err)
	}
	for _, t := range ts {
		if err := s.loadAliases(ctx, t); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

func (s *Store) load(ctx context.Context, where string, arg any) (*Tenant, error) {
	t := &Tenant{}
	err := s.db.GetContext(ctx, t, selectTenant+" "+where, arg)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("tenant: load: %w", err)
	}
	return t, s.loadAliases(ctx, t)
}

func (s *Store) loadAliases(ctx context.Context, t *Tenant) error {
	t.Aliases = nil
	if err := s.db.SelectContext(ctx, &t.Aliases,
		`SELECT host FROM tenant_hosts WHERE tenant_id = $1 AND NOT is_primary ORDER BY host`, t.ID); err != nil {
		return fmt.Errorf("tenant: hosts: %w", err)
	}
	return nil
}

// Invalidate empties the host cache (after a change made by this instance).
func (s *Store) Invalidate() {
	s.mu.Lock()
	s.byHost = map[string]cached{}
	s.mu.Unlock()
}

// ApplyResult says what Apply did to one tenant.
type ApplyResult struct {
	Slug    string
	Created bool
	Changed bool
}

// Apply upserts the tenants described by files, in one transaction. It is
// idempotent: applying the same files again changes nothing.
func (s *Store) Apply(ctx context.Context, files []*File) ([]ApplyResult, error) {
	var results []ApplyResult
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("tenant: apply: %w", err)
	}
	defer tx.Rollback()
	for _, f := range files {
		r, err := applyOne(ctx, tx, f)
		if err != nil {
			return nil, fmt.Errorf("tenant: apply %s: %w", f.Slug, err)
		}
		results = append(results, r)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("tenant: apply: %w", err)
	}
	s.Invalidate()
	return results, nil
}

func applyOne(ctx context.Context, tx *sqlx.Tx, f *File) (ApplyResult, error) {
	overrides, _ := json.Marshal(f.Overrides())
	res := ApplyResult{Slug: f.Slug}
	var id int64
	var inserted bool
	// The WHERE … IS DISTINCT FROM clause makes a re-apply of unchanged
	// files a no-op (updated_at untouched).
	err := tx.QueryRowxContext(ctx, `
		INSERT INTO tenants (slug, name, service_label, status, primary_host, logo, logo_type,
			color_primary, color_accent, template_overrides, contact_phone, contact_hours, contact_email,
			welcome_text, important_notice, payfip_numcli, payfip_mode, payfip_saisie, payfip_min_cents,
			payfip_max_cents, payfip_retry_minutes, batch_allowed, batch_max, activation_messages,
			password_min_length, paperless_enabled, invoice_alerts, payments_suspended,
			payfip_classic_url, payfip_ws_payment_url, payfip_soap_url, payfip_callback_networks,
			reminders_enabled, reminders_days_before)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30,$31,$32,$33,$34)
		ON CONFLICT (slug) DO UPDATE SET
			name = EXCLUDED.name, service_label = EXCLUDED.service_label, status = EXCLUDED.status,
			primary_host = EXCLUDED.primary_host, logo = EXCLUDED.logo, logo_type = EXCLUDED.logo_type,
			color_primary = EXCLUDED.color_primary, color_accent = EXCLUDED.color_accent,
			template_overrides = EXCLUDED.template_overrides, contact_phone = EXCLUDED.contact_phone,
			contact_hours = EXCLUDED.contact_hours, contact_email = EXCLUDED.contact_email,
			welcome_text = EXCLUDED.welcome_text, important_notice = EXCLUDED.important_notice,
			payfip_numcli = EXCLUDED.payfip_numcli, payfip_mode = EXCLUDED.payfip_mode,
			payfip_saisie = EXCLUDED.payfip_saisie, payfip_min_cents = EXCLUDED.payfip_min_cents,
			payfip_max_cents = EXCLUDED.payfip_max_cents, payfip_retry_minutes = EXCLUDED.payfip_retry_minutes,
			batch_allowed = EXCLUDED.batch_allowed, batch_max = EXCLUDED.batch_max,
			activation_messages = EXCLUDED.activation_messages, password_min_length = EXCLUDED.password_min_length,
			paperless_enabled = EXCLUDED.paperless_enabled, invoice_alerts = EXCLUDED.invoice_alerts,
			payments_suspended = EXCLUDED.payments_suspended, payfip_classic_url = EXCLUDED.payfip_classic_url,
			payfip_ws_payment_url = EXCLUDED.payfip_ws_payment_url, payfip_soap_url = EXCLUDED.payfip_soap_url,
			payfip_callback_networks = EXCLUDED.payfip_callback_networks,
			reminders_enabled = EXCLUDED.reminders_enabled, reminders_days_before = EXCLUDED.reminders_days_before,
			updated_at = now()
		WHERE (tenants.name, tenants.service_label, tenants.status, tenants.primary_host, tenants.logo, tenants.logo_type,
			tenants.color_primary, tenants.color_accent, tenants.template_overrides, tenants.contact_phone,
			tenants.contact_hours, tenants.contact_email, tenants.welcome_text, tenants.important_notice,
			tenants.payfip_numcli, tenants.payfip_mode, tenants.payfip_saisie, tenants.payfip_min_cents,
			tenants.payfip_max_cents, tenants.payfip_retry_minutes, tenants.batch_allowed, tenants.batch_max,
			tenants.activation_messages, tenants.password_min_length, tenants.paperless_enabled,
			tenants.invoice_alerts, tenants.payments_suspended, tenants.payfip_classic_url,
			tenants.payfip_ws_payment_url, tenants.payfip_soap_url, tenants.payfip_callback_networks,
			tenants.reminders_enabled, tenants.reminders_days_before)
		IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.service_label, EXCLUDED.status, EXCLUDED.primary_host, EXCLUDED.logo,
			EXCLUDED.logo_type, EXCLUDED.color_primary, EXCLUDED.color_accent, EXCLUDED.template_overrides,
			EXCLUDED.contact_phone, EXCLUDED.contact_hours, EXCLUDED.contact_email, EXCLUDED.welcome_text,
			EXCLUDED.important_notice, EXCLUDED.payfip_numcli, EXCLUDED.payfip_mode, EXCLUDED.payfip_saisie,
			EXCLUDED.payfip_min_cents, EXCLUDED.payfip_max_cents, EXCLUDED.payfip_retry_minutes,
			EXCLUDED.batch_allowed, EXCLUDED.batch_max, EXCLUDED.activation_messages,
			EXCLUDED.password_min_length, EXCLUDED.paperless_enabled, EXCLUDED.invoice_alerts,
			EXCLUDED.payments_suspended, EXCLUDED.payfip_classic_url, EXCLUDED.payfip_ws_payment_url,
			EXCLUDED.payfip_soap_url, EXCLUDED.payfip_callback_networks,
			EXCLUDED.reminders_enabled, EXCLUDED.reminders_days_before)
		RETURNING id, (xmax = 0)`,
		f.Slug, f.Name, f.ServiceLabel, f.Status, f.Hosts.Primary, f.logo, f.logoType,
		f.Branding.Colors.Primary, f.Branding.Colors.Accent, string(overrides), f.Contact.Phone, f.Contact.Hours,
		f.Contact.Email, f.Texts.Welcome, f.Texts.Notice, f.PayFiP.Numcli, f.PayFiP.Mode, f.PayFiP.Saisie,
		f.PayFiP.MinCents, f.PayFiP.MaxCents, f.retryMinutes(), f.Payments.BatchAllowed, f.Payments.BatchMax,
		f.Accounts.ActivationMessages, f.Accounts.PasswordMinLength, boolOr(f.Features.Paperless, true),
		boolOr(f.Features.InvoiceAlerts, true), f.Payments.Suspended,
		f.PayFiP.Endpoints.ClassicURL, f.PayFiP.Endpoints.WSPaymentURL, f.PayFiP.Endpoints.SOAPURL,
		pq.Array(f.callbackNetworks()),
		f.Reminders.Enabled, f.Reminders.DaysBefore,
	).Scan(&id, &inserted)
	switch {
	case errors.Is(err, sql.ErrNoRows): // unchanged row: nothing returned
		if err := tx.GetContext(ctx, &id, `SELECT id FROM tenants WHERE slug = $1`, f.Slug); err != nil {
			return res, err
		}
	case err != nil:
		return res, err
	default:
		res.Created, res.Changed = inserted, !inserted
	}
	hosts := f.AllHosts()
	// A host moving from another tenant is refused: an operator must remove it there first.
	var taken []string
	if err := tx.SelectContext(ctx, &taken, `SELECT host FROM tenant_hosts WHERE host = ANY($1) AND tenant_id <> $2`,
		pq.Array(hosts), id); err != nil {
		return res, err
	}
	if len(taken) > 0 {
		return res, fmt.Errorf("hosts %v already belong to another tenant", taken)
	}
	del, err := tx.ExecContext(ctx, `DELETE FROM tenant_hosts WHERE tenant_id = $1 AND NOT (host = ANY($2))`, id, pq.Array(hosts))
	if err != nil {
		return res, err
	}
	n, _ := del.RowsAffected()
	changedHosts := n > 0
	for i, h := range hosts {
		r, err := tx.ExecContext(ctx, `INSERT INTO tenant_hosts (host, tenant_id, is_primary) VALUES ($1, $2, $3)
			ON CONFLICT (host) DO UPDATE SET is_primary = EXCLUDED.is_primary WHERE tenant_hosts.is_primary <> EXCLUDED.is_primary`,
			h, id, i == 0)
		if err != nil {
			return res, err
		}
		if n, _ := r.RowsAffected(); n > 0 {
			changedHosts = true
		}
	}
	if changedHosts && !res.Created {
		res.Changed = true
	}
	return res, nil
}
