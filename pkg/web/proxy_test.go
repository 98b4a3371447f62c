package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/config"
)

// behindProxy runs the portal as deployed behind a load balancer: the test
// client's address (127.0.0.1) is http.trusted_proxies, so the client
// address is read from the X-Forwarded-For it sends. The PayFiP simulator
// still calls from 127.0.0.2, directly.
func behindProxy(t *testing.T) *apptest.Env {
	t.Helper()
	return apptest.Start(t, apptest.Options{Demo: true, Config: func(c *config.Config) {
		c.HTTP.TrustedProxies = []string{"127.0.0.1/32"}
	}})
}

// proxied sends a request as the trusted proxy relays it: the client's
// own headers, forwarded as they came, plus those set here (a nil value
// leaves the header out; "" sends it empty).
func proxied(t *testing.T, c *http.Client, method, u string, form url.Values, headers map[string]*string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		if v != nil {
			req.Header[k] = []string{*v}
		}
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func ptr(s string) *string { return &s }

// F1 of the probe after issue 9: behind a trusted proxy, X-Real-IP (which
// any client can send, and the proxy passes on) must never be taken for
// the client's address — not even when X-Forwarded-For is missing, empty
// or unreadable. Only X-Forwarded-For from the proxy counts.
func TestForgedClassicResultThroughTrustedProxyChangesNothing(t *testing.T) {
	e := behindProxy(t)
	const host, number = "belcastel.localhost", "EAU-2024-000456"
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	c := login(t, e, host, "demo@demo.fr", strongPassword, false)
	payfipURL := startPayment(t, e, c, host, number)
	q := payfipURL.Query()
	refdet := q.Get("refdet")
	paid := url.Values{"numcli": {q.Get("numcli")}, "exer": {q.Get("exer")}, "refdet": {refdet}, "montant": {q.Get("montant")},
		"mel": {"demo@demo.fr"}, "saisie": {"T"}, "resultrans": {"P"}, "numauto": {"FAKE01"},
		"dattrans": {"02122026"}, "heurtrans": {"0410"}}
	returnURL := e.URL(host, "/paiement/retour-classique")
	state := func() (string, string) {
		t.Helper()
		var inv, pay string
		if err := e.App.DB.QueryRow(`SELECT i.status, p.status FROM invoices i, payments p
			WHERE i.number = $1 AND p.refdet = $2`, number, refdet).Scan(&inv, &pay); err != nil {
			t.Fatal(err)
		}
		return inv, pay
	}

	realIP := ptr("127.0.0.2") // the simulator's address: in PayFiP's networks
	for _, tc := range []struct {
		name    string
		headers map[string]*string
	}{
		{"X-Real-IP, no X-Forwarded-For", map[string]*string{"X-Real-Ip": realIP}},
		{"X-Real-IP, empty X-Forwarded-For", map[string]*string{"X-Real-Ip": realIP, "X-Forwarded-For": ptr("")}},
		{"X-Real-IP, X-Forwarded-For ip:port", map[string]*string{"X-Real-Ip": realIP, "X-Forwarded-For": ptr("203.0.113.9:5555")}},
		{"X-Real-IP, X-Forwarded-For not an address", map[string]*string{"X-Real-Ip": realIP, "X-Forwarded-For": ptr("unknown")}},
		{"X-Real-IP, X-Forwarded-For with an empty hop", map[string]*string{"X-Real-Ip": realIP, "X-Forwarded-For": ptr("127.0.0.2, ")}},
		{"other client headers", map[string]*string{"True-Client-Ip": realIP, "X-Client-Ip": realIP, "Forwarded": ptr("for=127.0.0.2")}},
	} {
		for _, client := range []*http.Client{c, e.Client()} {
			res := proxied(t, client, http.MethodPost, returnURL, paid, tc.headers)
			if res.StatusCode != http.StatusSeeOther {
				t.Errorf("%s: %d, want 303 to the attempt's state", tc.name, res.StatusCode)
			}
			if inv, pay := state(); inv != "unpaid" || pay != "pending" {
				t.Fatalf("%s: the forged result was applied: invoice %s, attempt %s", tc.name, inv, pay)
			}
		}
	}
	// Each was recorded as coming from the proxy itself, the only address
	// known for sure.
	var ips []string
	rows, err := e.App.DB.Query(`SELECT host(ip) FROM audit_log WHERE action = 'payment.classic_result_unverified' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ip string
		if err := rows.Scan(&ip); err != nil {
			t.Fatal(err)
		}
		ips = append(ips, ip)
	}
	rows.Close()
	if len(ips) != 12 || strings.Count(strings.Join(ips, " "), "127.0.0.1") != 12 {
		t.Fatalf("audited source addresses: %v, want 12 times the proxy's", ips)
	}
	if n := countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'send_email' AND args->'email'->>'template' = 'payment_confirmation'`); n != 0 {
		t.Fatalf("%d confirmation emails queued by forged results", n)
	}

	// The proxy relaying PayFiP's call (X-Forwarded-For naming PayFiP's
	// address) is what applies a result: the setup above could.
	res := proxied(t, e.Client(), http.MethodPost, returnURL, paid, map[string]*string{"X-Forwarded-For": realIP})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PayFiP's call through the proxy: %d", res.StatusCode)
	}
	if inv, pay := state(); inv != "paid" || pay != "paid" {
		t.Fatalf("PayFiP's call through the proxy: invoice %s, attempt %s", inv, pay)
	}
}

