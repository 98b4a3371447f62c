package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/config"
	"portail/pkg/dbtest"
	"portail/pkg/devenv"
	"portail/pkg/jobs"
	"portail/pkg/mail"
	"portail/pkg/paris"
	"portail/pkg/payfip"
	"portail/pkg/payfip/sim"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// sourceBrowser marks, in hits, a classic result that came from outside
// PayFiP's networks (the payer's browser).
const sourceBrowser = "browser"

// Addresses a classic result may come from in these tests: the simulator's
// (in PayFiP's networks) and this machine's usual one (a browser, curl).
var (
	payfipAddr  = netip.MustParseAddr(devenv.PayFiPCallbackAddr)
	browserAddr = netip.MustParseAddr("127.0.0.1")
)

// peer is the request's direct peer address.
func peer(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// classicParams are the parameters PayFiP sends to urlcl for res.
func classicParams(res payfip.Result) url.Values {
	v := url.Values{"numcli": {res.NumCli}, "exer": {res.Exer}, "refdet": {res.RefDet},
		"montant": {fmt.Sprint(res.Montant)}, "mel": {res.Mel}, "saisie": {res.Saisie},
		"resultrans": {res.ResultTrans}, "dattrans": {res.DatTrans}, "heurtrans": {res.HeurTrans}}
	if res.NumAuto != "" {
		v.Set("numauto", res.NumAuto)
	}
	return v
}

// clock is the service's clock, moved by tests (safe for concurrent use).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// parisTime is a wall-clock time in Europe/Paris.
func parisTime(y int, m time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, 0, paris.Location)
}

// hit is one call the simulator (or the browser) made to the portal.
type hit struct {
	Slug    string
	Source  string
	Changed bool
	Err     error
}

// env is a test world: a database, the PayFiP simulator over HTTP, and a
// portal (httptest) whose PayFiP routes call the service as the real
// handlers do.
type env struct {
	t      *testing.T
	ctx    context.Context
	d      *sqlx.DB
	payfip *devenv.PayFiPSimulator
	sim    *sim.Simulator
	portal *httptest.Server
	svc    *Service
	clock  *clock

	mu      sync.Mutex
	tenants map[string]*tenant.Tenant
	hits    []hit
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), d: dbtest.New(t), tenants: map[string]*tenant.Tenant{},
		clock: &clock{t: parisTime(2026, 11, 26, 13, 41, 20)}}
	p, err := devenv.StartPayFiP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	e.payfip, e.sim = p, p.Sim
	var cfg config.Config
	p.Configure(&cfg)
	cfg.PayFiP.Timeout = 5 * time.Second

	river, err := jobs.New(e.d, jobs.Options{}) // insert-only: emails stay queued for inspection
	if err != nil {
		t.Fatal(err)
	}
	e.portal = httptest.NewServer(e.portalHandler())
	t.Cleanup(e.portal.Close)
	e.svc = &Service{
		DB:     e.d,
		PayFiP: payfip.NewClient(cfg.PayFiP.SOAPURL, &http.Client{Timeout: cfg.PayFiP.Timeout}),
		Config: cfg.PayFiP,
		Outbox: mail.NewOutbox(river),
		Links: func(t *tenant.Tenant, path string) string {
			return e.portal.URL + "/" + t.Slug + path
		},
		Now: e.clock.Now,
	}
	return e
}

