package tenant

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/audit"
	"portail/pkg/paris"
)

// Service is the one writer of communes: the operator's console, the
// staff's screens, the command line and `tenants apply` all change a
// commune through it. Each write validates the groups it changes, checks
// what other communes hold (host names, collectivity id), writes, and
// records who changed which field from what to what, in one transaction;
// then this instance's host cache is emptied (other instances see the
// change within Store.CacheTTL).
type Service struct {
	DB    *sqlx.DB
	Store *Store
}

// NewService returns the service writing through d and invalidating store.
func NewService(d *sqlx.DB, store *Store) *Service {
	return &Service{DB: d, Store: store}
}

// Audit actions.
const (
	ActionCreated   = "tenant.created"
	ActionUpdated   = "tenant.updated"
	ActionApplied   = "tenant.applied"
	ActionSuspended = "tenant.suspended"
	ActionResumed   = "tenant.resumed"
)

// StaleError refuses an update based on an older version of the commune:
// someone changed it in between; nothing was written.
type StaleError struct {
	Version int64     // the commune's version now
	By      string    // who made the last change
	At      time.Time // when
	Fields  []string  // the fields changed since the version the update was based on
}

func (e *StaleError) Error() string {
	msg := "les réglages de la commune ont été modifiés entre-temps"
	if e.By != "" {
		msg += " par " + e.By
	}
	if !e.At.IsZero() {
		msg += " (" + e.At.In(paris.Location).Format("02/01/2006 à 15:04") + ")"
	}
	if len(e.Fields) > 0 {
		msg += " : " + strings.Join(e.Fields, ", ")
	}
	return msg + ". Vos modifications n'ont pas été enregistrées : rechargez la page, puis refaites-les."
}

type cliUserKey struct{}

// WithCommandLineUser records the operating system user running the
// command line: audit entries of the changes it makes name them.
func WithCommandLineUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, cliUserKey{}, user)
}

func commandLineUser(ctx context.Context) string {
	u, _ := ctx.Value(cliUserKey{}).(string)
	return u
}

// Create adds a commune (every group validated, its hosts and collectivity
// id free), audited as tenant.created with every field's value.
func (s *Service) Create(ctx context.Context, set Settings) (*Tenant, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("tenant: create: %w", err)
	}
	defer tx.Rollback()
	id, err := s.create(ctx, tx, set, ActionCreated, nil)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("tenant: create: %w", err)
	}
	s.Store.Invalidate()
	return s.Store.ByID(ctx, id)
}

// Update writes the groups of next onto commune id, provided it is still
// at version (the version the change was based on, as read before): else
// a *StaleError says who changed what since, and nothing is written. The
// fields of other groups in next are ignored. An update that changes
// nothing writes nothing.
func (s *Service) Update(ctx context.Context, id, version int64, next Settings, groups ...Group) (*Tenant, error) {
	if len(groups) == 0 {
		return nil, errors.New("tenant: update: no group named")
	}
	return s.change(ctx, id, version, ActionUpdated, groups, func(cur *Settings) error {
		for _, g := range groups {
			if err := g.take(cur, &next); err != nil {
				return err
			}
		}
		return nil
	})
}

// Suspend suspends commune id: residents and staff see the maintenance
// page; PayFiP's results for its attempts are still processed.
func (s *Service) Suspend(ctx context.Context, id, version int64) (*Tenant, error) {
	return s.change(ctx, id, version, ActionSuspended, []Group{}, func(cur *Settings) error {
		cur.Status = StatusSuspended
		return nil
	})
}

// Resume reopens a suspended commune.
func (s *Service) Resume(ctx context.Context, id, version int64) (*Tenant, error) {
	return s.change(ctx, id, version, ActionResumed, []Group{}, func(cur *Settings) error {
		cur.Status = StatusActive
		return nil
	})
}

func (s *Service) change(ctx context.Context, id, version int64, action string, groups []Group, mutate func(*Settings) error) (*Tenant, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("tenant: update: %w", err)
	}
	defer tx.Rollback()
	cur, err := getTenant(ctx, tx, `WHERE id = $1 FOR UPDATE`, id)
	if err != nil {
		return nil, err
	}
	if cur.Version != version {
		return nil, s.stale(ctx, tx, cur, version)
	}
	next := cur.Settings()
	if err := mutate(&next); err != nil {
		return nil, err
	}
	if _, err := s.write(ctx, tx, cur, next, action, groups); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("tenant: update: %w", err)
	}
	s.Store.Invalidate()
	return s.Store.ByID(ctx, id)
}

