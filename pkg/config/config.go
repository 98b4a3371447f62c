// Package config loads the typed configuration: the embedded defaults
// (configs/portail.yaml), an optional file, then PORTAIL_* environment variables.
// It is the only package that knows viper.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"portail/configs"
	"portail/pkg/payfip"
)

// Config is the whole configuration of the program.
type Config struct {
	HTTP     HTTP     `mapstructure:"http"`
	Database Database `mapstructure:"database"`
	S3       S3       `mapstructure:"s3"`
	SMTP     SMTP     `mapstructure:"smtp"`
	PayFiP   PayFiP   `mapstructure:"payfip"`
	Tenants  Tenants  `mapstructure:"tenants"`
	Operator Operator `mapstructure:"operator"`
	Metrics  Metrics  `mapstructure:"metrics"`
	Security Security `mapstructure:"security"`
	Process  Process  `mapstructure:"process"`
	Log      Log      `mapstructure:"log"`
	Dev      Dev      `mapstructure:"dev"`
	Privacy  Privacy  `mapstructure:"privacy"`
}

type HTTP struct {
	Addr              string        `mapstructure:"addr"`
	PublicScheme      string        `mapstructure:"public_scheme"`
	PublicPort        string        `mapstructure:"public_port"`
	TrustedProxies    []string      `mapstructure:"trusted_proxies"`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	ShutdownTimeout   time.Duration `mapstructure:"shutdown_timeout"`
}

type Database struct {
	URL          string `mapstructure:"url"`
	MaxOpenConns int    `mapstructure:"max_open_conns"`
}

type S3 struct {
	Endpoint     string `mapstructure:"endpoint"`
	Region       string `mapstructure:"region"`
	Bucket       string `mapstructure:"bucket"`
	AccessKey    string `mapstructure:"access_key"`
	SecretKey    string `mapstructure:"secret_key"`
	PathStyle    bool   `mapstructure:"path_style"`
	ChecksumMode string `mapstructure:"checksum_mode"`
}

type SMTP struct {
	Host     string `mapstructure:"host"`
	Port     int    `mapstructure:"port"`
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	Security string `mapstructure:"security"`
	From     string `mapstructure:"from"`
}

type PayFiP struct {
	ClassicURL   string        `mapstructure:"classic_url"`
	WSPaymentURL string        `mapstructure:"ws_payment_url"`
	SOAPURL      string        `mapstructure:"soap_url"`
	Timeout      time.Duration `mapstructure:"timeout"`
	// CallbackNetworks are PayFiP's source networks (CIDRs or addresses):
	// a classic result changes a payment only when it comes from them.
	CallbackNetworks []string `mapstructure:"callback_networks"`
}

type Tenants struct {
	Dir string `mapstructure:"dir"`
}

type Operator struct {
	Host string `mapstructure:"host"`
}

// Metrics is the Prometheus listener: its own address, never the portal's.
type Metrics struct {
	Addr string `mapstructure:"addr"` // "" disables it
}

type Security struct {
	SessionIdle          time.Duration `mapstructure:"session_idle"`
	SessionAbsolute      time.Duration `mapstructure:"session_absolute"`
	RememberMe           time.Duration `mapstructure:"remember_me"`
	StaffSessionIdle     time.Duration `mapstructure:"staff_session_idle"`
	StaffSessionAbsolute time.Duration `mapstructure:"staff_session_absolute"`
	Argon2MaxConcurrent  int           `mapstructure:"argon2_max_concurrent"`
}

// Privacy is how long personal data is kept. Durations also accept days
// and years ("30d", "3y": a year is 365 days).
type Privacy struct {
	// Accounts nobody logged into for InactiveAfter are closed;
	// InactiveNotice before that, their resident is warned by email.
	InactiveAfter  time.Duration `mapstructure:"inactive_after"`
	InactiveNotice time.Duration `mapstructure:"inactive_notice"`
	// Messages: after the last message of the resident's exchange.
	Messages time.Duration `mapstructure:"messages"`
	// Audit entries; those about payments are kept AuditPayments.
	Audit         time.Duration `mapstructure:"audit"`
	AuditPayments time.Duration `mapstructure:"audit_payments"`
	// FinishedJobs: completed, cancelled and discarded River jobs (their
	// arguments hold addresses and names).
	FinishedJobs time.Duration `mapstructure:"finished_jobs"`
}

