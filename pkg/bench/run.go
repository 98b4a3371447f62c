package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"portail/pkg/app"
	"portail/pkg/db"
	"portail/pkg/pgcluster"
)

// do is the whole run, in the order of the issue: data, server, load,
// ceilings, sizes, stateless.
func (r *run) do(ctx context.Context) error {
	o := r.o
	r.rep.machine = machineInfo()
	r.progress("machine: %s", r.rep.machine)
	if err := r.setup(ctx); err != nil {
		return err
	}
	d, err := db.Open(ctx, r.cfg.Database.URL, 8)
	if err != nil {
		return err
	}
	r.db = d
	var pgv string
	if err := d.GetContext(ctx, &pgv, `SHOW server_version`); err == nil {
		r.rep.machine += ", PostgreSQL " + strings.Fields(pgv)[0]
	}
	// The seeding goes through the same App as the server (its importers),
	// in this process; it also serves the in-process checks and profiles.
	a, err := app.New(ctx, r.cfg, d, slog.New(slog.DiscardHandler), app.Options{})
	if err != nil {
		return err
	}
	if err := a.Blobs.EnsureBucket(ctx); err != nil {
		return err
	}
	sd := &seeder{r: r, a: a}
	if err := sd.tenants(ctx); err != nil {
		return err
	}
	if err := sd.payers(ctx); err != nil {
		return err
	}
	if err := r.prepareEnumeration(ctx, sd); err != nil {
		return err
	}
	r.rep.data = fmt.Sprintf("%d communes, %s accounts, %s invoices", o.Communes, num(o.Accounts), num(o.Invoices))
	if o.Only == "staff" {
		return r.onlyStaff(ctx, sd)
	}
	if o.Large > 0 {
		r.rep.data += fmt.Sprintf(" (then %s for the flat-cost check)", num(o.Large))
	}

	// First size: the baseline of the flat-cost check.
	if err := sd.grow(ctx, o.Small); err != nil {
		return err
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return err
	}
	srv, err := r.startServer(ctx, "server", port, port)
	if err != nil {
		return err
	}
	base := srv.url("")
	_, idle := srv.memory()
	r.rep.idleRSS = idle
	rs, err := r.loginResidents(ctx, sd, base)
	if err != nil {
		return err
	}
	r.progress("server pid %d on %s (RSS %s), %d residents logged in", srv.pid(), base, mb(idle), len(rs))
	if o.Small < o.Invoices {
		m, err := r.measureScenario(ctx, srv, r.listScenario(base, rs), r.hasName(rs[0]))
		if err != nil {
			return err
		}
		r.rep.sizes = append(r.rep.sizes, sizePoint{invoices: sd.total, m: m})
		if err := sd.grow(ctx, o.Invoices); err != nil {
			return err
		}
		if rs, err = r.loginResidents(ctx, sd, base); err != nil {
			return err
		}
	}

	// The importer on its largest file, beside a raw COPY of the same rows.
	raw, err := sd.rawCopy(ctx)
	if err != nil {
		return err
	}
	r.rep.imp = importResult{files: sd.files, lines: sd.lines, elapsed: sd.elapsed,
		bigLines: sd.biggest.n, bigSlug: sd.biggest.c.slug, bigElapsed: sd.biggest.elapsed, raw: raw}
	r.progress("import: largest file %s lines in %s (%.0f lines/s); raw COPY of the same rows %s (%.0f lines/s)",
		num(sd.biggest.n), sd.biggest.elapsed.Round(time.Millisecond), r.rep.imp.rate(),
		raw.Round(time.Millisecond), r.rep.imp.rawRate())

	// The page scenarios at the configured size, each beside pgbench.
	pages := []struct {
		sc     scenario
		check  func([]byte) bool
		script string
		table  string
		target bool
	}{
		{r.pageScenario("home", "GET /accueil", base, rs, func(*resident) []string { return []string{"/accueil"} }), r.hasName(rs[0]), scriptHome, "sessions", false},
		{r.listScenario(base, rs), r.hasName(rs[0]), scriptList, "sessions", true},
		{r.pageScenario("detail", "GET /factures/:id", base, rs, func(res *resident) []string {
			return pathsOf(res.invoices, "/factures/%d")
		}), r.hasName(rs[0]), scriptDetail, "pages", false},
		{r.pageScenario("pdf", "GET /factures/:id/pdf", base, rs, func(res *resident) []string {
			return pathsOf(res.invoices, "/factures/%d/pdf")
		}), func(b []byte) bool { return bytes.HasPrefix(b, []byte("%PDF-")) }, scriptPDF, "pages", false},
	}
	for _, p := range pages {
		m, err := r.measureScenario(ctx, srv, p.sc, p.check)
		if err != nil {
			return err
		}
		c, err := r.pgbench(ctx, p.sc.name, p.script, p.table)
		if err != nil {
			return err
		}
		r.rep.rows = append(r.rep.rows, scenarioRow{sc: p.sc, m: m, ceil: c, listTarget: p.target})
		if p.target {
			r.rep.sizes = append(r.rep.sizes, sizePoint{invoices: sd.total, m: m})
			// The same clients at half that rate: the latency of a server
			// with headroom, beside the saturated one above.
			paced := p.sc
			paced.name, paced.rate = "list (paced)", max(1, int(m.rps/2))
			paced.label = fmt.Sprintf("GET /factures at %d/s", paced.rate)
			pm, err := r.measureScenario(ctx, srv, paced, p.check)
			if err != nil {
				return err
			}
			r.rep.rows = append(r.rep.rows, scenarioRow{sc: paced, m: pm})
		}
	}

	// A resident with 10,000 unpaid invoices, beside the ordinary ones.
	if err := r.heavyRows(ctx, srv, sd, base, rs); err != nil {
		return err
	}

	// PayFiP returns: one paid attempt per resident, then the browser
	// returns (the first one resolves the attempt by SOAP, the others are
	// replays, as when a payer reloads the result page).
	c := newClient(8, 30*time.Second)
	for _, res := range rs {
		idop, err := r.payOnce(ctx, c, base, res, res.invoices[0])
		if err != nil {
			return err
		}
		res.idop = idop
		if err := r.db.GetContext(ctx, &res.paymentID, `SELECT id FROM payments WHERE tenant_id = $1 AND id_op = $2`, res.c.t.ID, idop); err != nil {
			return err
		}
	}
	if err := r.saveTargets(ctx, rs); err != nil {
		return err
	}
	ret := r.pageScenario("payfip return", "GET /paiement/retour?idop=", base, rs, func(res *resident) []string {
		return []string{"/paiement/retour?idop=" + url.QueryEscape(res.idop)}
	})
	m, err := r.measureScenario(ctx, srv, ret, func(b []byte) bool { return bytes.Contains(b, []byte("accepté")) })
	if err != nil {
		return err
	}
	cr, err := r.pgbench(ctx, "return", scriptReturn, "returns")
	if err != nil {
		return err
	}
	r.rep.rows = append(r.rep.rows, scenarioRow{sc: ret, m: m, ceil: cr})
	var paid int
	if err := r.db.GetContext(ctx, &paid, `SELECT count(*) FROM payments WHERE status = 'paid'`); err != nil {
		return err
	}
	if paid != len(rs) {
		return fmt.Errorf("bench: %d payments paid after the returns, want %d", paid, len(rs))
	}

	// The login storm: o.Logins at once against the argon2 semaphore.
	var hash string
	if err := r.db.GetContext(ctx, &hash, `SELECT password_hash FROM accounts LIMIT 1`); err != nil {
		return err
	}
	ls := r.loginScenario(base, sd, 0)
	m, err = r.measureScenario(ctx, srv, ls, nil)
	if err != nil {
		return err
	}
	bound := cmp.Or(r.cfg.Security.Argon2MaxConcurrent, runtime.GOMAXPROCS(0)) // as pkg/app sizes it
	r.rep.rows = append(r.rep.rows, scenarioRow{sc: ls, m: m, ceil: r.argon2Ceiling(ctx, hash, bound, 5*time.Second)})
	r.rep.logins = r.hasherPeak(ctx, a, sd)
	r.rep.logins.bound = bound
	if m := regexp.MustCompile(`\$m=([0-9]+),`).FindStringSubmatch(hash); m != nil {
		r.rep.logins.memKiB, _ = strconv.Atoi(m[1])
	}
	r.rep.logins.rss = m.peakRSS

	// Known and unknown addresses, timed one request at a time.
	if err := r.enumeration(ctx, srv, sd); err != nil {
		return err
	}

	if o.Profile != "" {
		if err := r.profile(ctx, a, rs); err != nil {
			return err
		}
	}

	// The optional large size: the list page again.
	if o.Large > 0 {
		if err := sd.grow(ctx, o.Large); err != nil {
			return err
		}
		if rs, err = r.loginResidents(ctx, sd, base); err != nil {
			return err
		}
		m, err := r.measureScenario(ctx, srv, r.listScenario(base, rs), r.hasName(rs[0]))
		if err != nil {
			return err
		}
		r.rep.sizes = append(r.rep.sizes, sizePoint{invoices: sd.total, m: m})
	}
	if err := r.staffRows(ctx, srv, sd); err != nil {
		return err
	}
	srv.stop()
	if srv.errors.Load() > 0 {
		r.rep.notes = append(r.rep.notes, fmt.Sprintf("the server logged %d errors (see %s)", srv.errors.Load(), filepath.Join(r.dir, "server.log")))
	}
	if err := r.importMemoryRows(ctx, sd.communes[0]); err != nil {
		return err
	}

	if o.Stateless {
		st, err := r.stateless(ctx, rs)
		if err != nil {
			return err
		}
		r.rep.stateless = st
	}
	return nil
}

