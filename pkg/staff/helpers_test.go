package staff

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pquerna/otp/totp"

	"portail/pkg/auth"
	"portail/pkg/dbtest"
	"portail/pkg/jobs"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	ctx   context.Context
	db    *sqlx.DB
	clock *clock
	svc   *Service
	sess  *Sessions
	a, b  *tenant.Tenant
}

const goodPassword = "Velo-Rouge-Sous-La-Pluie"

func newEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	client, err := jobs.New(d, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Mid-step, so that the codes of "now" stay valid while a test runs.
	c := &clock{t: time.Date(2026, 11, 26, 10, 0, 15, 0, time.UTC)}
	e := &env{t: t, ctx: context.Background(), db: d, clock: c}
	e.svc = &Service{
		DB:     d,
		Hasher: auth.NewHasherWithParams(4, auth.HashParams{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}),
		Outbox: mail.NewOutbox(client),
		Links:  func(t *tenant.Tenant, path string) string { return "https://" + t.PrimaryHost + path },
		Now:    c.Now,
	}
	e.sess = &Sessions{DB: d, Now: c.Now}
	e.a = e.newTenant("sistec", "MAIRIE DE SISTEC", "sistec.example.fr")
	e.b = e.newTenant("autre", "MAIRIE D'AUTREVILLE", "autreville.example.fr")
	return e
}

func (e *env) newTenant(slug, name, host string) *tenant.Tenant {
	e.t.Helper()
	var id int64
	if err := e.db.Get(&id, `INSERT INTO tenants (slug, name, primary_host, payfip_numcli) VALUES ($1, $2, $3, '123456') RETURNING id`,
		slug, name, host); err != nil {
		e.t.Fatal(err)
	}
	return &tenant.Tenant{ID: id, Slug: slug, Name: name, PrimaryHost: host, Status: "active", PasswordMinLength: 8}
}

func (e *env) member(t *tenant.Tenant, email, role string) *Member {
	e.t.Helper()
	m, err := e.svc.CreateMember(e.ctx, t, email, "Agent "+strings.Split(email, "@")[0], goodPassword, role)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	e.must(e.db.Get(&n, q, args...))
	return n
}

// code is the TOTP code of secret at the clock's time plus d.
func (e *env) code(secret string, d time.Duration) string {
	e.t.Helper()
	c, err := totp.GenerateCodeCustom(secret, e.clock.Now().Add(d), totpOpts)
	e.must(err)
	return c
}

// enrol gives the member a second factor and returns its secret and
// recovery codes.
func (e *env) enrol(t *tenant.Tenant, m *Member) (string, []string) {
	e.t.Helper()
	secret, err := NewTOTPSecret(m.Email)
	e.must(err)
	codes, err := e.svc.ConfirmTOTP(e.ctx, t, m.ID, secret, e.code(secret, 0))
	e.must(err)
	return secret, codes
}

// lastEmail is the last email enqueued to "to", decoded.
func (e *env) lastEmail(to string) mail.Email {
	e.t.Helper()
	var raws []string
	e.must(e.db.Select(&raws, `SELECT args::text FROM river_job WHERE kind = 'send_email' ORDER BY id DESC`))
	for _, r := range raws {
		var a mail.SendArgs
		e.must(json.Unmarshal([]byte(r), &a))
		if a.Email.To == to {
			return a.Email
		}
	}
	e.t.Fatalf("no email to %s", to)
	return mail.Email{}
}

// tokenIn is the token at the end of an emailed link on t's primary host.
func (e *env) tokenIn(em mail.Email, t *tenant.Tenant, prefix string) string {
	e.t.Helper()
	link, _ := em.Data["Link"].(string)
	want := "https://" + t.PrimaryHost + prefix
	if !strings.HasPrefix(link, want) {
		e.t.Fatalf("link %q, want prefix %q", link, want)
	}
	return strings.TrimPrefix(link, want)
}
