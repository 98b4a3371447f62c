package tenant

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"portail/pkg/payfip"
)

// File is the content of tenants/<slug>/tenant.yaml.
type File struct {
	Slug         string `yaml:"slug"`
	Name         string `yaml:"name"`
	ServiceLabel string `yaml:"service_label"`
	Status       string `yaml:"status"`
	Hosts        struct {
		Primary string   `yaml:"primary"`
		Aliases []string `yaml:"aliases"`
	} `yaml:"hosts"`
	Branding struct {
		Logo   string `yaml:"logo"` // file name inside the tenant's folder
		Colors struct {
			Primary string `yaml:"primary"`
			Accent  string `yaml:"accent"`
		} `yaml:"colors"`
	} `yaml:"branding"`
	Contact struct {
		Phone string `yaml:"phone"`
		Hours string `yaml:"hours"`
		Email string `yaml:"email"`
	} `yaml:"contact"`
	Texts struct {
		Welcome string `yaml:"welcome"`
		Notice  string `yaml:"notice"`
	} `yaml:"texts"`
	PayFiP struct {
		Numcli     string `yaml:"numcli"`
		Mode       string `yaml:"mode"`
		Saisie     string `yaml:"saisie"`
		MinCents   int64  `yaml:"min_cents"`
		MaxCents   int64  `yaml:"max_cents"`
		RetryDelay string `yaml:"retry_delay"`
		// Endpoints override the platform's PayFiP URLs for this commune.
		Endpoints struct {
			ClassicURL   string `yaml:"classic_url"`
			WSPaymentURL string `yaml:"ws_payment_url"`
			SOAPURL      string `yaml:"soap_url"`
			// CallbackNetworks replace the deployment's
			// payfip.callback_networks: where this commune's own PayFiP
			// sends classic results from.
			CallbackNetworks []string `yaml:"callback_networks"`
		} `yaml:"endpoints"`
	} `yaml:"payfip"`
	Payments struct {
		BatchAllowed bool `yaml:"batch_allowed"`
		BatchMax     int  `yaml:"batch_max"`
		Suspended    bool `yaml:"suspended"`
	} `yaml:"payments"`
	Accounts struct {
		ActivationMessages string `yaml:"activation_messages"`
		PasswordMinLength  int    `yaml:"password_min_length"`
	} `yaml:"accounts"`
	Features struct {
		Paperless     *bool `yaml:"paperless"`
		InvoiceAlerts *bool `yaml:"invoice_alerts"`
	} `yaml:"features"`
	Reminders struct {
		Enabled    bool `yaml:"enabled"`
		DaysBefore int  `yaml:"days_before"`
	} `yaml:"reminders"`

	// Loaded from the folder, not from YAML.
	dir       string
	logo      []byte
	logoType  string
	overrides map[string]string
}

var (
	slugRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	numcliRe = regexp.MustCompile(`^[0-9]{6}$`)
	colorRe  = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	hostRe   = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// FieldError names the file and the field that is wrong.
type FieldError struct {
	File, Field, Problem string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Problem)
}

// LoadDir reads every <dir>/<slug>/tenant.yaml and validates each file and
// the set (a host used twice, a slug used twice). All problems are returned.
func LoadDir(dir string) ([]*File, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "tenant.yaml"))
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("tenant: no tenant.yaml found under %s", dir)
	}
	sort.Strings(paths)
	var files []*File
	var errs []error
	hostOwner := map[string]string{}
	numcliOwner := map[string]string{}
	for _, p := range paths {
		f, err := LoadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, h := range f.AllHosts() {
			if other, ok := hostOwner[h]; ok {
				errs = append(errs, &FieldError{p, "hosts", fmt.Sprintf("host %q is already used by %s", h, other)})
			}
			hostOwner[h] = p
		}
		if other, ok := numcliOwner[f.PayFiP.Numcli]; ok {
			// Two communes may share a collectivity id only by mistake.
			errs = append(errs, &FieldError{p, "payfip.numcli", fmt.Sprintf("numcli %q is already used by %s", f.PayFiP.Numcli, other)})
		}
		numcliOwner[f.PayFiP.Numcli] = p
		files = append(files, f)
	}
	return files, errors.Join(errs...)
}