// stale builds the StaleError of an update based on version: the fields
// changed since are read from the audit entries of the later versions.
func (s *Service) stale(ctx context.Context, tx *sqlx.Tx, cur *Tenant, version int64) error {
	e := &StaleError{Version: cur.Version, By: cur.UpdatedBy, At: cur.UpdatedAt}
	var rows []json.RawMessage
	if err := tx.SelectContext(ctx, &rows, `SELECT details FROM audit_log
		WHERE tenant_id = $1 AND object_type = $2 AND object_id = $3 AND starts_with(action, 'tenant.')
		  AND (details->>'version')::bigint > $4`,
		cur.ID, audit.ObjectTenant, fmt.Sprint(cur.ID), version); err != nil {
		return fmt.Errorf("tenant: update: %w", err)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		var d struct {
			Changes []Change `json:"changes"`
		}
		json.Unmarshal(r, &d)
		for _, c := range d.Changes {
			if !seen[c.Field] {
				seen[c.Field] = true
				e.Fields = append(e.Fields, c.Field)
			}
		}
	}
	sort.Strings(e.Fields)
	return e
}

// write validates next against the groups changed (all groups when nil)
// and the other communes, then writes it over cur with the next version
// and audits the changes. It writes nothing and returns no change when
// next equals cur.
func (s *Service) write(ctx context.Context, tx *sqlx.Tx, cur *Tenant, next Settings, action string, groups []Group) ([]Change, error) {
	next.Slug = cur.Slug // the slug names the commune for good
	next.canonical()
	if groups == nil {
		groups = Groups()
	}
	errs := []error{validateStatus(next.Status)}
	for _, g := range groups {
		errs = append(errs, ValidateGroup(g, &next))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	before := cur.Settings()
	changes := Diff(before.Fields(), next.Fields())
	if len(changes) == 0 {
		return nil, nil
	}
	if err := checkOthers(ctx, tx, cur.ID, &next); err != nil {
		return nil, err
	}
	cols, vals := settingsColumns(&next)
	var set []string
	for i, c := range cols {
		set = append(set, fmt.Sprintf("%s = %s", c, placeholder(c, i+2)))
	}
	label, err := actorLabel(ctx, tx)
	if err != nil {
		return nil, err
	}
	args := append([]any{cur.ID}, vals...)
	args = append(args, label)
	if _, err := tx.ExecContext(ctx, `UPDATE tenants SET `+strings.Join(set, ", ")+fmt.Sprintf(
		`, version = version + 1, updated_at = now(), updated_by = $%d WHERE id = $1`, len(args)), args...); err != nil {
		return nil, fmt.Errorf("tenant: update %s: %w", cur.Slug, err)
	}
	if err := writeHosts(ctx, tx, cur.ID, &next); err != nil {
		return nil, err
	}
	if err := record(ctx, tx, cur.ID, action, cur.Version+1, changes); err != nil {
		return nil, err
	}
	return changes, nil
}

func (s *Service) create(ctx context.Context, tx *sqlx.Tx, set Settings, action string, applied map[string]string) (int64, error) {
	set.fillDefaults()
	set.canonical()
	if err := set.Validate(); err != nil {
		return 0, err
	}
	var taken bool
	if err := tx.GetContext(ctx, &taken, `SELECT EXISTS (SELECT 1 FROM tenants WHERE slug = $1)`, set.Slug); err != nil {
		return 0, fmt.Errorf("tenant: create: %w", err)
	}
	if taken {
		return 0, &FieldError{Field: "slug", Problem: fmt.Sprintf("%q is already the slug of a commune", set.Slug)}
	}
	if err := checkOthers(ctx, tx, 0, &set); err != nil {
		return 0, err
	}
	label, err := actorLabel(ctx, tx)
	if err != nil {
		return 0, err
	}
	cols, vals := settingsColumns(&set)
	var ph []string
	for i, c := range cols {
		ph = append(ph, placeholder(c, i+3))
	}
	var lastApplied any = "{}" // created elsewhere: no field was applied from YAML
	if applied != nil {
		b, _ := json.Marshal(applied)
		lastApplied = string(b)
	}
	var id int64
	if err := tx.GetContext(ctx, &id, `INSERT INTO tenants (slug, updated_by, last_applied, `+strings.Join(cols, ", ")+`)
		VALUES ($1, $2, $`+fmt.Sprint(len(cols)+3)+`::jsonb, `+strings.Join(ph, ", ")+`) RETURNING id`,
		append(append([]any{set.Slug, label}, vals...), lastApplied)...); err != nil {
		return 0, fmt.Errorf("tenant: create %s: %w", set.Slug, err)
	}
	if err := writeHosts(ctx, tx, id, &set); err != nil {
		return 0, err
	}
	if err := record(ctx, tx, id, action, 1, Diff(nil, set.Fields())); err != nil {
		return 0, err
	}
	return id, nil
}

// canonical writes values that have several spellings one way.
func (s *Settings) canonical() {
	if s.Hosts.Aliases == nil {
		s.Hosts.Aliases = []string{}
	}
	if s.PayFiP.Endpoints.CallbackNetworks == nil {
		s.PayFiP.Endpoints.CallbackNetworks = []string{}
	}
	for i, n := range s.PayFiP.Endpoints.CallbackNetworks {
		s.PayFiP.Endpoints.CallbackNetworks[i] = strings.TrimSpace(n)
	}
	if d, err := time.ParseDuration(s.PayFiP.RetryDelay); err == nil && d >= 0 && d%time.Minute == 0 {
		s.PayFiP.RetryDelay = formatMinutes(int(d / time.Minute))
	}
	if len(s.Branding.LogoData) == 0 {
		s.Branding.LogoData, s.Branding.LogoType = nil, ""
	}
}

// checkOthers refuses host names and a collectivity id another commune
// than id holds.
func checkOthers(ctx context.Context, tx *sqlx.Tx, id int64, s *Settings) error {
	var taken []struct {
		Host string `db:"host"`
		Slug string `db:"slug"`
	}
	if err := tx.SelectContext(ctx, &taken, `SELECT h.host, t.slug FROM tenant_hosts h JOIN tenants t ON t.id = h.tenant_id
		WHERE h.host = ANY($1) AND h.tenant_id <> $2 ORDER BY h.host`, pq.Array(s.AllHosts()), id); err != nil {
		return fmt.Errorf("tenant: hosts: %w", err)
	}
	var errs []error
	for _, t := range taken {
		field := "hosts.primary"
		if i := slices.Index(s.Hosts.Aliases, t.Host); i >= 0 {
			field = fmt.Sprintf("hosts.aliases[%d]", i)
		}
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf("host %q is already used by the commune %s", t.Host, t.Slug)})
	}
	var other string
	err := tx.GetContext(ctx, &other, `SELECT slug FROM tenants WHERE payfip_numcli = $1 AND id <> $2 LIMIT 1`, s.PayFiP.Numcli, id)
	if err == nil {
		errs = append(errs, &FieldError{Field: "payfip.numcli", Problem: fmt.Sprintf("numcli %q is already used by the commune %s", s.PayFiP.Numcli, other)})
	} else if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("tenant: numcli: %w", err)
	}
	return errors.Join(errs...)
}