type Process struct {
	MemoryLimitMB int `mapstructure:"memory_limit_mb"`
}

type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

type Dev struct {
	DataDir     string `mapstructure:"data_dir"`
	PGPort      int    `mapstructure:"pg_port"`
	S3Addr      string `mapstructure:"s3_addr"`
	SMTPAddr    string `mapstructure:"smtp_addr"`
	MailWebAddr string `mapstructure:"mail_web_addr"`
	PayFiPAddr  string `mapstructure:"payfip_addr"`
	// MetricsAddr is metrics.addr under `portail dev` when that is empty.
	MetricsAddr string `mapstructure:"metrics_addr"`
}

// Load reads the defaults, then file (if not empty), then the environment.
// An unknown key or an invalid value is an error naming the key.
func Load(file string) (Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(configs.Defaults)); err != nil {
		return Config{}, fmt.Errorf("config: embedded defaults: %w", err)
	}
	known := map[string]bool{}
	for _, k := range v.AllKeys() {
		known[k] = true
	}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		user := viper.New()
		user.SetConfigType("yaml")
		if err := user.ReadConfig(bytes.NewReader(raw)); err != nil {
			return Config{}, fmt.Errorf("config: %s: %w", file, err)
		}
		for _, k := range user.AllKeys() {
			if !known[k] {
				return Config{}, fmt.Errorf("config: %s: unknown key %q", file, k)
			}
		}
		if err := v.MergeConfigMap(user.AllSettings()); err != nil {
			return Config{}, fmt.Errorf("config: %s: %w", file, err)
		}
	}
	v.SetEnvPrefix("PORTAIL")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "PORTAIL_") || strings.HasPrefix(name, "PORTAIL_TEST_") {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(name, "PORTAIL_"))
		if !knownEnv(known, key) {
			return Config{}, fmt.Errorf("config: environment variable %s matches no configuration key", name)
		}
	}

	var c Config
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			longDurationHook,
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func knownEnv(known map[string]bool, key string) bool {
	for k := range known {
		if strings.ReplaceAll(k, ".", "_") == key {
			return true
		}
	}
	return false
}