// Per-IP login throttling behind a trusted proxy: a client rotating
// X-Real-IP (with X-Forwarded-For missing, empty or unreadable) is still
// one address, the proxy's; wrong passwords for many accounts (so that no
// account's own counter kicks in) are throttled after the free ones.
func TestLoginThrottlingIgnoresRotatingRealIPBehindProxy(t *testing.T) {
	e := behindProxy(t)
	variants := []func(i int) map[string]*string{
		func(i int) map[string]*string {
			return map[string]*string{"X-Real-Ip": ptr(fmt.Sprintf("198.51.100.%d", i+1))}
		},
		func(i int) map[string]*string {
			return map[string]*string{"X-Real-Ip": ptr(fmt.Sprintf("198.51.100.%d", i+1)), "X-Forwarded-For": ptr("")}
		},
		func(i int) map[string]*string {
			return map[string]*string{"X-Real-Ip": ptr(fmt.Sprintf("198.51.100.%d", i+1)),
				"X-Forwarded-For": ptr(fmt.Sprintf("198.51.100.%d:4444", i+1))}
		},
	}
	throttled := 0
	for i := 0; i < 16 && throttled == 0; i++ {
		form := url.Values{"email": {fmt.Sprintf("victime%d@exemple.fr", i)}, "password": {"mauvais mot de passe"}}
		res := proxied(t, e.Client(), http.MethodPost, e.URL("sistec.localhost", "/connexion"), form, variants[i%len(variants)](i))
		switch res.StatusCode {
		case http.StatusTooManyRequests:
			throttled = i + 1
		case http.StatusUnauthorized:
		default:
			t.Fatalf("attempt %d: %d", i+1, res.StatusCode)
		}
	}
	// 10 free failures per address, then a delay: the 12th attempt waits.
	if throttled == 0 || throttled > 12 {
		t.Fatalf("16 wrong passwords from one client rotating X-Real-IP: throttled at attempt %d, want by the 12th", throttled)
	}
	// A genuine client behind the same proxy (its own X-Forwarded-For) is
	// not held back by that client's failures.
	form := url.Values{"email": {"autre@exemple.fr"}, "password": {"mauvais mot de passe"}}
	if res := proxied(t, e.Client(), http.MethodPost, e.URL("sistec.localhost", "/connexion"), form,
		map[string]*string{"X-Forwarded-For": ptr("203.0.113.50")}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another client behind the proxy: %d, want 401", res.StatusCode)
	}
}