// settingsColumns are the tenants columns s sets, and their values.
func settingsColumns(s *Settings) ([]string, []any) {
	var logo []byte
	if len(s.Branding.LogoData) > 0 {
		logo = s.Branding.LogoData
	}
	pairs := []struct {
		col string
		val any
	}{
		{"name", s.Name}, {"service_label", s.ServiceLabel}, {"status", s.Status},
		{"primary_host", s.Hosts.Primary}, {"logo", logo}, {"logo_type", s.Branding.LogoType},
		{"color_primary", s.Branding.Colors.Primary}, {"color_accent", s.Branding.Colors.Accent},
		{"contact_phone", s.Contact.Phone}, {"contact_hours", s.Contact.Hours}, {"contact_email", s.Contact.Email},
		{"welcome_text", s.Texts.Welcome}, {"important_notice", s.Texts.Notice},
		{"notice_from", s.Texts.NoticeFrom}, {"notice_until", s.Texts.NoticeUntil},
		{"payfip_numcli", s.PayFiP.Numcli}, {"payfip_mode", s.PayFiP.Mode}, {"payfip_saisie", s.PayFiP.Saisie},
		{"payfip_min_cents", s.PayFiP.MinCents}, {"payfip_max_cents", s.PayFiP.MaxCents},
		{"payfip_retry_minutes", s.retryMinutes()},
		{"payfip_classic_url", s.PayFiP.Endpoints.ClassicURL}, {"payfip_ws_payment_url", s.PayFiP.Endpoints.WSPaymentURL},
		{"payfip_soap_url", s.PayFiP.Endpoints.SOAPURL}, {"payfip_callback_networks", pq.Array(s.PayFiP.Endpoints.CallbackNetworks)},
		{"batch_allowed", s.Payments.BatchAllowed}, {"batch_max", s.Payments.BatchMax}, {"payments_suspended", s.Payments.Suspended},
		{"activation_messages", s.Accounts.ActivationMessages}, {"password_min_length", s.Accounts.PasswordMinLength},
		{"paperless_enabled", s.Features.Paperless}, {"invoice_alerts", s.Features.InvoiceAlerts},
		{"reminders_enabled", s.Reminders.Enabled}, {"reminders_days_before", s.Reminders.DaysBefore},
	}
	cols, vals := make([]string, len(pairs)), make([]any, len(pairs))
	for i, p := range pairs {
		cols[i], vals[i] = p.col, p.val
	}
	return cols, vals
}

