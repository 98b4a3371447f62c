package tenant

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
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
	reminders_enabled, reminders_days_before, version, updated_by,
	COALESCE(to_char(notice_from, 'YYYY-MM-DD'), '') AS notice_from,
	COALESCE(to_char(notice_until, 'YYYY-MM-DD'), '') AS notice_until
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
		t.AssetTag = assetTag(t)
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
	if err := s.loadAliases(ctx, t); err != nil {
		return nil, err
	}
	t.AssetTag = assetTag(t)
	return t, nil
}

// assetTag hashes what /logo and /theme.css serve: the same tag on every
// instance for the same content.
func assetTag(t *Tenant) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", t.ColorPrimary, t.ColorAccent, t.LogoType)
	h.Write(t.Logo)
	return hex.EncodeToString(h.Sum(nil)[:12])
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
