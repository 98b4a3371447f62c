package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"portail/pkg/payfip"
)

// Settings are everything a commune is configured with, grouped as the
// tenant.yaml file writes them. The same struct is read from YAML, built by
// the operator's console and the staff's screens, and written back by
// `tenants export`; one set of validation functions (ValidateGroup) judges
// it whichever way it came.
type Settings struct {
	Slug         string    `yaml:"slug"`
	Name         string    `yaml:"name"`
	ServiceLabel string    `yaml:"service_label"`
	Status       string    `yaml:"status"`
	Hosts        Hosts     `yaml:"hosts"`
	Branding     Branding  `yaml:"branding"`
	Contact      Contact   `yaml:"contact"`
	Texts        Texts     `yaml:"texts"`
	PayFiP       PayFiP    `yaml:"payfip"`
	Payments     Payments  `yaml:"payments"`
	Accounts     Accounts  `yaml:"accounts"`
	Features     Features  `yaml:"features"`
	Reminders    Reminders `yaml:"reminders"`
}

// Hosts are the host names a commune answers on; the primary one is used in
// every emailed link.
type Hosts struct {
	Primary string   `yaml:"primary"`
	Aliases []string `yaml:"aliases,flow"`
}

// Branding is the commune's logo and colours.
type Branding struct {
	Logo   string `yaml:"logo,omitempty"` // file name inside the tenant's folder (YAML only)
	Colors struct {
		Primary string `yaml:"primary"`
		Accent  string `yaml:"accent"`
	} `yaml:"colors"`
	// LogoData is the logo itself (PNG or SVG), LogoType its media type.
	LogoData []byte `yaml:"-"`
	LogoType string `yaml:"-"`
}

// Contact is how residents reach the commune's service.
type Contact struct {
	Phone string `yaml:"phone"`
	Hours string `yaml:"hours"`
	Email string `yaml:"email"`
}

// Texts are shown on the residents' home page. The important notice shows
// from NoticeFrom to NoticeUntil included (YYYY-MM-DD, Paris days; empty:
// no bound).
type Texts struct {
	Welcome     string `yaml:"welcome"`
	Notice      string `yaml:"notice"`
	NoticeFrom  string `yaml:"notice_from,omitempty"`
	NoticeUntil string `yaml:"notice_until,omitempty"`
}

// PayFiP is the commune's PayFiP contract.
type PayFiP struct {
	Numcli     string `yaml:"numcli"`
	Mode       string `yaml:"mode"`
	Saisie     string `yaml:"saisie"`
	MinCents   int64  `yaml:"min_cents"`
	MaxCents   int64  `yaml:"max_cents"`
	RetryDelay string `yaml:"retry_delay"`
	// Endpoints override the platform's PayFiP URLs for this commune.
	Endpoints struct {
		ClassicURL   string `yaml:"classic_url,omitempty"`
		WSPaymentURL string `yaml:"ws_payment_url,omitempty"`
		SOAPURL      string `yaml:"soap_url,omitempty"`
		// CallbackNetworks replace the deployment's
		// payfip.callback_networks: where this commune's own PayFiP
		// sends classic results from.
		CallbackNetworks []string `yaml:"callback_networks,omitempty,flow"`
	} `yaml:"endpoints,omitempty"`
}

// Payments is the commune's payment policy.
type Payments struct {
	BatchAllowed bool `yaml:"batch_allowed"`
	BatchMax     int  `yaml:"batch_max"`
	// Suspended stops every online payment of the commune.
	Suspended bool `yaml:"suspended"`
}

// Accounts is the residents' accounts policy.
type Accounts struct {
	ActivationMessages string `yaml:"activation_messages"`
	PasswordMinLength  int    `yaml:"password_min_length"`
}

// Features are switches residents see.
type Features struct {
	Paperless     bool `yaml:"paperless"`
	InvoiceAlerts bool `yaml:"invoice_alerts"`
}

// Reminders before the due date.
type Reminders struct {
	Enabled    bool `yaml:"enabled"`
	DaysBefore int  `yaml:"days_before"`
}

// Status values.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
)

