// Package apptest runs the whole portal for end-to-end tests, on real
// services: a fresh PostgreSQL database, the S3 server and the SMTP catcher
// over the network, the demo communes, job workers polling fast.
package apptest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/app"
	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/dbtest"
	"portail/pkg/demo"
	"portail/pkg/devenv"
	"portail/pkg/tenant"
)

// Env is a running portal.
type Env struct {
	App    *app.App
	Mail   *devenv.MailCatcher
	S3     *devenv.S3Server
	PayFiP *devenv.PayFiPSimulator
	S3Dir  string // the S3 server's files: tests tamper with stored objects there
	Port   int
	// MetricsURL is the portal's /metrics, on its own listener.
	MetricsURL string
	t          testing.TB
}

// Options adjust the configuration before the portal starts.
type Options struct {
	Config func(*config.Config)
	Now    func() time.Time
	Demo   bool // load tenants/*/demo (payers, invoices)
	// DemoStaff creates each commune's demo staff (demo.StaffOf, password
	// demo.StaffPassword), as `make run` does.
	DemoStaff bool
	// DB is the fresh database to run on (e.g. dbtest.NewCounted's, to
	// count a page's queries); nil: dbtest.New.
	DB *sqlx.DB
	// NoPeriodicJobs runs no periodic job (reconciliation, purge,
	// reminders) beside the test: for tests that count a page's statements.
	NoPeriodicJobs bool
	// Log receives the portal's log (text format, debug level) when set,
	// for tests of what is logged; PORTAIL_TEST_LOG=1 shows it on stderr.
	Log io.Writer
}

// RepoDir is the repository's root, found from this file's location.
func RepoDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Start runs the portal for t; everything stops at cleanup.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := o.DB
	if d == nil {
		d = dbtest.New(t)
	}
	dir := t.TempDir()

	s3, err := devenv.StartS3(filepath.Join(dir, "s3"), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s3.Close() })
	mc, err := devenv.StartMailCatcher(filepath.Join(dir, "mail"), "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })

	pf, err := devenv.StartPayFiP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Close() })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port

	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.PublicScheme, cfg.HTTP.PublicPort = "http", fmt.Sprint(port)
	cfg.S3.Endpoint, cfg.S3.AccessKey, cfg.S3.SecretKey, cfg.S3.Region = s3.URL, s3.AccessKey, s3.SecretKey, "us-east-1"
	host, p, _ := net.SplitHostPort(mc.SMTPAddr)
	cfg.SMTP.Host, cfg.SMTP.Security = host, "none"
	fmt.Sscan(p, &cfg.SMTP.Port)
	cfg.HTTP.ShutdownTimeout = 5 * time.Second
	pf.Configure(&cfg)
	if o.Config != nil {
		o.Config(&cfg)
	}

	bs, err := blob.New(ctx, cfg.S3)
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	files, err := tenant.LoadDir(filepath.Join(RepoDir(), "tenants"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.NewStore(d).Apply(ctx, files); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch {
	case o.Log != nil:
		log = slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	case os.Getenv("PORTAIL_TEST_LOG") != "":
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a, err := app.New(ctx, cfg, d, log, app.Options{JobPollInterval: 50 * time.Millisecond, Now: o.Now, NoPeriodicJobs: o.NoPeriodicJobs})
	if err != nil {
		t.Fatal(err)
	}
	if o.Demo {
		if err := demo.Load(ctx, a, filepath.Join(RepoDir(), "tenants"), log); err != nil {
			t.Fatal(err)
		}
	}
	if o.DemoStaff {
		if err := demo.LoadStaff(ctx, a, log); err != nil {
			t.Fatal(err)
		}
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go a.ServeMetrics(ctx, ml)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("apptest: portal did not stop")
		}
	})
	return &Env{App: a, Mail: mc, S3: s3, PayFiP: pf, S3Dir: filepath.Join(dir, "s3"), Port: port,
		MetricsURL: "http://" + ml.Addr().String() + "/metrics", t: t}
}

// URL is an absolute URL of the portal on host (e.g. "sistec.localhost").
func (e *Env) URL(host, path string) string {
	return fmt.Sprintf("http://%s:%d%s", host, e.Port, path)
}

// Client is an HTTP client with its own cookie jar that reaches *.localhost
// on loopback and does not follow redirects.
func (e *Env) Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, network, "127.0.0.1:"+port)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// WaitMail waits for an email to "to" whose subject contains subject and
// whose text contains every one of texts (e.g. a link prefix).
func (e *Env) WaitMail(to, subject string, texts ...string) devenv.CaughtMessage {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := e.Mail.WaitFor(ctx, func(m devenv.CaughtMessage) bool {
		if !strings.Contains(m.Subject, subject) {
			return false
		}
		for _, t := range texts {
			if !strings.Contains(m.Text, t) {
				return false
			}
		}
		for _, r := range m.To {
			if strings.EqualFold(r, to) {
				return true
			}
		}
		return false
	})
	if err != nil {
		e.t.Fatalf("no email to %s with subject %q: %v (caught: %d)", to, subject, err, len(e.Mail.Messages()))
	}
	return m
}

// LinkIn finds the first link of the portal starting with prefix in an email's text.
func LinkIn(t testing.TB, m devenv.CaughtMessage, prefix string) string {
	t.Helper()
	for _, f := range strings.Fields(m.Text) {
		f = strings.Trim(f, "<>")
		if strings.HasPrefix(f, prefix) {
			return f
		}
	}
	t.Fatalf("no link starting with %s in email %q:\n%s", prefix, m.Subject, m.Text)
	return ""
}

// PostForm posts a form as a browser of the same origin would.
func PostForm(c *http.Client, u string, form url.Values) (*http.Response, string, error) {
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b), nil
}

// Get fetches a URL.
func Get(c *http.Client, u string) (*http.Response, string, error) {
	res, err := c.Get(u)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b), nil
}
