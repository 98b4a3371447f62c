package web_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type server struct{ URL string }

// newServer starts the whole portal on real services with the demo communes.
func newServer(t *testing.T) *server {
	t.Helper()
	e := apptest.Start(t, apptest.Options{})
	return &server{URL: fmt.Sprintf("http://127.0.0.1:%d", e.Port)}
}

func get(t *testing.T, ts *server, host, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	req.Host = host
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestEachCommuneShowsItsOwnLoginPage(t *testing.T) {
	ts := newServer(t)
	for host, want := range map[string][]string{
		"sistec.localhost":    {"LE PORTAIL DES FACTURES", ".. MAIRIE DE SISTEC ..", "Facturation Restauration scolaire", "Veuillez vous connecter", "Se souvenir de moi", "Oublié ?", "Connexion", "J'active mon compte"},
		"belcastel.localhost": {"LE PORTAIL DES FACTURES", ".. MAIRIE DE BELCASTEL ..", "Facturation Eau et Assainissement"},
	} {
		res, body := get(t, ts, host, "/")
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", host, res.StatusCode)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: page lacks %q", host, w)
			}
		}
	}
	_, body := get(t, ts, "belcastel.localhost", "/")
	if strings.Contains(body, "SISTEC") {
		t.Error("belcastel's page shows sistec's name")
	}
}

func TestHostNormalisation(t *testing.T) {
	ts := newServer(t)
	for _, host := range []string{"SISTEC.LOCALHOST", "sistec.localhost.", "sistec.localhost:8080", "www.sistec.localhost"} {
		res, body := get(t, ts, host, "/")
		if res.StatusCode != 200 || !strings.Contains(body, "MAIRIE DE SISTEC") {
			t.Errorf("%s: status %d", host, res.StatusCode)
		}
	}
	for _, host := range []string{"inconnu.localhost", "sistec.localhost.evil.example", "localhost", "127.0.0.1", "xsistec.localhost"} {
		res, body := get(t, ts, host, "/")
		if res.StatusCode != 404 || !strings.Contains(body, "Portail inconnu") {
			t.Errorf("%s: status %d, want 404 Portail inconnu", host, res.StatusCode)
		}
		if strings.Contains(body, "MAIRIE DE") {
			t.Errorf("%s: unknown host shows a commune", host)
		}
	}
}

func TestForwardedHostIgnoredFromUntrustedPeer(t *testing.T) {
	ts := newServer(t)
	req, _ := http.NewRequest("GET", ts.URL+"/", nil)
	req.Host = "inconnu.localhost"
	req.Header.Set("X-Forwarded-Host", "sistec.localhost")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("X-Forwarded-Host from an untrusted peer was honoured: %d", res.StatusCode)
	}
}

func TestSecurityHeadersAndProbes(t *testing.T) {
	ts := newServer(t)
	res, _ := get(t, ts, "sistec.localhost", "/")
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
	} {
		if got := res.Header.Get(h); !strings.HasPrefix(got, want) {
			t.Errorf("%s = %q, want prefix %q", h, got, want)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		res, _ := get(t, ts, "anything", p)
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	res, body := get(t, ts, "sistec.localhost", "/theme.css")
	if res.StatusCode != 200 || !strings.Contains(body, "#1d4e89") {
		t.Errorf("theme.css: %d %q", res.StatusCode, body)
	}
	_, other := get(t, ts, "belcastel.localhost", "/theme.css")
	if other == body {
		t.Error("both communes have the same colours")
	}
	res, _ = get(t, ts, "sistec.localhost", "/logo")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("logo: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	ts := newServer(t)
	req, _ := http.NewRequest("POST", ts.URL+"/connexion", strings.NewReader("email=a%40b.fr&password=x"))
	req.Host = "sistec.localhost"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: status %d, want 403", res.StatusCode)
	}
}

// F7 of the probe after issue 9: a browser that sends neither Origin nor
// Sec-Fetch-Site (too old, or stripped) but a Referer of another site is a
// cross-site form: refused like one. Same-site Referers, requests without a
// Referer (API clients) and PayFiP's routes pass.
func TestCrossSiteRefererWithoutOriginRefused(t *testing.T) {
	ts := newServer(t)
	send := func(method, path, referer string) int {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader("email=a%40b.fr&password=x"))
		req.Host = "sistec.localhost"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if referer != "" {
			req.Header.Set("Referer", referer)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, ref := range []string{"https://evil.example/page", "http://sistec.localhost.evil.example/", "http://belcastel.localhost/", "::not a url", "/relative"} {
		if got := send("POST", "/connexion", ref); got != http.StatusForbidden {
			t.Errorf("POST with Referer %q and no Origin: %d, want 403", ref, got)
		}
	}
	for _, ref := range []string{"", "http://sistec.localhost/", "https://SISTEC.localhost/connexion?x=1"} {
		if got := send("POST", "/connexion", ref); got == http.StatusForbidden {
			t.Errorf("POST with Referer %q: 403", ref)
		}
	}
	if got := send("GET", "/", "https://evil.example/page"); got != http.StatusOK {
		t.Errorf("GET with a cross-site Referer: %d", got)
	}
	if got := send("POST", "/paiement/retour-classique", "https://www.payfip.gouv.fr/tpa/paiement.web"); got == http.StatusForbidden {
		t.Error("PayFiP's classic return refused for its Referer")
	}
}

func TestCommuneTemplateOverride(t *testing.T) {
	ts := newServer(t)
	_, body := get(t, ts, "belcastel.localhost", "/")
	if !strings.Contains(body, "Service des eaux, 1 place de la Mairie, 12390 Belcastel") {
		t.Error("belcastel's footer override not used")
	}
	_, body = get(t, ts, "sistec.localhost", "/")
	if strings.Contains(body, "12390 Belcastel") {
		t.Error("belcastel's override leaked to sistec")
	}
}