// portalHandler plays the portal's handlers: notification and WS return go
// through ResolveWS, every call to the classic urlcl through ReceiveClassic
// with its peer address: the simulator calls from 127.0.0.2 (trusted, see
// newEnv), test browsers from 127.0.0.1.
func (e *env) portalHandler() http.Handler {
	m := http.NewServeMux()
	record := func(slug, source string, changed bool, err error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.hits = append(e.hits, hit{slug, source, changed, err})
	}
	answer := func(w http.ResponseWriter, a *Attempt, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "statut=%s", a.Status)
	}
	m.HandleFunc("POST /{slug}/paiement/notification", func(w http.ResponseWriter, r *http.Request) {
		t := e.tenant(r.PathValue("slug"))
		idOp, err := payfip.ParseNotification(r)
		if err != nil || t == nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		a, changed, err := e.svc.ResolveWS(r.Context(), t, idOp, SourceNotification)
		record(t.Slug, SourceNotification, changed, err)
		answer(w, a, err)
	})
	m.HandleFunc("GET /{slug}/paiement/retour", func(w http.ResponseWriter, r *http.Request) {
		t := e.tenant(r.PathValue("slug"))
		idOp, err := payfip.ParseNotification(r)
		if err != nil || t == nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		a, changed, err := e.svc.ResolveWS(r.Context(), t, idOp, SourceReturn)
		record(t.Slug, SourceReturn, changed, err)
		answer(w, a, err)
	})
	m.HandleFunc("/{slug}/paiement/retour-classique", func(w http.ResponseWriter, r *http.Request) {
		t := e.tenant(r.PathValue("slug"))
		if err := r.ParseForm(); err != nil || t == nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		a, changed, err := e.svc.ReceiveClassic(r.Context(), t, ClassicCall{Params: r.Form, From: peer(r)})
		source := SourceCallback
		if errors.Is(err, ErrUnverifiedSource) {
			// A browser: recorded, and shown the attempt as it stands.
			source = sourceBrowser
			record(t.Slug, source, changed, err)
			a, err = getAttempt(r.Context(), e.d, `p.tenant_id = $1 AND p.refdet = $2`, t.ID, payfip.ClassicRefDet(r.Form))
			answer(w, a, err)
			return
		}
		record(t.Slug, source, changed, err)
		answer(w, a, err)
	})
	return m
}

func (e *env) tenant(slug string) *tenant.Tenant {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tenants[slug]
}

func (e *env) hitsSnapshot() []hit {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]hit(nil), e.hits...)
}

// tenantOpts are the settings tests vary.
type tenantOpts struct {
	mode         string // ws (default) | classic
	numcli       string
	retryMinutes int // default 120
	batchAllowed bool
	batchMax     int
	suspended    bool
	minCents     int64
}

