package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// newClient is the load generator's HTTP client: keep-alive connections,
// no redirects followed (a 303 is an answer to check), and each new
// connection from its own loopback address, as distinct residents would
// come from distinct addresses (login throttling counts per IP).
func newClient(conns int, timeout time.Duration) *http.Client {
	var next atomic.Uint32
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			n := next.Add(1)
			d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second,
				LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+(n/250)%200), byte(1+n%250))}}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: 2 * conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// resident is a logged-in bench resident.
type resident struct {
	c         *commune
	accountID int64
	cookie    string
	invoices  []int64 // oldest first
	idop      string  // a payment attempt returned by PayFiP
	paymentID int64
}

// do sends one request to base (a server's URL) for host.
func do(ctx context.Context, c *http.Client, method, base, host, path, cookie string, form url.Values) (*http.Response, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, nil, err
	}
	req.Host = host
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", "portail_session="+cookie)
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	return res, b, err
}

// login posts the login form and returns the session cookie.
func login(ctx context.Context, c *http.Client, base, host, email string) (string, error) {
	res, body, err := do(ctx, c, http.MethodPost, base, host, "/connexion", "",
		url.Values{"email": {email}, "password": {benchPassword}})
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("bench: login %s on %s: status %d: %.300s", email, host, res.StatusCode, body)
	}
	for _, ck := range res.Cookies() {
		if ck.Name == "portail_session" && ck.Value != "" {
			return ck.Value, nil
		}
	}
	return "", fmt.Errorf("bench: login %s: no session cookie", email)
}

// loginResidents logs every commune's bench resident in on s and records
// their sessions for pgbench.
func (r *run) loginResidents(ctx context.Context, sd *seeder, base string) ([]*resident, error) {
	c := newClient(8, 30*time.Second)
	var out []*resident
	for _, cm := range sd.communes {
		ck, err := login(ctx, c, base, cm.host, cm.email(1))
		if err != nil {
			return nil, err
		}
		res := &resident{c: cm, cookie: ck}
		if err := r.db.GetContext(ctx, &res.accountID, `SELECT id FROM accounts WHERE tenant_id = $1 AND external_ref = 'P1'`, cm.t.ID); err != nil {
			return nil, err
		}
		if err := r.db.SelectContext(ctx, &res.invoices, `SELECT id FROM invoices WHERE tenant_id = $1 AND account_id = $2
			ORDER BY issued_on, id`, cm.t.ID, res.accountID); err != nil {
			return nil, err
		}
		if len(res.invoices) != residentInvoices {
			return nil, fmt.Errorf("bench: resident of %s has %d invoices, want %d", cm.slug, len(res.invoices), residentInvoices)
		}
		out = append(out, res)
	}
	return out, r.saveTargets(ctx, out)
}

