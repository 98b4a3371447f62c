package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"

	"portail/pkg/pgcluster"
)

// balancer is a small round-robin load balancer with health checks, as a
// hosting provider's would be: it sends each request to the next healthy
// instance and keeps the Host header.
type balancer struct {
	backends []*backend
	next     atomic.Uint64
	srv      *http.Server
	URL      string
	stop     chan struct{}
	wg       sync.WaitGroup
}

type backend struct {
	s     *server
	proxy *httputil.ReverseProxy
	up    atomic.Bool
}

func startBalancer(port int, servers ...*server) (*balancer, error) {
	b := &balancer{stop: make(chan struct{})}
	for _, s := range servers {
		u, _ := url.Parse(s.url(""))
		be := &backend{s: s}
		be.proxy = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.Out.Host = pr.In.Host // the commune is chosen by its host name
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				be.up.Store(false)
				http.Error(w, "bad gateway", http.StatusBadGateway)
			},
		}
		be.up.Store(true)
		b.backends = append(b.backends, be)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	b.URL = "http://" + l.Addr().String()
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go b.srv.Serve(l)
	b.wg.Add(1)
	go b.check()
	return b, nil
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := uint64(len(b.backends))
	start := b.next.Add(1)
	for i := range n {
		if be := b.backends[(start+i)%n]; be.up.Load() {
			be.proxy.ServeHTTP(w, r)
			return
		}
	}
	http.Error(w, "no healthy instance", http.StatusBadGateway)
}

// check polls each instance's /healthz every 100 ms.
func (b *balancer) check() {
	defer b.wg.Done()
	c := &http.Client{Timeout: 500 * time.Millisecond}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		for _, be := range b.backends {
			res, err := c.Get(be.s.url("/healthz"))
			ok := err == nil && res.StatusCode == http.StatusOK
			if err == nil {
				res.Body.Close()
			}
			be.up.Store(ok)
		}
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}

func (b *balancer) close() {
	close(b.stop)
	b.wg.Wait()
	b.srv.Close()
}

// statelessResult is what the two-instance run showed.
type statelessResult struct {
	ran          bool
	perInstance  [2]int64 // /accueil requests through the balancer served by A, B
	through      int      // /accueil requests sent through the balancer
	crossSession bool     // session opened on A served by B (and B's by A)
	afterStop    bool     // A stopped: the same session still served through the balancer
	payments     int      // payments started on A, returned to A and B at once
	transitions  int      // pending → paid transitions recorded (want payments)
	paidInvoices int
	emails       int // confirmation emails caught (want payments)
	workedBy     map[string]int
	notes        []string
}

func (s *statelessResult) ok() bool {
	return s.ran && s.crossSession && s.afterStop && s.perInstance[0] > 0 && s.perInstance[1] > 0 &&
		s.transitions == s.payments && s.paidInvoices == s.payments && s.emails == s.payments
}

