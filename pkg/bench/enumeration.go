package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The enumeration rows time requests that must not tell a known address
// from an unknown one: forgot-password (known vs unknown address), login
// (wrong password vs unknown address) and activation in neutral mode
// (pending account vs unknown address). Requests of both kinds are sent
// one at a time through the server process, interleaved in a random order
// per pair, each for a distinct address (no rate limit or throttling kicks
// in), and each kind's latencies are compared by their rank statistic: the
// Mann–Whitney AUC, P(first kind slower than second) + ½ P(tie). 0.5 means
// the two kinds cannot be told apart by their times; near 0 or 1 they are
// separable (the probe that found the leak saw non-overlapping quartiles).

const (
	// enumerationSamples per kind: the AUC's standard error under equal
	// distributions is then about 0.03, so [0.40, 0.60] is ±3.5 of it.
	enumerationSamples = 200
	// loginEnumerationSamples: each login costs an argon2 hash (30–40 ms
	// on a quiet 2-core machine), so fewer keep the row near ten seconds;
	// the AUC's standard error is then about 0.033.
	loginEnumerationSamples = 150
	enumerationAUCLow       = 0.40
	enumerationAUCHigh      = 0.60
	// connectionRequests: a new connection (from a new loopback address)
	// every so many requests, under every per-IP limit of a commune.
	connectionRequests = 8
	// enumerationWarmup requests (unknown addresses) precede each row.
	enumerationWarmup = 10
)

// enumerationResult is one row.
type enumerationResult struct {
	label          string // the request
	first, second  string // the kinds compared, e.g. "known", "unknown"
	firsts, secnds []time.Duration
	errors         int
	firstError     string
	elapsed        time.Duration
	cpu            cpuShare
}

// auc is the Mann–Whitney U of a over b divided by len(a)·len(b):
// P(a > b) + ½ P(a = b), computed from the ranks of the pooled samples.
func auc(a, b []time.Duration) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0.5
	}
	type obs struct {
		d     time.Duration
		fromA bool
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, d := range a {
		all = append(all, obs{d, true})
	}
	for _, d := range b {
		all = append(all, obs{d, false})
	}
	slices.SortFunc(all, func(x, y obs) int { return cmp.Compare(x.d, y.d) })
	var rankSumA float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].d == all[i].d {
			j++
		}
		mid := float64(i+j+1) / 2 // ranks i+1…j share their mean
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankSumA += mid
			}
		}
		i = j
	}
	na, nb := float64(len(a)), float64(len(b))
	return (rankSumA - na*(na+1)/2) / (na * nb)
}

// quartiles returns p25, p50 and p75 of ds.
func quartiles(ds []time.Duration) (q1, q2, q3 time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return at(0.25), at(0.50), at(0.75)
}

func (e enumerationResult) auc() float64 { return auc(e.firsts, e.secnds) }

func (e enumerationResult) pass() bool {
	a := e.auc()
	return e.errors == 0 && len(e.firsts) > 0 && a >= enumerationAUCLow && a <= enumerationAUCHigh
}

// prepareEnumeration, before the server starts (it caches communes):
// activation messages neutral in every bench commune, and one pending
// account per activation sample.
func (r *run) prepareEnumeration(ctx context.Context, sd *seeder) error {
	if !sd.enumerationFits() {
		return nil
	}
	if _, err := r.db.ExecContext(ctx, `UPDATE tenants SET activation_messages = 'neutral' WHERE slug LIKE 'bench-%'`); err != nil {
		return err
	}
	for i := range enumerationSamples {
		c, p := sd.enumerationPayer(i, 2)
		if _, err := r.db.ExecContext(ctx, `UPDATE accounts SET status = 'pending', password_hash = ''
			WHERE tenant_id = $1 AND email = $2`, c.t.ID, c.email(p)); err != nil {
			return err
		}
	}
	return nil
}