func (r *run) hasName(res *resident) func([]byte) bool {
	return func(b []byte) bool { return bytes.Contains(b, []byte(res.c.residentName())) }
}

func (r *run) pageScenario(name, label, base string, rs []*resident, paths func(*resident) []string) scenario {
	sc := pageScenario(name, base, rs, r.o.Clients, paths)
	sc.label = label
	return sc
}

func (r *run) listScenario(base string, rs []*resident) scenario {
	return r.pageScenario("list", "GET /factures", base, rs, func(*resident) []string { return []string{"/factures"} })
}

func pathsOf(ids []int64, format string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprintf(format, id)
	}
	return out
}

// loginScenario posts the login form for distinct accounts of every
// commune (P2…), skip accounts further in each, so that no account logs in
// twice at once (per-account throttling would rightly refuse it).
func (r *run) loginScenario(base string, sd *seeder, skip int) scenario {
	sc := scenario{name: "login", label: "POST /connexion", expect: http.StatusSeeOther, clients: r.o.Logins, timeout: 2 * time.Minute}
	per := max(1, 5000/len(sd.communes))
	for k := range per {
		for _, c := range sd.communes {
			p := 2 + (skip+k)%max(c.payers-1, 1)
			body := url.Values{"email": {c.email(p)}, "password": {benchPassword}}.Encode()
			sc.targets = append(sc.targets, vegetaPost(base+"/connexion", c.host, body))
		}
	}
	return sc
}