// saveTargets writes the residents' keys where pgbench scripts pick them.
func (r *run) saveTargets(ctx context.Context, rs []*resident) error {
	if _, err := r.db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS bench;
		DROP TABLE IF EXISTS bench.sessions, bench.pages, bench.returns;
		CREATE TABLE bench.sessions (n int PRIMARY KEY, tenant_id bigint, account_id bigint, h bytea);
		CREATE TABLE bench.pages (n int PRIMARY KEY, tenant_id bigint, account_id bigint, h bytea, invoice_id bigint);
		CREATE TABLE bench.returns (n int PRIMARY KEY, tenant_id bigint, account_id bigint, h bytea, id_op text, payment_id bigint)`); err != nil {
		return err
	}
	p, ret := 0, 0
	for i, res := range rs {
		h := sha256.Sum256([]byte(res.cookie))
		if _, err := r.db.ExecContext(ctx, `INSERT INTO bench.sessions VALUES ($1, $2, $3, $4)`, i+1, res.c.t.ID, res.accountID, h[:]); err != nil {
			return err
		}
		for _, id := range res.invoices {
			p++
			if _, err := r.db.ExecContext(ctx, `INSERT INTO bench.pages VALUES ($1, $2, $3, $4, $5)`, p, res.c.t.ID, res.accountID, h[:], id); err != nil {
				return err
			}
		}
		if res.idop != "" {
			ret++
			if _, err := r.db.ExecContext(ctx, `INSERT INTO bench.returns VALUES ($1, $2, $3, $4, $5, $6)`, ret, res.c.t.ID, res.accountID, h[:], res.idop, res.paymentID); err != nil {
				return err
			}
		}
	}
	_, err := r.db.ExecContext(ctx, `ANALYZE bench.sessions, bench.pages, bench.returns`)
	return err
}

// payOnce takes one invoice of res to PayFiP and back: the attempt is
// started on the portal at base, paid on the simulator's page, and the
// return URL PayFiP sends the browser to is returned (not followed).
func (r *run) payOnce(ctx context.Context, c *http.Client, base string, res *resident, invoiceID int64) (idop string, err error) {
	resp, body, err := do(ctx, c, http.MethodPost, base, res.c.host, "/paiement", res.cookie,
		url.Values{"facture": {strconv.FormatInt(invoiceID, 10)}})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("bench: start payment: status %d: %.300s", resp.StatusCode, body)
	}
	payURL, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	idop = payURL.Query().Get("idop")
	if idop == "" {
		return "", fmt.Errorf("bench: start payment: no idop in %s", payURL)
	}
	if resp, body, err = do(ctx, c, http.MethodGet, r.payfip.URL, "", payURL.RequestURI(), "", nil); err != nil {
		return "", err
	} else if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("bench: PayFiP page: status %d: %.300s", resp.StatusCode, body)
	}
	resp, body, err = do(ctx, c, http.MethodPost, r.payfip.URL, "", "/tpa/paiementws.web", "",
		url.Values{"idop": {idop}, "choix": {"P"}})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "/paiement/retour?") {
		return "", fmt.Errorf("bench: PayFiP submit: status %d, location %q: %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return idop, nil
}

// scenario is one kind of request driven at the server.
type scenario struct {
	name    string
	label   string // the request, as the table shows it
	targets []vegeta.Target
	expect  int // the status code of a success
	clients int
	timeout time.Duration
	rate    int // requests per second; 0: as fast as answered
}

// measure is what one attack gave.
type measure struct {
	requests, errors int
	rps              float64
	p50, p99, max    time.Duration
	peakRSS          int64
	codes            map[uint16]int
	firstError       string
	cpu              cpuShare
}

func getTarget(base, host, path, cookie string) vegeta.Target {
	return vegeta.Target{Method: http.MethodGet, URL: base + path,
		Header: http.Header{"Host": {host}, "Cookie": {"portail_session=" + cookie}}}
}

func vegetaPost(u, host, form string) vegeta.Target {
	return vegeta.Target{Method: http.MethodPost, URL: u, Body: []byte(form),
		Header: http.Header{"Host": {host}, "Content-Type": {"application/x-www-form-urlencoded"}}}
}

func pageScenario(name string, base string, rs []*resident, clients int, path func(*resident) []string) scenario {
	sc := scenario{name: name, expect: http.StatusOK, clients: clients, timeout: 30 * time.Second}
	for _, res := range rs {
		for _, p := range path(res) {
			sc.targets = append(sc.targets, getTarget(base, res.c.host, p, res.cookie))
		}
	}
	return sc
}

// attack drives sc at its clients' concurrency, as fast as the server
// answers (closed loop: each client sends its next request when the last
// one is answered) or at sc.rate, for d or maxRequestsPerStep requests.
func attack(ctx context.Context, srv *server, sc scenario, d time.Duration) measure {
	client := newClient(sc.clients, sc.timeout)
	atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.Timeout(sc.timeout),
		vegeta.Workers(uint64(sc.clients)), vegeta.MaxWorkers(uint64(sc.clients)), vegeta.MaxBody(0))
	var next atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		i := next.Add(1) - 1
		if i >= maxRequestsPerStep {
			return vegeta.ErrNoTargets
		}
		*t = sc.targets[i%uint64(len(sc.targets))]
		return nil
	}
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	w := watchRSS(srv)
	m := measure{codes: map[uint16]int{}}
	var lat []time.Duration
	start := time.Now()
	for res := range atk.Attack(targeter, vegeta.Rate{Freq: sc.rate, Per: time.Second}, d, sc.name) {
		if res.Method == "" {
			continue // the targeter's end, not a request
		}
		m.requests++
		m.codes[res.Code]++
		lat = append(lat, res.Latency)
		if int(res.Code) != sc.expect {
			m.errors++
			if m.firstError == "" {
				m.firstError = fmt.Sprintf("%s %s: %d %s", res.Method, res.URL, res.Code, res.Error)
			}
		}
	}
	elapsed := time.Since(start)
	m.peakRSS = w.peak()
	client.CloseIdleConnections()
	if len(lat) > 0 {
		slices.Sort(lat)
		m.p50 = lat[len(lat)/2]
		m.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
		m.max = lat[len(lat)-1]
	}
	m.rps = float64(m.requests-m.errors) / elapsed.Seconds()
	return m
}

// measureScenario warms up, checks one answer, then measures.
func (r *run) measureScenario(ctx context.Context, srv *server, sc scenario, check func([]byte) bool) (measure, error) {
	t := sc.targets[0]
	req, err := t.Request()
	if err != nil {
		return measure{}, err
	}
	res, err := newClient(1, 30*time.Second).Do(req.WithContext(ctx))
	if err != nil {
		return measure{}, err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != sc.expect || (check != nil && !check(body)) {
		return measure{}, fmt.Errorf("bench: %s: unexpected answer to %s %s: %d %.400s", sc.name, t.Method, t.URL, res.StatusCode, body)
	}
	if r.o.Warmup > 0 {
		attack(ctx, nil, sc, r.o.Warmup)
	}
	r.progress("%s: %d clients, %s …", sc.name, sc.clients, r.o.Duration)
	c0 := r.cpuSnapshot(srv)
	m := attack(ctx, srv, sc, r.o.Duration)
	m.cpu = c0.to(r.cpuSnapshot(srv))
	r.progress("%s: %.0f req/s, p50 %s, p99 %s, %d errors, peak RSS %s, CPU cores: server %.2f, postgres %.2f, bench %.2f, other processes %.2f",
		sc.name, m.rps, ms(m.p50), ms(m.p99), m.errors, mb(m.peakRSS), m.cpu.server, m.cpu.pg, m.cpu.bench, m.cpu.other)
	if m.cpu.other > 0.2 {
		r.rep.noisy = append(r.rep.noisy, fmt.Sprintf("%s (%.1f cores)", sc.name, m.cpu.other))
	}
	if m.firstError != "" {
		r.progress("%s: first error: %s", sc.name, m.firstError)
	}
	return m, ctx.Err()
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms" }

func mb(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 0, 64) + " MB" }