// validate checks values that are wrong in every mode.
func (c Config) validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.HTTP.PublicScheme != "http" && c.HTTP.PublicScheme != "https" {
		bad("http.public_scheme", "must be http or https, got %q", c.HTTP.PublicScheme)
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "%v", err)
	}
	if c.Metrics.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Addr); err != nil {
			bad("metrics.addr", "%v", err)
		} else if c.Metrics.Addr == c.HTTP.Addr {
			bad("metrics.addr", "must differ from http.addr: metrics are never served on the portal's listener")
		}
	}
	for key, d := range map[string]time.Duration{
		"http.read_header_timeout":        c.HTTP.ReadHeaderTimeout,
		"http.read_timeout":               c.HTTP.ReadTimeout,
		"http.write_timeout":              c.HTTP.WriteTimeout,
		"http.idle_timeout":               c.HTTP.IdleTimeout,
		"security.session_idle":           c.Security.SessionIdle,
		"security.session_absolute":       c.Security.SessionAbsolute,
		"security.remember_me":            c.Security.RememberMe,
		"security.staff_session_idle":     c.Security.StaffSessionIdle,
		"security.staff_session_absolute": c.Security.StaffSessionAbsolute,
		"payfip.timeout":                  c.PayFiP.Timeout,
		"privacy.inactive_after":          c.Privacy.InactiveAfter,
		"privacy.inactive_notice":         c.Privacy.InactiveNotice,
		"privacy.messages":                c.Privacy.Messages,
		"privacy.audit":                   c.Privacy.Audit,
		"privacy.audit_payments":          c.Privacy.AuditPayments,
		"privacy.finished_jobs":           c.Privacy.FinishedJobs,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration")
		}
	}
	if c.Security.RememberMe > 30*24*time.Hour {
		bad("security.remember_me", "at most 720h (30 days)")
	}
	if c.Security.StaffSessionIdle > c.Security.SessionIdle {
		bad("security.staff_session_idle", "must not exceed security.session_idle (staff sessions are the shorter)")
	}
	if c.Privacy.InactiveNotice >= c.Privacy.InactiveAfter {
		bad("privacy.inactive_notice", "must be shorter than privacy.inactive_after")
	}
	if c.Privacy.AuditPayments < c.Privacy.Audit {
		bad("privacy.audit_payments", "must not be shorter than privacy.audit")
	}
	if c.Security.Argon2MaxConcurrent < 0 {
		bad("security.argon2_max_concurrent", "must be 0 (one per CPU core) or more")
	}
	if c.Process.MemoryLimitMB < 0 {
		bad("process.memory_limit_mb", "must be 0 (no limit) or more")
	}
	if c.Database.MaxOpenConns < 1 {
		bad("database.max_open_conns", "must be at least 1")
	}
	switch c.SMTP.Security {
	case "none", "starttls", "tls":
	default:
		bad("smtp.security", "must be none, starttls or tls, got %q", c.SMTP.Security)
	}
	switch c.S3.ChecksumMode {
	case "when_required", "when_supported":
	default:
		bad("s3.checksum_mode", "must be when_required or when_supported, got %q", c.S3.ChecksumMode)
	}
	for key, u := range map[string]string{
		"payfip.classic_url": c.PayFiP.ClassicURL, "payfip.ws_payment_url": c.PayFiP.WSPaymentURL, "payfip.soap_url": c.PayFiP.SOAPURL,
	} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(key, "must be an absolute http(s) URL, got %q", u)
		}
	}
	if _, err := payfip.ParseNetworks(c.PayFiP.CallbackNetworks); err != nil {
		bad("payfip.callback_networks", "%v", err)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	return errors.Join(errs...)
}

// RequireProduction checks what `portail serve` needs from outside: every
// external service must be configured.
func (c Config) RequireProduction() error {
	var errs []error
	missing := func(key, val string) {
		if strings.TrimSpace(val) == "" {
			errs = append(errs, fmt.Errorf("config: %s is required (env PORTAIL_%s)", key, strings.ToUpper(strings.ReplaceAll(key, ".", "_"))))
		}
	}
	missing("database.url", c.Database.URL)
	missing("s3.endpoint", c.S3.Endpoint)
	missing("s3.bucket", c.S3.Bucket)
	missing("s3.access_key", c.S3.AccessKey)
	missing("s3.secret_key", c.S3.SecretKey)
	missing("smtp.host", c.SMTP.Host)
	missing("smtp.from", c.SMTP.From)
	return errors.Join(errs...)
}

// PublicBaseURL is the absolute base URL of a host, used for emailed links.
func (h HTTP) PublicBaseURL(host string) string {
	if h.PublicPort != "" {
		host = net.JoinHostPort(host, h.PublicPort)
	}
	return h.PublicScheme + "://" + host
}

// longDurationHook reads "30d" and "3y" (a year is 365 days) besides Go
// durations: retention periods are counted in days and years.
func longDurationHook(from, to reflect.Type, data any) (any, error) {
	str, ok := data.(string)
	if !ok || to != reflect.TypeOf(time.Duration(0)) || len(str) < 2 {
		return data, nil
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'y': 365 * 24 * time.Hour}[str[len(str)-1]]
	if unit == 0 {
		return data, nil
	}
	n, err := strconv.Atoi(str[:len(str)-1])
	if err != nil || n < 0 || n > 100*365 {
		return nil, fmt.Errorf("invalid duration %q (e.g. 30d, 3y, 12h)", str)
	}
	return time.Duration(n) * unit, nil
}