// LoadFile reads and validates one tenant.yaml and the files it names.
func LoadFile(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	f := &File{dir: filepath.Dir(path)}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	f.setDefaults()
	if err := f.validate(path); err != nil {
		return nil, err
	}
	if err := f.loadAssets(path); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) setDefaults() {
	f.Hosts.Primary = strings.ToLower(strings.TrimSpace(f.Hosts.Primary))
	for i, a := range f.Hosts.Aliases {
		f.Hosts.Aliases[i] = strings.ToLower(strings.TrimSpace(a))
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&f.Status, "active")
	def(&f.PayFiP.Mode, "ws")
	def(&f.PayFiP.Saisie, "T")
	def(&f.PayFiP.RetryDelay, "2h")
	def(&f.Accounts.ActivationMessages, "explicit")
	def(&f.Branding.Colors.Primary, "#1d4e89")
	def(&f.Branding.Colors.Accent, "#f2a900")
	if f.PayFiP.MinCents == 0 {
		f.PayFiP.MinCents = 100
	}
	if f.PayFiP.MaxCents == 0 {
		f.PayFiP.MaxCents = 10_000_000
	}
	if f.Payments.BatchMax == 0 {
		f.Payments.BatchMax = 1
		if f.Payments.BatchAllowed {
			f.Payments.BatchMax = 10
		}
	}
	if f.Accounts.PasswordMinLength == 0 {
		f.Accounts.PasswordMinLength = 8
	}
	if f.Reminders.DaysBefore == 0 {
		f.Reminders.DaysBefore = DefaultReminderDaysBefore
	}
}

// DefaultReminderDaysBefore is how many days before the due date reminders
// go out when reminders.days_before is not set.
const DefaultReminderDaysBefore = 5

func (f *File) validate(path string) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{path, field, fmt.Sprintf(format, a...)})
	}
	dirSlug := filepath.Base(filepath.Dir(path))
	switch {
	case f.Slug == "":
		bad("slug", "is required")
	case !slugRe.MatchString(f.Slug):
		bad("slug", "%q must be lower-case letters, digits and dashes", f.Slug)
	case f.Slug != dirSlug:
		bad("slug", "%q must match its folder name %q", f.Slug, dirSlug)
	}
	if strings.TrimSpace(f.Name) == "" {
		bad("name", "is required")
	}
	if f.Status != "active" && f.Status != "suspended" {
		bad("status", "must be active or suspended, got %q", f.Status)
	}
	if f.Hosts.Primary == "" {
		bad("hosts.primary", "is required")
	}
	for i, h := range f.AllHosts() {
		field := "hosts.primary"
		if i > 0 {
			field = fmt.Sprintf("hosts.aliases[%d]", i-1)
		}
		if NormalizeHost(h) != h || !hostRe.MatchString(h) {
			bad(field, "%q is not a valid host name (lower case, no port, no trailing dot)", h)
		}
	}
	seen := map[string]bool{}
	for _, h := range f.AllHosts() {
		if seen[h] {
			bad("hosts", "host %q is listed twice", h)
		}
		seen[h] = true
	}
	if !colorRe.MatchString(f.Branding.Colors.Primary) {
		bad("branding.colors.primary", "%q must be a colour like #1d4e89", f.Branding.Colors.Primary)
	}
	if !colorRe.MatchString(f.Branding.Colors.Accent) {
		bad("branding.colors.accent", "%q must be a colour like #f2a900", f.Branding.Colors.Accent)
	}
	if f.Contact.Email != "" {
		if a, err := mail.ParseAddress(f.Contact.Email); err != nil || a.Address != f.Contact.Email {
			bad("contact.email", "%q is not an email address", f.Contact.Email)
		}
	} else {
		bad("contact.email", "is required (the service receives residents' messages and requests)")
	}
	if !numcliRe.MatchString(f.PayFiP.Numcli) {
		bad("payfip.numcli", "%q must be exactly 6 digits (write it quoted to keep leading zeros, e.g. \"004200\")", f.PayFiP.Numcli)
	}
	if f.PayFiP.Mode != "ws" && f.PayFiP.Mode != "classic" {
		bad("payfip.mode", "must be ws or classic, got %q", f.PayFiP.Mode)
	}
	if !strings.Contains("TXWA", f.PayFiP.Saisie) || len(f.PayFiP.Saisie) != 1 {
		bad("payfip.saisie", "must be T (test), X (activation), W (production, ws) or A (production, classic), got %q", f.PayFiP.Saisie)
	}
	if f.PayFiP.MinCents < 100 {
		bad("payfip.min_cents", "must be at least 100 (1 €), got %d", f.PayFiP.MinCents)
	}
	if f.PayFiP.MaxCents < f.PayFiP.MinCents || f.PayFiP.MaxCents > 10_000_000 {
		bad("payfip.max_cents", "must be between min_cents and 10000000 (100 000 €), got %d", f.PayFiP.MaxCents)
	}
	if d, err := time.ParseDuration(f.PayFiP.RetryDelay); err != nil || d < 0 || d > 48*time.Hour {
		bad("payfip.retry_delay", "%q must be a duration between 0 and 48h, such as 2h or 20m", f.PayFiP.RetryDelay)
	}
	for field, u := range map[string]string{
		"payfip.endpoints.classic_url":    f.PayFiP.Endpoints.ClassicURL,
		"payfip.endpoints.ws_payment_url": f.PayFiP.Endpoints.WSPaymentURL,
		"payfip.endpoints.soap_url":       f.PayFiP.Endpoints.SOAPURL,
	} {
		if p, err := url.Parse(u); u != "" && (err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "") {
			bad(field, "%q must be an absolute http(s) URL", u)
		}
	}
	for i, n := range f.PayFiP.Endpoints.CallbackNetworks {
		if _, err := payfip.ParseNetworks([]string{n}); err != nil {
			bad(fmt.Sprintf("payfip.endpoints.callback_networks[%d]", i), "%q must be a CIDR (192.0.2.0/24) or an IP address", n)
		}
	}
	if len(f.PayFiP.Endpoints.CallbackNetworks) > 0 && f.PayFiP.Endpoints.ClassicURL == "" {
		// Only the commune's own PayFiP may call back from other networks
		// than the deployment's: never widen the trust for the shared one.
		bad("payfip.endpoints.callback_networks", "is allowed only with payfip.endpoints.classic_url (the commune's own PayFiP)")
	}
	if f.Payments.BatchMax < 1 || f.Payments.BatchMax > 50 {
		bad("payments.batch_max", "must be between 1 and 50, got %d", f.Payments.BatchMax)
	}
	if !f.Payments.BatchAllowed && f.Payments.BatchMax > 1 {
		bad("payments.batch_max", "must be 1 when batch_allowed is false")
	}
	if f.Accounts.ActivationMessages != "explicit" && f.Accounts.ActivationMessages != "neutral" {
		bad("accounts.activation_messages", "must be explicit or neutral, got %q", f.Accounts.ActivationMessages)
	}
	if f.Accounts.PasswordMinLength < 8 || f.Accounts.PasswordMinLength > 64 {
		bad("accounts.password_min_length", "must be between 8 (platform floor) and 64, got %d", f.Accounts.PasswordMinLength)
	}
	if f.Reminders.DaysBefore < 1 || f.Reminders.DaysBefore > 60 {
		bad("reminders.days_before", "must be between 1 and 60 days, got %d", f.Reminders.DaysBefore)
	}
	return errors.Join(errs...)
}