// DefaultReminderDaysBefore is how many days before the due date reminders
// go out when reminders.days_before is not set.
const DefaultReminderDaysBefore = 5

// MaxLogoBytes bounds a logo: it is sent on every page of the commune.
const MaxLogoBytes = 256 << 10

// DefaultSettings are the values of what a tenant.yaml leaves out.
func DefaultSettings() Settings {
	var s Settings
	s.Status = StatusActive
	s.Branding.Colors.Primary = "#1d4e89"
	s.Branding.Colors.Accent = "#b35900" // the stylesheet's own: 3:1 on white for focus outlines
	s.PayFiP.Mode = "ws"
	s.PayFiP.Saisie = "T"
	s.PayFiP.RetryDelay = "2h"
	s.Accounts.ActivationMessages = "explicit"
	s.Features.Paperless = true
	s.Features.InvoiceAlerts = true
	s.PayFiP.MinCents, s.PayFiP.MaxCents = 100, 10_000_000
	s.Accounts.PasswordMinLength = 8
	s.Reminders.DaysBefore = DefaultReminderDaysBefore
	// payments.batch_max is left to fillDefaults: it follows batch_allowed.
	return s
}

// fillDefaults sets what depends on other fields or is zero in YAML, and
// writes the retry delay in its canonical form (so that "120m" and "2h"
// are one value).
func (s *Settings) fillDefaults() {
	if s.Status == "" {
		s.Status = StatusActive
	}
	if s.PayFiP.MinCents == 0 {
		s.PayFiP.MinCents = 100
	}
	if s.PayFiP.MaxCents == 0 {
		s.PayFiP.MaxCents = 10_000_000
	}
	if s.Payments.BatchMax == 0 {
		s.Payments.BatchMax = 1
		if s.Payments.BatchAllowed {
			s.Payments.BatchMax = 10
		}
	}
	if s.Accounts.PasswordMinLength == 0 {
		s.Accounts.PasswordMinLength = 8
	}
	if s.Reminders.DaysBefore == 0 {
		s.Reminders.DaysBefore = DefaultReminderDaysBefore
	}
	if d, err := time.ParseDuration(s.PayFiP.RetryDelay); err == nil && d >= 0 && d%time.Minute == 0 {
		s.PayFiP.RetryDelay = formatMinutes(int(d / time.Minute))
	}
	if s.Hosts.Aliases == nil {
		s.Hosts.Aliases = []string{}
	}
	if s.PayFiP.Endpoints.CallbackNetworks == nil {
		s.PayFiP.Endpoints.CallbackNetworks = []string{}
	}
	for i, n := range s.PayFiP.Endpoints.CallbackNetworks {
		s.PayFiP.Endpoints.CallbackNetworks[i] = strings.TrimSpace(n)
	}
}

// formatMinutes writes a delay as tenant.yaml does: "2h", "20m", "1h30m".
func formatMinutes(m int) string {
	switch {
	case m == 0:
		return "0m"
	case m%60 == 0:
		return fmt.Sprintf("%dh", m/60)
	case m > 60:
		return fmt.Sprintf("%dh%dm", m/60, m%60)
	}
	return fmt.Sprintf("%dm", m)
}

func (s *Settings) retryMinutes() int {
	d, _ := time.ParseDuration(s.PayFiP.RetryDelay)
	return int(d / time.Minute)
}

// AllHosts lists the primary host first, then the aliases.
func (s *Settings) AllHosts() []string {
	return append([]string{s.Hosts.Primary}, s.Hosts.Aliases...)
}

// Group is a set of settings changed together, each with its validation.
type Group string

// The groups. The identity group holds the names and host names (the slug
// never changes once created); status changes through Suspend and Resume.
const (
	GroupIdentity  Group = "identity"
	GroupBranding  Group = "branding"
	GroupContact   Group = "contact"
	GroupTexts     Group = "texts"
	GroupPayFiP    Group = "payfip"
	GroupPayments  Group = "payments"
	GroupAccounts  Group = "accounts"
	GroupFeatures  Group = "features"
	GroupReminders Group = "reminders"
)