// enumerationPayer is the payer of sample i in block (0: forgot-password,
// 1: login, 2: activation): a distinct address for every sample, spread
// over the communes, taken from the last payers of each.
func (sd *seeder) enumerationPayer(i, block int) (*commune, int) {
	n := len(sd.communes)
	c := sd.communes[i%n]
	per := (enumerationSamples + n - 1) / n
	return c, c.payers - block*per - i/n
}

// enumerationFits tells whether every commune has payers enough for the
// three blocks beyond those the login storms use (P2 up to P2+storm).
func (sd *seeder) enumerationFits() bool {
	n := len(sd.communes)
	per := (enumerationSamples + n - 1) / n
	storm := max(1, 5000/n) + 2500/n + 1 // see loginScenario and hasherPeak
	for _, c := range sd.communes {
		if c.payers-3*per <= storm+2 {
			return false
		}
	}
	return true
}

// enumeration measures the three rows on the server at base.
func (r *run) enumeration(ctx context.Context, srv *server, sd *seeder) error {
	if !sd.enumerationFits() {
		r.rep.notes = append(r.rep.notes, "enumeration rows skipped: too few payers per commune")
		return nil
	}
	base := srv.url("")
	unknown := func(c *commune, i int) string { return fmt.Sprintf("inconnu%d@%s.example.fr", i, c.slug) }
	rows := []struct {
		label, first, second, path string
		samples, block             int
		form                       func(c *commune, p int, known bool, i int) url.Values
		expect                     int
		answer                     string
	}{
		{"POST /mot-de-passe-oublie", "known", "unknown", "/mot-de-passe-oublie", enumerationSamples, 0,
			func(c *commune, p int, known bool, i int) url.Values {
				if known {
					return url.Values{"email": {c.email(p)}}
				}
				return url.Values{"email": {unknown(c, i)}}
			}, http.StatusOK, "Si un compte actif correspond à cette adresse"},
		{"POST /connexion", "wrong pw", "unknown", "/connexion", loginEnumerationSamples, 1,
			func(c *commune, p int, known bool, i int) url.Values {
				email := c.email(p)
				if !known {
					email = unknown(c, enumerationSamples+i)
				}
				return url.Values{"email": {email}, "password": {"Pas-le-bon-mot-de-passe-1"}}
			}, http.StatusUnauthorized, "Adresse mail ou mot de passe incorrect."},
		{"POST /activation (neutral)", "pending", "unknown", "/activation", enumerationSamples, 2,
			func(c *commune, p int, known bool, i int) url.Values {
				if known {
					return url.Values{"email": {c.email(p)}}
				}
				return url.Values{"email": {unknown(c, 2*enumerationSamples+i)}}
			}, http.StatusOK, "Si votre adresse est connue du service"},
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for _, row := range rows {
		res := enumerationResult{label: row.label, first: row.first, second: row.second}
		client := newClient(1, 30*time.Second)
		sent := 0
		send := func(c *commune, form url.Values) (time.Duration, error) {
			if sent%connectionRequests == 0 {
				// A new connection from the next loopback address, opened
				// outside the measure.
				client.CloseIdleConnections()
				if hc, _, err := do(ctx, client, http.MethodGet, base, "", "/healthz", "", nil); err != nil {
					return 0, err
				} else if hc.StatusCode != http.StatusOK {
					return 0, fmt.Errorf("healthz: %d", hc.StatusCode)
				}
			}
			sent++
			start := time.Now()
			resp, body, err := do(ctx, client, http.MethodPost, base, c.host, row.path, "", form)
			d := time.Since(start)
			if err != nil {
				return 0, err
			}
			if resp.StatusCode != row.expect || !bytes.Contains(body, []byte(row.answer)) {
				res.errors++
				if res.firstError == "" {
					res.firstError = fmt.Sprintf("%s on %s: %d %.200s", row.path, c.host, resp.StatusCode, body)
				}
			}
			return d, nil
		}
		r.progress("enumeration %s: %d × %s and %d × %s, interleaved…", row.label, row.samples, row.first, row.samples, row.second)
		for i := range enumerationWarmup {
			c := sd.communes[i%len(sd.communes)]
			if _, err := send(c, row.form(c, 0, false, 3*enumerationSamples+i)); err != nil {
				return fmt.Errorf("bench: enumeration %s: %w", row.label, err)
			}
		}
		res.errors, res.firstError = 0, ""
		c0 := r.cpuSnapshot(srv)
		start := time.Now()
		for i := range row.samples {
			c, p := sd.enumerationPayer(i, row.block)
			knownFirst := rng.IntN(2) == 0
			for k := range 2 {
				known := (k == 0) == knownFirst
				d, err := send(c, row.form(c, p, known, i))
				if err != nil {
					return fmt.Errorf("bench: enumeration %s: %w", row.label, err)
				}
				if known {
					res.firsts = append(res.firsts, d)
				} else {
					res.secnds = append(res.secnds, d)
				}
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		res.elapsed = time.Since(start)
		res.cpu = c0.to(r.cpuSnapshot(srv))
		client.CloseIdleConnections()
		a1, a2, a3 := quartiles(res.firsts)
		b1, b2, b3 := quartiles(res.secnds)
		r.progress("enumeration %s: %s p25/p50/p75 %s/%s/%s, %s %s/%s/%s, AUC %.3f, %d errors, %s",
			row.label, row.first, ms(a1), ms(a2), ms(a3), row.second, ms(b1), ms(b2), ms(b3), res.auc(), res.errors, res.elapsed.Round(time.Millisecond))
		if res.firstError != "" {
			r.progress("enumeration %s: first error: %s", row.label, res.firstError)
			r.rep.notes = append(r.rep.notes, fmt.Sprintf("enumeration %s: %d unexpected answers, first: %s", row.label, res.errors, res.firstError))
		}
		if res.cpu.other > 0.2 {
			r.rep.noisy = append(r.rep.noisy, fmt.Sprintf("enumeration %s (%.1f cores)", row.label, res.cpu.other))
		}
		r.rep.enumRows = append(r.rep.enumRows, res)
	}
	return nil
}

// printEnumeration writes the enumeration rows of the table.
func printEnumeration(w io.Writer, rows []enumerationResult) {
	for i, e := range rows {
		name := ""
		if i == 0 {
			name = "enumeration"
		}
		a1, a2, a3 := quartiles(e.firsts)
		b1, b2, b3 := quartiles(e.secnds)
		q := func(ds ...time.Duration) string {
			out := make([]string, len(ds))
			for i, d := range ds {
				v := float64(d) / 1e6
				switch {
				case v < 10:
					out[i] = fmt.Sprintf("%.2f", v)
				case v < 100:
					out[i] = fmt.Sprintf("%.1f", v)
				default:
					out[i] = fmt.Sprintf("%.0f", v)
				}
			}
			return strings.Join(out, "/")
		}
		fmt.Fprintf(w, "%-14s %-27s %7s %8s %-55s │ %-27s %8s %8s %6.2f │ %-27s %s\n",
			name, clip(e.label, 27), fmt.Sprintf("%d+%d", len(e.firsts), len(e.secnds)), "",
			clip(fmt.Sprintf("  %s %s · %s %s ms", e.first, q(a1, a2, a3), e.second, q(b1, b2, b3)), 55),
			"Mann–Whitney AUC", "", "", e.auc(),
			fmt.Sprintf("AUC in [%.2f, %.2f]", enumerationAUCLow, enumerationAUCHigh), verdict(e.pass()))
	}
	if len(rows) > 0 {
		fmt.Fprintf(w, "%-14s %s\n", "", "(p25/p50/p75 of each kind, one request at a time in random order per pair; AUC = P(first kind slower): 0.5 = indistinguishable)")
	}
}