// placeholder is $n, cast for the date columns (where "" is NULL).
func placeholder(col string, n int) string {
	if col == "notice_from" || col == "notice_until" {
		return fmt.Sprintf("NULLIF($%d, '')::date", n)
	}
	return fmt.Sprintf("$%d", n)
}

func writeHosts(ctx context.Context, tx *sqlx.Tx, id int64, s *Settings) error {
	hosts := s.AllHosts()
	if _, err := tx.ExecContext(ctx, `DELETE FROM tenant_hosts WHERE tenant_id = $1 AND NOT (host = ANY($2))`, id, pq.Array(hosts)); err != nil {
		return fmt.Errorf("tenant: hosts: %w", err)
	}
	for i, h := range hosts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_hosts (host, tenant_id, is_primary) VALUES ($1, $2, $3)
			ON CONFLICT (host) DO UPDATE SET is_primary = EXCLUDED.is_primary
			WHERE tenant_hosts.tenant_id = EXCLUDED.tenant_id AND tenant_hosts.is_primary <> EXCLUDED.is_primary`,
			h, id, i == 0); err != nil {
			return fmt.Errorf("tenant: hosts: %w", err)
		}
	}
	return nil
}

// record audits a change: the version it made and each field's value
// before and after (the logo as its hash; settings hold no secret).
func record(ctx context.Context, tx *sqlx.Tx, id int64, action string, version int64, changes []Change) error {
	details := map[string]any{"version": version, "changes": changes}
	if u := commandLineUser(ctx); u != "" {
		details["os_user"] = u
	}
	return audit.Record(ctx, tx, id, action, audit.Of(audit.ObjectTenant, id), details)
}

// actorLabel names the actor of ctx for "modifiée entre-temps par …".
func actorLabel(ctx context.Context, tx *sqlx.Tx) (string, error) {
	a := audit.ActorFrom(ctx)
	switch a.Kind {
	case audit.KindStaff:
		var name string
		err := tx.GetContext(ctx, &name, `SELECT name FROM staff_users WHERE id = $1`, a.ID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("tenant: actor: %w", err)
		}
		return strings.TrimSpace(name + " (équipe de la commune)"), nil
	case audit.KindOperator:
		return fmt.Sprintf("l'exploitant (opérateur n° %d)", a.ID), nil
	case audit.KindSystem:
		if u := commandLineUser(ctx); u != "" {
			return "la ligne de commande (" + u + ")", nil
		}
		return "le système", nil
	}
	return a.Kind, nil
}

// getTenant reads one tenant and its aliases through q (a transaction, to
// lock it with FOR UPDATE).
func getTenant(ctx context.Context, q sqlx.QueryerContext, where string, args ...any) (*Tenant, error) {
	t := &Tenant{}
	err := sqlx.GetContext(ctx, q, t, selectTenant+" "+where, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("tenant: load: %w", err)
	}
	if err := sqlx.SelectContext(ctx, q, &t.Aliases,
		`SELECT host FROM tenant_hosts WHERE tenant_id = $1 AND NOT is_primary ORDER BY host`, t.ID); err != nil {
		return nil, fmt.Errorf("tenant: hosts: %w", err)
	}
	t.AssetTag = assetTag(t)
	return t, nil
}

// overridesHash stands for the template overrides in apply's comparison.
func overridesHash(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, m[k])
	}
	return strings.Join(keys, ", ") + " sha256:" + hex.EncodeToString(h.Sum(nil)[:8])
}