// Groups lists every group, in the order of tenant.yaml.
func Groups() []Group {
	return []Group{GroupIdentity, GroupBranding, GroupContact, GroupTexts, GroupPayFiP, GroupPayments,
		GroupAccounts, GroupFeatures, GroupReminders}
}

// take copies g's settings from src into dst.
func (g Group) take(dst, src *Settings) error {
	switch g {
	case GroupIdentity:
		dst.Name, dst.ServiceLabel = src.Name, src.ServiceLabel
		dst.Hosts = Hosts{Primary: src.Hosts.Primary, Aliases: slices.Clone(src.Hosts.Aliases)}
	case GroupBranding:
		dst.Branding = src.Branding
		dst.Branding.LogoData = slices.Clone(src.Branding.LogoData)
	case GroupContact:
		dst.Contact = src.Contact
	case GroupTexts:
		dst.Texts = src.Texts
	case GroupPayFiP:
		dst.PayFiP = src.PayFiP
		dst.PayFiP.Endpoints.CallbackNetworks = slices.Clone(src.PayFiP.Endpoints.CallbackNetworks)
	case GroupPayments:
		dst.Payments = src.Payments
	case GroupAccounts:
		dst.Accounts = src.Accounts
	case GroupFeatures:
		dst.Features = src.Features
	case GroupReminders:
		dst.Reminders = src.Reminders
	default:
		return fmt.Errorf("tenant: unknown settings group %q", g)
	}
	return nil
}

// FieldError names the field that is wrong (and the file, for tenant.yaml).
type FieldError struct {
	File, Field, Problem string
}

func (e *FieldError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Problem)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Problem)
}

// FieldErrors returns the FieldErrors inside err (joined or wrapped).
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		walk(errors.Unwrap(e))
	}
	walk(err)
	return out
}

var (
	slugRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	numcliRe = regexp.MustCompile(`^[0-9]{6}$`)
	colorRe  = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	labelRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	dateRe   = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// Validate checks every group and the status; all problems are returned.
func (s *Settings) Validate() error {
	errs := []error{validateSlug(s.Slug), validateStatus(s.Status)}
	for _, g := range Groups() {
		errs = append(errs, ValidateGroup(g, s))
	}
	return errors.Join(errs...)
}

// ValidateGroup checks the settings of group g in s, naming each wrong
// field as tenant.yaml does ("payfip.numcli: must be exactly 6 digits").
// The console, the staff's screens, the command line and tenant.yaml all
// go through it. Checks against other communes (a host already used) are
// the Service's.
func ValidateGroup(g Group, s *Settings) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, a...)})
	}
	switch g {
	case GroupIdentity:
		if strings.TrimSpace(s.Name) == "" {
			bad("name", "is required")
		}
		if len(s.Name) > 200 {
			bad("name", "must not exceed 200 characters")
		}
		if len(s.ServiceLabel) > 200 {
			bad("service_label", "must not exceed 200 characters")
		}
		if s.Hosts.Primary == "" {
			bad("hosts.primary", "is required")
		}
		seen := map[string]bool{}
		for i, h := range s.AllHosts() {
			field := "hosts.primary"
			if i > 0 {
				field = fmt.Sprintf("hosts.aliases[%d]", i-1)
			}
			if h == "" && i == 0 {
				continue
			}
			if problem := hostProblem(h); problem != "" {
				bad(field, "%q %s", h, problem)
			}
			if seen[h] {
				bad(field, "host %q is listed twice", h)
			}
			seen[h] = true
		}
	case GroupBranding:
		validateColors(s, bad)
		if len(s.Branding.LogoData) > 0 {
			if typ, err := CheckLogo(s.Branding.LogoData); err != nil {
				bad("branding.logo", "%s", err.Error())
			} else if s.Branding.LogoType != typ {
				s.Branding.LogoType = typ
			}
		} else if s.Branding.LogoType != "" {
			s.Branding.LogoType = ""
		}
	case GroupContact:
		if s.Contact.Email == "" {
			bad("contact.email", "is required (the service receives residents' messages and requests)")
		} else if a, err := mail.ParseAddress(s.Contact.Email); err != nil || a.Address != s.Contact.Email {
			bad("contact.email", "%q is not an email address", s.Contact.Email)
		}
		if len(s.Contact.Phone) > 40 {
			bad("contact.phone", "must not exceed 40 characters")
		}
		if len(s.Contact.Hours) > 200 {
			bad("contact.hours", "must not exceed 200 characters")
		}
	case GroupTexts:
		if len(s.Texts.Welcome) > 2000 {
			bad("texts.welcome", "must not exceed 2000 characters")
		}
		if len(s.Texts.Notice) > 4000 {
			bad("texts.notice", "must not exceed 4000 characters")
		}
		from, okFrom := parseDay(s.Texts.NoticeFrom)
		until, okUntil := parseDay(s.Texts.NoticeUntil)
		if !okFrom {
			bad("texts.notice_from", "%q must be a date like 2026-03-01", s.Texts.NoticeFrom)
		}
		if !okUntil {
			bad("texts.notice_until", "%q must be a date like 2026-03-31", s.Texts.NoticeUntil)
		}
		if okFrom && okUntil && !from.IsZero() && !until.IsZero() && until.Before(from) {
			bad("texts.notice_until", "must not be before texts.notice_from")
		}
	case GroupPayFiP:
		validatePayFiP(s, bad)
	case GroupPayments:
		if s.Payments.BatchMax < 1 || s.Payments.BatchMax > 50 {
			bad("payments.batch_max", "must be between 1 and 50, got %d", s.Payments.BatchMax)
		}
		if !s.Payments.BatchAllowed && s.Payments.BatchMax > 1 {
			bad("payments.batch_max", "must be 1 when batch_allowed is false")
		}
	case GroupAccounts:
		if s.Accounts.ActivationMessages != "explicit" && s.Accounts.ActivationMessages != "neutral" {
			bad("accounts.activation_messages", "must be explicit or neutral, got %q", s.Accounts.ActivationMessages)
		}
		if s.Accounts.PasswordMinLength < 8 || s.Accounts.PasswordMinLength > 64 {
			bad("accounts.password_min_length", "must be between 8 (platform floor) and 64, got %d", s.Accounts.PasswordMinLength)
		}
	case GroupFeatures:
		// two switches: nothing to check
	case GroupReminders:
		if s.Reminders.DaysBefore < 1 || s.Reminders.DaysBefore > 60 {
			bad("reminders.days_before", "must be between 1 and 60 days, got %d", s.Reminders.DaysBefore)
		}
	default:
		return fmt.Errorf("tenant: unknown settings group %q", g)
	}
	return errors.Join(errs...)
}