// stateless runs two instances behind the balancer and checks that
// sessions, payments and jobs do not depend on which one answers.
func (r *run) stateless(ctx context.Context, rs []*resident) (*statelessResult, error) {
	out := &statelessResult{ran: true, workedBy: map[string]int{}}
	pa, err := pgcluster.FreePort()
	if err != nil {
		return nil, err
	}
	pb, err := pgcluster.FreePort()
	if err != nil {
		return nil, err
	}
	pl, err := pgcluster.FreePort()
	if err != nil {
		return nil, err
	}
	a, err := r.startServer(ctx, "instance-a", pa, pl)
	if err != nil {
		return nil, err
	}
	b, err := r.startServer(ctx, "instance-b", pb, pl)
	if err != nil {
		return nil, err
	}
	// Links in emails name the balancer's port, as production's public one.
	lb, err := startBalancer(pl, a, b)
	if err != nil {
		return nil, err
	}
	defer lb.close()
	r.progress("stateless: instances A :%d and B :%d behind a round-robin balancer %s", pa, pb, lb.URL)
	c := newClient(16, 30*time.Second)

	// 1. One login through the balancer; then the same session's pages
	// alternate between the instances.
	res := rs[0]
	ck, err := login(ctx, c, lb.URL, res.c.host, res.c.email(1))
	if err != nil {
		return nil, err
	}
	a0, b0 := a.homes.Load(), b.homes.Load()
	out.through = 20
	for range out.through {
		resp, body, err := do(ctx, c, http.MethodGet, lb.URL, res.c.host, "/accueil", ck, nil)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), res.c.residentName()) {
			return nil, fmt.Errorf("bench: stateless: /accueil through the balancer: %d", resp.StatusCode)
		}
	}
	time.Sleep(200 * time.Millisecond) // access-log lines are counted as they arrive
	out.perInstance = [2]int64{a.homes.Load() - a0, b.homes.Load() - b0}

	// 2. A session opened on A is served by B, and one opened on B by A.
	ckA, err := login(ctx, c, a.url(""), res.c.host, res.c.email(1))
	if err != nil {
		return nil, err
	}
	ckB, err := login(ctx, c, b.url(""), rs[1%len(rs)].c.host, rs[1%len(rs)].c.email(1))
	if err != nil {
		return nil, err
	}
	okAB, err := served(ctx, c, b, res, ckA)
	if err != nil {
		return nil, err
	}
	okBA, err := served(ctx, c, a, rs[1%len(rs)], ckB)
	if err != nil {
		return nil, err
	}
	out.crossSession = okAB && okBA

	// 3. Payments: each attempt is started on A, then PayFiP's return
	// reaches A and B at the same time; exactly one may move it to paid.
	// Jobs: each paid attempt enqueues one confirmation email, worked by
	// whichever instance fetches it first, once.
	if err := r.mail.Clear(); err != nil {
		return nil, err
	}
	var since time.Time
	if err := r.db.GetContext(ctx, &since, `SELECT now()`); err != nil {
		return nil, err
	}
	type paid struct {
		res       *resident
		idop, ck  string
		invoiceID int64
	}
	var ps []paid
	for i := range min(20, len(rs)) {
		res := rs[i]
		ck, err := login(ctx, c, a.url(""), res.c.host, res.c.email(1))
		if err != nil {
			return nil, err
		}
		inv := res.invoices[2] // the main run paid invoices[0]
		idop, err := r.payOnce(ctx, c, a.url(""), &resident{c: res.c, cookie: ck}, inv)
		if err != nil {
			return nil, err
		}
		ps = append(ps, paid{res: res, idop: idop, ck: ck, invoiceID: inv})
	}
	out.payments = len(ps)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, p := range ps {
		for _, s := range []*server{a, b} {
			wg.Go(func() {
				resp, _, err := do(ctx, c, http.MethodGet, s.url(""), p.res.c.host, "/paiement/retour?idop="+url.QueryEscape(p.idop), p.ck, nil)
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		out.notes = append(out.notes, fmt.Sprintf("%d return callbacks failed", n))
	}
	idops := make([]string, len(ps))
	invs := make([]int64, len(ps))
	for i, p := range ps {
		idops[i], invs[i] = p.idop, p.invoiceID
	}
	if err := r.db.GetContext(ctx, &out.transitions, `SELECT count(*) FROM audit_log l
		JOIN payments p ON p.tenant_id = l.tenant_id AND p.id = (l.details->>'payment_id')::bigint
		WHERE l.action = 'payment.paid' AND p.id_op = ANY ($1) AND p.status = 'paid'`, pq.Array(idops)); err != nil {
		return nil, err
	}
	if err := r.db.GetContext(ctx, &out.paidInvoices, `SELECT count(*) FROM invoices
		WHERE id = ANY ($1) AND status = 'paid' AND paid_how = 'online'`, pq.Array(invs)); err != nil {
		return nil, err
	}
	// Emails: wait until every one arrived, then a little longer for any
	// duplicate that a second worker would send.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && confirmations(r) < len(ps) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	out.emails = confirmations(r)
	var rows []struct {
		By string `db:"by"`
		N  int    `db:"n"`
	}
	if err := r.db.SelectContext(ctx, &rows, `SELECT coalesce(attempted_by[array_length(attempted_by, 1)], '?') AS by, count(*) AS n
		FROM river_job WHERE kind = 'send_email' AND state = 'completed' AND created_at >= $1
		GROUP BY 1 ORDER BY 1`, since); err == nil {
		for _, row := range rows {
			out.workedBy[row.By] = row.N
		}
	}

	// 4. A stops (deploy, crash): the balancer's health check takes it
	// out and the session opened through the balancer goes on, on B.
	a.stop()
	time.Sleep(300 * time.Millisecond)
	resp, body, err := do(ctx, c, http.MethodGet, lb.URL, res.c.host, "/accueil", ck, nil)
	out.afterStop = err == nil && resp.StatusCode == http.StatusOK && strings.Contains(string(body), res.c.residentName())
	b.stop()
	if b.errors.Load() > 0 || a.errors.Load() > 0 {
		out.notes = append(out.notes, fmt.Sprintf("server errors logged: A %d, B %d (see %s)", a.errors.Load(), b.errors.Load(), r.dir))
	}
	r.progress("stateless: per instance %v, cross-session %v, after stop %v, %d payments → %d transitions, %d invoices paid, %d emails",
		out.perInstance, out.crossSession, out.afterStop, out.payments, out.transitions, out.paidInvoices, out.emails)
	return out, nil
}

// served tells whether s serves res's /accueil with the session cookie ck.
func served(ctx context.Context, c *http.Client, s *server, res *resident, ck string) (bool, error) {
	resp, body, err := do(ctx, c, http.MethodGet, s.url(""), res.c.host, "/accueil", ck, nil)
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusOK && strings.Contains(string(body), res.c.residentName()), nil
}

func confirmations(r *run) int {
	n := 0
	for _, m := range r.mail.Messages() {
		if strings.Contains(m.Subject, "Confirmation de votre paiement") {
			n++
		}
	}
	return n
}
