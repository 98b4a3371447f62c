// Package tenant holds the communes (tenants): their settings, the
// tenant.yaml files that provision them, and host-name resolution.
package tenant

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Tenant is one commune and every setting the product reads from it.
type Tenant struct {
	ID           int64  `db:"id"`
	Slug         string `db:"slug"`
	Name         string `db:"name"`          // "MAIRIE DE SISTEC"
	ServiceLabel string `db:"service_label"` // "Facturation Restauration scolaire"
	Status       string `db:"status"`        // active | suspended
	PrimaryHost  string `db:"primary_host"`  // used in every emailed link
	Aliases      []string

	Logo              []byte        `db:"logo"`
	LogoType          string        `db:"logo_type"`
	ColorPrimary      string        `db:"color_primary"`
	ColorAccent       string        `db:"color_accent"`
	TemplateOverrides JSONStringMap `db:"template_overrides"` // template name → source

	ContactPhone    string `db:"contact_phone"`
	ContactHours    string `db:"contact_hours"`
	ContactEmail    string `db:"contact_email"` // the service's address
	WelcomeText     string `db:"welcome_text"`
	ImportantNotice string `db:"important_notice"`

	PayFiPNumcli       string `db:"payfip_numcli"`
	PayFiPMode         string `db:"payfip_mode"`   // ws | classic
	PayFiPSaisie       string `db:"payfip_saisie"` // T | X | W | A
	PayFiPMinCents     int64  `db:"payfip_min_cents"`
	PayFiPMaxCents     int64  `db:"payfip_max_cents"`
	PayFiPRetryMinutes int    `db:"payfip_retry_minutes"` // wait after a failed attempt
	// Endpoints overriding the platform's; "" = the platform's.
	PayFiPClassicURL   string `db:"payfip_classic_url"`
	PayFiPWSPaymentURL string `db:"payfip_ws_payment_url"`
	PayFiPSOAPURL      string `db:"payfip_soap_url"`
	// PayFiP's source networks for this commune's classic results; empty =
	// the deployment's payfip.callback_networks.
	PayFiPCallbackNetworks pq.StringArray `db:"payfip_callback_networks"`

	BatchAllowed bool `db:"batch_allowed"`
	BatchMax     int  `db:"batch_max"`

	ActivationMessages string `db:"activation_messages"` // explicit | neutral
	PasswordMinLength  int    `db:"password_min_length"`
	PaperlessEnabled   bool   `db:"paperless_enabled"`
	InvoiceAlerts      bool   `db:"invoice_alerts"`
	PaymentsSuspended  bool   `db:"payments_suspended"`

	// Reminders before the due date: on or off, and how many days before.
	RemindersEnabled    bool `db:"reminders_enabled"`
	RemindersDaysBefore int  `db:"reminders_days_before"`

	// The important notice shows from NoticeFrom to NoticeUntil included
	// (YYYY-MM-DD; "" for no bound).
	NoticeFrom  string `db:"notice_from"`
	NoticeUntil string `db:"notice_until"`

	UpdatedAt time.Time `db:"updated_at"`
	// Version grows by one at each change (optimistic concurrency), and
	// UpdatedBy says who made the last one.
	Version   int64  `db:"version"`
	UpdatedBy string `db:"updated_by"`
	// AssetTag identifies the logo and colours (a strong validator): set
	// when the tenant is loaded, so asset requests read no database.
	AssetTag string `db:"-"`
}

// NoticeShownOn tells whether the important notice shows on day (a
// YYYY-MM-DD Paris day).
func (t *Tenant) NoticeShownOn(day string) bool {
	if t.ImportantNotice == "" {
		return false
	}
	return (t.NoticeFrom == "" || day >= t.NoticeFrom) && (t.NoticeUntil == "" || day <= t.NoticeUntil)
}

// Suspended tells whether the operator suspended the commune: its pages
// show the maintenance page, PayFiP's results are still processed.
func (t *Tenant) Suspended() bool { return t.Status == StatusSuspended }

// Settings returns t's settings as tenant.yaml groups them.
func (t *Tenant) Settings() Settings {
	s := Settings{Slug: t.Slug, Name: t.Name, ServiceLabel: t.ServiceLabel, Status: t.Status}
	s.Hosts = Hosts{Primary: t.PrimaryHost, Aliases: append([]string{}, t.Aliases...)}
	s.Branding.Colors.Primary, s.Branding.Colors.Accent = t.ColorPrimary, t.ColorAccent
	if len(t.Logo) > 0 {
		s.Branding.LogoData, s.Branding.LogoType = append([]byte(nil), t.Logo...), t.LogoType
	}
	s.Contact = Contact{Phone: t.ContactPhone, Hours: t.ContactHours, Email: t.ContactEmail}
	s.Texts = Texts{Welcome: t.WelcomeText, Notice: t.ImportantNotice, NoticeFrom: t.NoticeFrom, NoticeUntil: t.NoticeUntil}
	s.PayFiP.Numcli, s.PayFiP.Mode, s.PayFiP.Saisie = t.PayFiPNumcli, t.PayFiPMode, t.PayFiPSaisie
	s.PayFiP.MinCents, s.PayFiP.MaxCents = t.PayFiPMinCents, t.PayFiPMaxCents
	s.PayFiP.RetryDelay = formatMinutes(t.PayFiPRetryMinutes)
	s.PayFiP.Endpoints.ClassicURL = t.PayFiPClassicURL
	s.PayFiP.Endpoints.WSPaymentURL = t.PayFiPWSPaymentURL
	s.PayFiP.Endpoints.SOAPURL = t.PayFiPSOAPURL
	s.PayFiP.Endpoints.CallbackNetworks = append([]string{}, t.PayFiPCallbackNetworks...)
	s.Payments = Payments{BatchAllowed: t.BatchAllowed, BatchMax: t.BatchMax, Suspended: t.PaymentsSuspended}
	s.Accounts = Accounts{ActivationMessages: t.ActivationMessages, PasswordMinLength: t.PasswordMinLength}
	s.Features = Features{Paperless: t.PaperlessEnabled, InvoiceAlerts: t.InvoiceAlerts}
	s.Reminders = Reminders{Enabled: t.RemindersEnabled, DaysBefore: t.RemindersDaysBefore}
	return s
}

// RetryDelay is how long a resident waits after an abandoned, refused or
// unknown payment attempt before trying again.
func (t *Tenant) RetryDelay() time.Duration {
	return time.Duration(t.PayFiPRetryMinutes) * time.Minute
}

// Active tells whether residents may use the commune's portal.
func (t *Tenant) Active() bool { return t.Status == StatusActive }

type ctxKey struct{}

// WithContext returns ctx carrying t: the only way handlers and queries
// learn the tenant (never from request input).
func WithContext(ctx context.Context, t *Tenant) context.Context {
	return context.WithValue(ctx, ctxKey{}, t)
}

// FromContext returns the tenant resolved for this request, or nil.
func FromContext(ctx context.Context) *Tenant {
	t, _ := ctx.Value(ctxKey{}).(*Tenant)
	return t
}

// JSONStringMap is a jsonb column holding a string → string object.
type JSONStringMap map[string]string

// Scan implements sql.Scanner.
func (m *JSONStringMap) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*m = nil
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("tenant: cannot scan %T into JSONStringMap", src)
	}
	return json.Unmarshal(b, m)
}
