package web_test

import (
	"net/url"
	"strings"
	"testing"

	"portail/pkg/apptest"
)

// The request log never holds the secret of an emailed link: the token in
// the path is replaced, and the query string is not logged at all.
func TestTokenPathsAreRedactedInLogs(t *testing.T) {
	logs := &syncBuffer{}
	e := apptest.Start(t, apptest.Options{Demo: true, Log: logs})
	host := "sistec.localhost"
	// A real activation link, then a token of each kind of link.
	link := activate(t, e, host, "demo@demo.fr")
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	realToken := strings.TrimPrefix(u.Path, "/activation/")
	if realToken == "" || realToken == u.Path {
		t.Fatalf("unexpected activation link %s", link)
	}
	tokens := map[string]string{
		"/activation/":    realToken,
		"/mot-de-passe/":  "Zk3sQm9TLPwq2xVt8NhJc4RbUe7Yd1Fa",
		"/adresse/":       "qW5eR7tY9uI1oP3aS5dF7gH9jK1lZ3xC",
		"/desabonnement/": "0123456789abcdef0123456789abcdef",
		// The staff's emailed links.
		"/admin/invitation/":   "aS4dF6gH8jK0lZ2xC4vB6nM8qW0eR2tY",
		"/admin/mot-de-passe/": "pO9iU7yT5rE3wQ1aZ9xS7cD5fV3gB1nH",
	}
	c := e.Client()
	for prefix, token := range tokens {
		fetch(t, c, e.URL(host, prefix+token))
		post(t, c, e.URL(host, prefix+token), url.Values{"password": {"x"}, "confirm": {"y"}})
	}
	fetch(t, c, e.URL(host, "/activation?email=secret.query%40demo.fr"))

	log := logs.String()
	for prefix, token := range tokens {
		if strings.Contains(log, token) {
			t.Errorf("the log holds the token of %s", prefix)
		}
		for _, method := range []string{"GET", "POST"} {
			if !strings.Contains(log, "method="+method+" path="+prefix+"[token] ") {
				t.Errorf("no log line for %s %s[token]", method, prefix)
			}
		}
	}
	if strings.Contains(log, "secret.query") {
		t.Error("the log holds a query string")
	}
	if !strings.Contains(log, "method=GET path=/activation status=200") {
		t.Error("no log line for the page with a query string")
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}