var logoTypes = map[string]string{".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}

func (f *File) loadAssets(path string) error {
	if f.Branding.Logo != "" {
		name := f.Branding.Logo
		typ, ok := logoTypes[strings.ToLower(filepath.Ext(name))]
		if !ok || filepath.Base(name) != name {
			return &FieldError{path, "branding.logo", fmt.Sprintf("%q must be a .svg, .png, .jpg or .webp file in the tenant's folder", name)}
		}
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil {
			return &FieldError{path, "branding.logo", err.Error()}
		}
		if len(b) > 512<<10 {
			return &FieldError{path, "branding.logo", "larger than 512 KiB"}
		}
		f.logo, f.logoType = b, typ
	}
	f.overrides = map[string]string{}
	overrides, _ := filepath.Glob(filepath.Join(f.dir, "templates", "*.html"))
	for _, o := range overrides {
		b, err := os.ReadFile(o)
		if err != nil {
			return fmt.Errorf("%s: %w", o, err)
		}
		// Parse now: a broken override must fail `tenants check`, not the portal.
		if _, err := template.New(filepath.Base(o)).Funcs(overrideFuncs).Parse(string(b)); err != nil {
			return &FieldError{path, "templates/" + filepath.Base(o), err.Error()}
		}
		f.overrides[filepath.Base(o)] = string(b)
	}
	return nil
}

// overrideFuncs names the functions the views offer, so overrides parse.
var overrideFuncs = template.FuncMap{"date": func() string { return "" }, "lines": func() []string { return nil }}

// AllHosts lists the primary host first, then the aliases.
func (f *File) AllHosts() []string {
	return append([]string{f.Hosts.Primary}, f.Hosts.Aliases...)
}

// Overrides are the tenant's template overrides, by file name.
func (f *File) Overrides() map[string]string { return f.overrides }

func (f *File) retryMinutes() int {
	d, _ := time.ParseDuration(f.PayFiP.RetryDelay)
	return int(d / time.Minute)
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// callbackNetworks is the commune's own list as stored: trimmed, never nil
// (the column is NOT NULL; empty means the deployment's list).
func (f *File) callbackNetworks() []string {
	out := []string{}
	for _, n := range f.PayFiP.Endpoints.CallbackNetworks {
		out = append(out, strings.TrimSpace(n))
	}
	return out
}