func validateSlug(slug string) error {
	switch {
	case slug == "":
		return &FieldError{Field: "slug", Problem: "is required"}
	case !slugRe.MatchString(slug):
		return &FieldError{Field: "slug", Problem: fmt.Sprintf("%q must be lower-case letters, digits and dashes (no capitals, spaces or accents)", slug)}
	}
	return nil
}

func validateStatus(status string) error {
	if status != StatusActive && status != StatusSuspended {
		return &FieldError{Field: "status", Problem: fmt.Sprintf("must be active or suspended, got %q", status)}
	}
	return nil
}

// hostProblem says what is wrong with a host name ("" if nothing): lower
// case ASCII labels only, an international name written in punycode
// (xn--…), no port, no trailing dot, no spaces.
func hostProblem(h string) string {
	switch {
	case strings.ContainsAny(h, " \t\r\n"):
		return "must not contain spaces"
	case strings.Contains(h, ":"):
		return "must not carry a port (or be an IPv6 address)"
	case strings.HasSuffix(h, "."):
		return "must not end with a dot"
	case strings.ToLower(h) != h:
		return "must be lower case"
	case len(h) > 253:
		return "is longer than 253 characters"
	}
	for _, r := range h {
		if r > 127 {
			ascii, err := idna.Lookup.ToASCII(h)
			if err == nil {
				return fmt.Sprintf("must be written in punycode (%s)", ascii)
			}
			return "must be written in ASCII (international names in punycode, xn--…)"
		}
	}
	for _, label := range strings.Split(h, ".") {
		if !labelRe.MatchString(label) {
			return "is not a valid host name (letters, digits and dashes between dots, no port)"
		}
		if strings.HasPrefix(label, "xn--") {
			if _, err := idna.Lookup.ToUnicode(label); err != nil {
				return "holds a punycode label that does not decode"
			}
		}
	}
	return ""
}

