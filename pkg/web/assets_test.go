package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"portail/pkg/apptest"
)

// F5 of the probe after issue 9: /theme.css and /logo are cacheable by
// shared caches, so they must never carry a cookie. A browser holding only
// its remember-me cookie (its session expired) fetched them and got a new
// session and a rotated remember-me token on a public answer. They no
// longer look up the resident: no cookie is set and the token is not used.
func TestCommuneAssetsNeverSetCookies(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	const host = "sistec.localhost"
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	c := login(t, e, host, "demo@demo.fr", strongPassword, true)
	u, _ := url.Parse(e.URL(host, "/"))
	remember := cookieOf(c, u, "portail_souvenir")
	if remember == "" {
		t.Fatal("no remember-me cookie after login")
	}
	withRemember := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.URL(host, path), nil)
		req.AddCookie(&http.Cookie{Name: "portail_souvenir", Value: remember})
		res, err := e.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, path := range []string{"/theme.css", "/logo", "/theme.css"} {
		res := withRemember(path)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Cache-Control"), "public, max-age=") {
			t.Fatalf("%s: %d, Cache-Control %q", path, res.StatusCode, res.Header.Get("Cache-Control"))
		}
		if ck := res.Header.Values("Set-Cookie"); len(ck) != 0 {
			t.Fatalf("%s, a public cacheable answer, sets cookies: %q", path, ck)
		}
	}
	// The token was not spent: it still opens a session, once.
	res := withRemember("/accueil")
	if res.StatusCode != http.StatusOK || len(res.Header.Values("Set-Cookie")) != 2 || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("remember-me after the assets: %d, cookies %q, Cache-Control %q", res.StatusCode,
			res.Header.Values("Set-Cookie"), res.Header.Get("Cache-Control"))
	}
}