func (e *env) addTenant(slug string, o tenantOpts) *tenant.Tenant {
	e.t.Helper()
	if o.mode == "" {
		o.mode = "ws"
	}
	if o.numcli == "" {
		o.numcli = "004200"
	}
	if o.retryMinutes == 0 {
		o.retryMinutes = 120
	}
	if o.batchMax == 0 {
		o.batchMax = 1
	}
	if o.minCents == 0 {
		o.minCents = 100
	}
	saisie := "T"
	var id int64
	err := e.d.Get(&id, `
		INSERT INTO tenants (slug, name, service_label, primary_host, payfip_numcli, payfip_mode, payfip_saisie,
			payfip_min_cents, payfip_retry_minutes, batch_allowed, batch_max, payments_suspended)
		VALUES ($1, $2, 'Facturation Restauration scolaire', $3, $4, $5, $6, $7, $8, $9, $10, $11)
		RETURNING id`,
		slug, "MAIRIE DE "+strings.ToUpper(slug), slug+".example.test", o.numcli, o.mode, saisie,
		o.minCents, o.retryMinutes, o.batchAllowed, o.batchMax, o.suspended)
	if err != nil {
		e.t.Fatal(err)
	}
	t, err := tenant.NewStore(e.d).ByID(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.tenants[slug] = t
	e.mu.Unlock()
	return t
}

func (e *env) addAccount(t *tenant.Tenant, email, name string) int64 {
	e.t.Helper()
	var id int64
	err := e.d.Get(&id, `INSERT INTO accounts (tenant_id, external_ref, display_name, email, status)
		VALUES ($1, $2, $3, $4, 'active') RETURNING id`, t.ID, email, name, email)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// invoiceOpts are the invoice columns tests vary.
type invoiceOpts struct {
	status      string
	directDebit bool
	suspended   bool
}

func (e *env) addInvoice(t *tenant.Tenant, accountID int64, number string, cents int64, o ...invoiceOpts) int64 {
	e.t.Helper()
	var opt invoiceOpts
	if len(o) > 0 {
		opt = o[0]
	}
	if opt.status == "" {
		opt.status = "unpaid"
	}
	var paidAt *time.Time
	paidHow := ""
	if opt.status == "paid" {
		now := time.Now()
		paidAt, paidHow = &now, "elsewhere"
	}
	var id int64
	err := e.d.Get(&id, `
		INSERT INTO invoices (tenant_id, account_id, number, object, issued_on, due_on, amount_cents,
			status, paid_at, paid_how, direct_debit, payment_suspended)
		VALUES ($1, $2, $3, 'Multi Services', '2026-11-01', '2026-11-30', $4, $5, $6, $7, $8, $9)
		RETURNING id`, t.ID, accountID, number, cents, opt.status, paidAt, paidHow, opt.directDebit, opt.suspended)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// browser is a resident's browser: it follows redirects (or not).
func (e *env) browser(follow bool) *http.Client {
	c := &http.Client{Timeout: 15 * time.Second, Transport: browserTransport{}}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

type browserTransport struct{}

func (browserTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", "Mozilla/5.0 (test)")
	return http.DefaultTransport.RoundTrip(r)
}

var (
	formRe   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// pay opens the PayFiP page at redirect and presses the button labelled
// label ("Payer par carte bancaire", "Refuser le paiement", "Annuler"…),
// as a resident would. With follow, the browser comes back to the portal.
func (e *env) pay(redirect, label string, follow bool) *http.Response {
	e.t.Helper()
	c := e.browser(follow)
	resp, err := c.Get(redirect)
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Bienvenue sur la solution de paiement de la DGFIP") {
		e.t.Fatalf("PayFiP page: %d\n%s", resp.StatusCode, page)
	}
	fm := formRe.FindStringSubmatch(page)
	if fm == nil {
		e.t.Fatalf("no form on the PayFiP page:\n%s", page)
	}
	btn := regexp.MustCompile(`<button type="submit" name="choix" value="([A-Z])"[^>]*>` + regexp.QuoteMeta(label) + `</button>`).
		FindStringSubmatch(page)
	if btn == nil {
		e.t.Fatalf("no button %q on the PayFiP page:\n%s", label, page)
	}
	form := url.Values{}
	for _, h := range hiddenRe.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	form.Set("choix", btn[1])
	action, err := resp.Request.URL.Parse(html.UnescapeString(fm[1]))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err = c.PostForm(action.String(), form)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// start runs Start and fails the test on error.
func (e *env) start(t *tenant.Tenant, accountID int64, ids ...int64) (*Attempt, string) {
	e.t.Helper()
	a, redirect, err := e.svc.Start(e.ctx, t, accountID, ids)
	if err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	return a, redirect
}

// refused runs Start and expects a *RefusedError.
func (e *env) refused(t *tenant.Tenant, accountID int64, ids ...int64) *RefusedError {
	e.t.Helper()
	a, _, err := e.svc.Start(e.ctx, t, accountID, ids)
	var r *RefusedError
	if !errors.As(err, &r) {
		e.t.Fatalf("Start: want *RefusedError, got attempt %+v, err %v", a, err)
	}
	return r
}

func (e *env) attempt(t *tenant.Tenant, id int64) *Attempt {
	e.t.Helper()
	a, err := getAttempt(e.ctx, e.d, `p.tenant_id = $1 AND p.id = $2`, t.ID, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// waitResolved waits until the attempt leaves 'pending'.
func (e *env) waitResolved(t *tenant.Tenant, id int64) *Attempt {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := e.attempt(t, id)
		if a.Status != StatusPending {
			return a
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("attempt %d still pending", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type invoiceRow struct {
	Status  string     `db:"status"`
	PaidAt  *time.Time `db:"paid_at"`
	PaidHow string     `db:"paid_how"`
}

func (e *env) invoice(t *tenant.Tenant, id int64) invoiceRow {
	e.t.Helper()
	var r invoiceRow
	if err := e.d.Get(&r, `SELECT status, paid_at, paid_how FROM invoices WHERE tenant_id = $1 AND id = $2`, t.ID, id); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// emails returns the payment confirmation emails queued for tenant t.
func (e *env) emails(t *tenant.Tenant) []mail.Email {
	e.t.Helper()
	var raw []string
	err := e.d.Select(&raw, `SELECT args::text FROM river_job
		WHERE kind = 'send_email' AND args->'email'->>'template' = 'payment_confirmation'
		  AND (args->'email'->>'tenant_id')::bigint = $1 ORDER BY id`, t.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]mail.Email, len(raw))
	for i, r := range raw {
		var args mail.SendArgs
		if err := json.Unmarshal([]byte(r), &args); err != nil {
			e.t.Fatal(err)
		}
		out[i] = args.Email
	}
	return out
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.d.Get(&n, query, args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// control steers the simulator.
func (e *env) control(c sim.ControlOptions) {
	e.t.Helper()
	if err := e.sim.Control(c); err != nil {
		e.t.Fatal(err)
	}
}