// hasherPeak sends a login storm to an in-process instance of the portal
// (same code, same configuration) to read its hasher's peak concurrency,
// which the separate server process cannot tell.
func (r *run) hasherPeak(ctx context.Context, a *app.App, sd *seeder) loginsResult {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return loginsResult{err: err.Error()}
	}
	hs := &http.Server{Handler: a.Web.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(l)
	defer hs.Close()
	sc := r.loginScenario("http://"+l.Addr().String(), sd, 2500/len(sd.communes)+1)
	m := attack(ctx, nil, sc, 5*time.Second)
	peak := a.Accounts.Hasher.PeakInFlight()
	r.progress("in-process login storm: %d clients, %d logins, %d errors, hasher peak %d in flight", sc.clients, m.requests, m.errors, peak)
	return loginsResult{peak: peak, clients: sc.clients, requests: m.requests, errors: m.errors}
}

// profile drives the list and login scenarios at an in-process instance
// under the CPU profiler, then writes a heap profile (go tool pprof).
func (r *run) profile(ctx context.Context, a *app.App, rs []*resident) error {
	if err := os.MkdirAll(r.o.Profile, 0o755); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: a.Web.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(l)
	defer hs.Close()
	base := "http://" + l.Addr().String()
	for _, sc := range []scenario{r.listScenario(base, rs),
		r.pageScenario("detail", "", base, rs, func(res *resident) []string { return pathsOf(res.invoices, "/factures/%d") })} {
		f, err := os.Create(filepath.Join(r.o.Profile, sc.name+".cpu.pprof"))
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		m := attack(ctx, nil, sc, r.o.Duration)
		pprof.StopCPUProfile()
		f.Close()
		r.progress("profile %s (in-process): %.0f req/s, p99 %s → %s", sc.name, m.rps, ms(m.p99), f.Name())
	}
	f, err := os.Create(filepath.Join(r.o.Profile, "heap.pprof"))
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}