func parseDay(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, true
	}
	if !dateRe.MatchString(s) {
		return time.Time{}, false
	}
	d, err := time.Parse("2006-01-02", s)
	return d, err == nil
}

// TextOnPrimary is the colour of the text the layouts write on the
// primary colour (the banner, primary buttons, the current tab): white.
// Links are written in the primary colour on white, the same pair.
const TextOnPrimary = "#ffffff"

// MinTextContrast is WCAG 2 AA for normal text; MinUIContrast is its
// minimum for user interface components (the accent draws focus rings).
const (
	MinTextContrast = 4.5
	MinUIContrast   = 3.0
)

func validateColors(s *Settings, bad func(field, format string, a ...any)) {
	p, a := s.Branding.Colors.Primary, s.Branding.Colors.Accent
	if !colorRe.MatchString(p) {
		bad("branding.colors.primary", "%q must be a colour like #1d4e89", p)
	} else if r := Contrast(p, TextOnPrimary); r < MinTextContrast {
		bad("branding.colors.primary", "white text on %s has a contrast of %.2f:1; WCAG AA requires at least 4.5:1 (choose a darker colour)", p, math.Floor(r*100)/100)
	}
	if !colorRe.MatchString(a) {
		bad("branding.colors.accent", "%q must be a colour like #b35900", a)
	} else if r := Contrast(a, "#ffffff"); r < MinUIContrast {
		bad("branding.colors.accent", "%s on white has a contrast of %.2f:1; focus outlines need at least 3:1 (choose a darker colour)", a, math.Floor(r*100)/100)
	}
}

// Contrast is the WCAG 2 contrast ratio of two #rrggbb colours (1 to 21).
func Contrast(c1, c2 string) float64 {
	l1, l2 := luminance(c1), luminance(c2)
	if l1 < l2 {
		l1, l2 = l2, l1
	}
	return (l1 + 0.05) / (l2 + 0.05)
}

func luminance(hex string) float64 {
	if !colorRe.MatchString(hex) {
		return 0
	}
	ch := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[i:i+2], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(1) + 0.7152*ch(3) + 0.0722*ch(5)
}

func validatePayFiP(s *Settings, bad func(field, format string, a ...any)) {
	p := &s.PayFiP
	if !numcliRe.MatchString(p.Numcli) {
		bad("payfip.numcli", "%q must be exactly 6 digits (write it quoted to keep leading zeros, e.g. \"004200\")", p.Numcli)
	}
	if p.Mode != "ws" && p.Mode != "classic" {
		bad("payfip.mode", "must be ws or classic, got %q", p.Mode)
	}
	if !strings.Contains("TXWA", p.Saisie) || len(p.Saisie) != 1 {
		bad("payfip.saisie", "must be T (test), X (activation), W (production, ws) or A (production, classic), got %q", p.Saisie)
	}
	if p.MinCents < 100 {
		bad("payfip.min_cents", "must be at least 100 (1 €), got %d", p.MinCents)
	}
	if p.MaxCents < p.MinCents || p.MaxCents > 10_000_000 {
		bad("payfip.max_cents", "must be between min_cents and 10000000 (100 000 €), got %d", p.MaxCents)
	}
	if d, err := time.ParseDuration(p.RetryDelay); err != nil || d < 0 || d > 48*time.Hour || d%time.Minute != 0 {
		bad("payfip.retry_delay", "%q must be a duration in minutes between 0 and 48h, such as 2h or 20m", p.RetryDelay)
	}
	for _, e := range []struct{ field, u string }{
		{"payfip.endpoints.classic_url", p.Endpoints.ClassicURL},
		{"payfip.endpoints.ws_payment_url", p.Endpoints.WSPaymentURL},
		{"payfip.endpoints.soap_url", p.Endpoints.SOAPURL},
	} {
		if u, err := url.Parse(e.u); e.u != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
			bad(e.field, "%q must be an absolute http(s) URL", e.u)
		}
	}
	for i, n := range p.Endpoints.CallbackNetworks {
		if _, err := payfip.ParseNetworks([]string{n}); err != nil {
			bad(fmt.Sprintf("payfip.endpoints.callback_networks[%d]", i), "%q must be a CIDR (192.0.2.0/24) or an IP address", n)
		}
	}
	if len(p.Endpoints.CallbackNetworks) > 0 && p.Endpoints.ClassicURL == "" {
		// Only the commune's own PayFiP may call back from other networks
		// than the deployment's: never widen the trust for the shared one.
		bad("payfip.endpoints.callback_networks", "is allowed only with payfip.endpoints.classic_url (the commune's own PayFiP)")
	}
}

