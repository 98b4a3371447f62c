package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portail/pkg/config"
)

func TestDefaultsLoad(t *testing.T) {
	c, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":8080" || c.HTTP.ReadHeaderTimeout != 5*time.Second || c.Security.RememberMe != 720*time.Hour {
		t.Fatalf("defaults: %+v", c.HTTP)
	}
}

func writeFile(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "portail.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileThenEnvironmentOverride(t *testing.T) {
	p := writeFile(t, "http:\n  addr: \":9999\"\n  trusted_proxies: [\"10.0.0.0/8\"]\ndatabase:\n  url: postgres://file\n")
	t.Setenv("PORTAIL_DATABASE_URL", "postgres://env")
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":9999" || c.Database.URL != "postgres://env" || len(c.HTTP.TrustedProxies) != 1 {
		t.Fatalf("got addr %q url %q proxies %v", c.HTTP.Addr, c.Database.URL, c.HTTP.TrustedProxies)
	}
}

func TestCallbackNetworksFromFileAndEnvironment(t *testing.T) {
	c, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.PayFiP.CallbackNetworks) != 0 {
		t.Fatalf("default callback networks %v, want none", c.PayFiP.CallbackNetworks)
	}
	p := writeFile(t, "payfip:\n  callback_networks: [\"192.0.2.0/24\", \"2001:db8::1\"]\n")
	if c, err = config.Load(p); err != nil || len(c.PayFiP.CallbackNetworks) != 2 {
		t.Fatalf("from file: %v %v", c.PayFiP.CallbackNetworks, err)
	}
	t.Setenv("PORTAIL_PAYFIP_CALLBACK_NETWORKS", "198.51.100.0/24,203.0.113.7")
	if c, err = config.Load(p); err != nil || len(c.PayFiP.CallbackNetworks) != 2 || c.PayFiP.CallbackNetworks[1] != "203.0.113.7" {
		t.Fatalf("from environment: %v %v", c.PayFiP.CallbackNetworks, err)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := map[string]struct {
		file string
		env  [2]string
		key  string
	}{
		"unknown key in file":   {file: "http:\n  adress: \":1\"\n", key: "http.adress"},
		"bad duration":          {file: "http:\n  read_timeout: soon\n", key: "read_timeout"},
		"bad scheme":            {file: "http:\n  public_scheme: ftp\n", key: "http.public_scheme"},
		"bad smtp security":     {file: "smtp:\n  security: ssl3\n", key: "smtp.security"},
		"remember too long":     {file: "security:\n  remember_me: 2000h\n", key: "security.remember_me"},
		"unknown env variable":  {env: [2]string{"PORTAIL_DATABSE_URL", "x"}, key: "PORTAIL_DATABSE_URL"},
		"bad env value":         {env: [2]string{"PORTAIL_HTTP_IDLE_TIMEOUT", "-5s"}, key: "http.idle_timeout"},
		"bad callback network":  {file: "payfip:\n  callback_networks: [\"192.0.2.0/24\", \"payfip.gouv.fr\"]\n", key: "payfip.callback_networks"},
		"bad callback env":      {env: [2]string{"PORTAIL_PAYFIP_CALLBACK_NETWORKS", "192.0.2.0/33"}, key: "payfip.callback_networks"},
		"bad metrics address":   {env: [2]string{"PORTAIL_METRICS_ADDR", "9091"}, key: "metrics.addr"},
		"metrics on the portal": {file: "http:\n  addr: \":8080\"\nmetrics:\n  addr: \":8080\"\n", key: "metrics.addr"},
		"bad retention":         {file: "privacy:\n  messages: 2ans\n", key: "messages"},
		"notice too long":       {env: [2]string{"PORTAIL_PRIVACY_INACTIVE_NOTICE", "4y"}, key: "privacy.inactive_notice"},
		"audit of payments":     {env: [2]string{"PORTAIL_PRIVACY_AUDIT_PAYMENTS", "30d"}, key: "privacy.audit_payments"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := ""
			if tc.file != "" {
				p = writeFile(t, tc.file)
			}
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			_, err := config.Load(p)
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %v does not name %s", err, tc.key)
			}
		})
	}
}

func TestMetricsAddressIsOptional(t *testing.T) {
	c, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Addr != "" {
		t.Fatalf("metrics.addr defaults to %q, want empty (not served)", c.Metrics.Addr)
	}
	t.Setenv("PORTAIL_METRICS_ADDR", "127.0.0.1:9091")
	if c, err = config.Load(""); err != nil || c.Metrics.Addr != "127.0.0.1:9091" {
		t.Fatalf("from environment: %q %v", c.Metrics.Addr, err)
	}
}

func TestProductionNeedsEveryService(t *testing.T) {
	c, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	err = c.RequireProduction()
	for _, key := range []string{"database.url", "s3.endpoint", "s3.access_key", "smtp.host"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("missing %s not reported: %v", key, err)
		}
	}
}

func TestPublicBaseURL(t *testing.T) {
	h := config.HTTP{PublicScheme: "https"}
	if got := h.PublicBaseURL("sistec.fr"); got != "https://sistec.fr" {
		t.Fatal(got)
	}
	h = config.HTTP{PublicScheme: "http", PublicPort: "8080"}
	if got := h.PublicBaseURL("sistec.localhost"); got != "http://sistec.localhost:8080" {
		t.Fatal(got)
	}
}

// TestRetentionPeriodsInDaysAndYears: privacy periods are written in days
// and years (a year is 365 days) as well as Go durations.
func TestRetentionPeriodsInDaysAndYears(t *testing.T) {
	c, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	if p := c.Privacy; p.InactiveAfter != 3*365*day || p.InactiveNotice != 30*day || p.Messages != 2*365*day ||
		p.Audit != 365*day || p.AuditPayments != 10*365*day || p.FinishedJobs != 7*day {
		t.Errorf("defaults: %+v", p)
	}
	t.Setenv("PORTAIL_PRIVACY_MESSAGES", "90d")
	t.Setenv("PORTAIL_PRIVACY_AUDIT", "2160h")
	c, err = config.Load(writeFile(t, "privacy:\n  inactive_after: 5y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Privacy.InactiveAfter != 5*365*day || c.Privacy.Messages != 90*day || c.Privacy.Audit != 90*day {
		t.Errorf("overrides: %+v", c.Privacy)
	}
}