// Fields flattens s to one string per field, named as in tenant.yaml: what
// audit entries, apply conflicts and diffs compare. The logo is its
// SHA-256 (and type), never its bytes.
func (s *Settings) Fields() map[string]string {
	b := strconv.FormatBool
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	logo := ""
	if len(s.Branding.LogoData) > 0 {
		sum := sha256.Sum256(s.Branding.LogoData)
		logo = s.Branding.LogoType + " sha256:" + hex.EncodeToString(sum[:8])
	}
	return map[string]string{
		"slug":                               s.Slug,
		"name":                               s.Name,
		"service_label":                      s.ServiceLabel,
		"status":                             s.Status,
		"hosts.primary":                      s.Hosts.Primary,
		"hosts.aliases":                      strings.Join(s.Hosts.Aliases, ", "),
		"branding.logo":                      logo,
		"branding.colors.primary":            s.Branding.Colors.Primary,
		"branding.colors.accent":             s.Branding.Colors.Accent,
		"contact.phone":                      s.Contact.Phone,
		"contact.hours":                      s.Contact.Hours,
		"contact.email":                      s.Contact.Email,
		"texts.welcome":                      s.Texts.Welcome,
		"texts.notice":                       s.Texts.Notice,
		"texts.notice_from":                  s.Texts.NoticeFrom,
		"texts.notice_until":                 s.Texts.NoticeUntil,
		"payfip.numcli":                      s.PayFiP.Numcli,
		"payfip.mode":                        s.PayFiP.Mode,
		"payfip.saisie":                      s.PayFiP.Saisie,
		"payfip.min_cents":                   i(s.PayFiP.MinCents),
		"payfip.max_cents":                   i(s.PayFiP.MaxCents),
		"payfip.retry_delay":                 s.PayFiP.RetryDelay,
		"payfip.endpoints.classic_url":       s.PayFiP.Endpoints.ClassicURL,
		"payfip.endpoints.ws_payment_url":    s.PayFiP.Endpoints.WSPaymentURL,
		"payfip.endpoints.soap_url":          s.PayFiP.Endpoints.SOAPURL,
		"payfip.endpoints.callback_networks": strings.Join(s.PayFiP.Endpoints.CallbackNetworks, ", "),
		"payments.batch_allowed":             b(s.Payments.BatchAllowed),
		"payments.batch_max":                 i(int64(s.Payments.BatchMax)),
		"payments.suspended":                 b(s.Payments.Suspended),
		"accounts.activation_messages":       s.Accounts.ActivationMessages,
		"accounts.password_min_length":       i(int64(s.Accounts.PasswordMinLength)),
		"features.paperless":                 b(s.Features.Paperless),
		"features.invoice_alerts":            b(s.Features.InvoiceAlerts),
		"reminders.enabled":                  b(s.Reminders.Enabled),
		"reminders.days_before":              i(int64(s.Reminders.DaysBefore)),
	}
}

// Change is one field's value before and after.
type Change struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Diff lists the fields whose values differ, by field name.
func Diff(before, after map[string]string) []Change {
	var out []Change
	for k, a := range after {
		if b := before[k]; b != a {
			out = append(out, Change{Field: k, Before: b, After: a})
		}
	}
	for k, b := range before {
		if _, ok := after[k]; !ok {
			out = append(out, Change{Field: k, Before: b})
		}
	}
	slices.SortFunc(out, func(x, y Change) int { return strings.Compare(x.Field, y.Field) })
	return out
}
