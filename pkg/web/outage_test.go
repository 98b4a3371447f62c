package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"portail/pkg/apikey"
	"portail/pkg/apptest"
	"portail/pkg/dbtest"
	"portail/pkg/devenv"
)

// syncBuffer collects the portal's log while requests write to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// answer is what a client saw of one request.
type answer struct {
	status     int
	retryAfter string
	body       string
}

func do(t *testing.T, c *http.Client, method, u, contentType, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header.Get("Retry-After"), string(b)}
}

// While PostgreSQL is down, pages and the API say "try again later" (503
// with Retry-After), not "internal error"; once it is back, the same portal
// answers again without being restarted.
func TestPostgresDownAnswers503ThenRecovers(t *testing.T) {
	cluster := dbtest.Cluster(t)
	if cluster == nil {
		t.Skip("PORTAIL_TEST_DATABASE_URL is set: the shared server cannot be stopped")
	}
	logs := &syncBuffer{}
	e := apptest.Start(t, apptest.Options{Demo: true, Log: logs})
	host := "sistec.localhost"
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	resident := login(t, e, host, "demo@demo.fr", strongPassword, false)
	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	key, _, err := (&apikey.Store{DB: e.App.DB}).Create(ctx, sistec.ID, "Logiciel")
	if err != nil {
		t.Fatal(err)
	}
	anonymous := e.Client()
	anonymous.Jar = nil // no session: the login goes all the way to the throttle
	requests := []struct {
		name                      string
		client                    *http.Client
		method, path, ctype, body string
		header                    []string
	}{
		{"home page", resident, "GET", "/accueil", "", "", nil},
		{"invoice list", resident, "GET", "/factures", "", "", nil},
		{"contact message", resident, "POST", "/contact", "application/x-www-form-urlencoded", "subject=Question&body=Bonjour", nil},
		{"login", anonymous, "POST", "/connexion", "application/x-www-form-urlencoded",
			url.Values{"email": {"demo@demo.fr"}, "password": {strongPassword}}.Encode(), nil},
		{"API read", anonymous, "GET", "/api/v1/invoices/2017-020-002059", "", "", []string{"Authorization", "Bearer " + key}},
		{"API write", anonymous, "PUT", "/api/v1/payers/SISTEC960", "application/json",
			`{"display_name":"Nouveau PAYEUR","email":"nouveau.payeur@demo.fr"}`, []string{"Authorization", "Bearer " + key}},
	}
	for _, r := range requests {
		if a := do(t, r.client, r.method, e.URL(host, r.path), r.ctype, r.body, r.header...); a.status >= 400 {
			t.Fatalf("%s before the outage: %d", r.name, a.status)
		}
	}

	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	running := false
	t.Cleanup(func() {
		if !running {
			cluster.Restart(context.Background())
		}
	})
	for _, r := range requests {
		a := do(t, r.client, r.method, e.URL(host, r.path), r.ctype, r.body, r.header...)
		if a.status != http.StatusServiceUnavailable || a.retryAfter == "" {
			t.Errorf("%s while PostgreSQL is down: %d, Retry-After %q", r.name, a.status, a.retryAfter)
			continue
		}
		if strings.HasPrefix(r.path, "/api/") {
			var out struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(a.body), &out); err != nil || out.Error.Code != "unavailable" || out.Error.Message == "" {
				t.Errorf("%s: not the API's JSON error: %s", r.name, a.body)
			}
		} else if !strings.Contains(a.body, "momentanément indisponible") || !strings.Contains(a.body, "MAIRIE DE SISTEC") {
			t.Errorf("%s: not the commune's French page:\n%s", r.name, a.body)
		}
	}
	// The commune itself cannot be looked up once its cached entry is gone.
	e.App.Tenants.Invalidate()
	if a := do(t, anonymous, "GET", e.URL(host, "/"), "", ""); a.status != http.StatusServiceUnavailable || a.retryAfter == "" ||
		!strings.Contains(a.body, "momentanément indisponible") {
		t.Errorf("login page, commune not cached, while PostgreSQL is down: %d, Retry-After %q", a.status, a.retryAfter)
	}
	e.App.Tenants.Invalidate()
	if a := do(t, anonymous, "GET", e.URL(host, "/api/v1/invoices/2017-020-002059"), "", "", "Authorization", "Bearer "+key); a.status != http.StatusServiceUnavailable ||
		!strings.Contains(a.body, `"code":"unavailable"`) {
		t.Errorf("API, commune not cached, while PostgreSQL is down: %d %s", a.status, a.body)
	}
	if t.Failed() {
		t.Logf("portal log:\n%s", logs.String())
	}

	if err := cluster.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	running = true
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range requests {
		for {
			a := do(t, r.client, r.method, e.URL(host, r.path), r.ctype, r.body, r.header...)
			if a.status < 400 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after PostgreSQL came back: still %d", r.name, a.status)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// With S3 down, a PDF download says so on a clear page (503), and works
// again once S3 is back.
func TestPDFWithS3DownAnswers503(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	c := login(t, e, host, "demo@demo.fr", strongPassword, false)
	u := e.URL(host, fmt.Sprintf("/factures/%d/pdf", invoiceIDByNumber(t, e, "2017-020-002059")))
	if a := do(t, c, "GET", u, "", ""); a.status != http.StatusOK || !strings.HasPrefix(a.body, "%PDF-") {
		t.Fatalf("PDF with S3 up: %d", a.status)
	}

	addr := strings.TrimPrefix(e.S3.URL, "http://")
	if err := e.S3.Close(); err != nil {
		t.Fatal(err)
	}
	a := do(t, c, "GET", u, "", "")
	if a.status != http.StatusServiceUnavailable || a.retryAfter == "" ||
		!strings.Contains(a.body, "Le document PDF de cette facture ne peut pas être téléchargé pour le moment.") {
		t.Fatalf("PDF with S3 down: %d, Retry-After %q:\n%s", a.status, a.retryAfter, a.body)
	}

	s3, err := devenv.StartS3(e.S3Dir, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s3.Close() })
	if a := do(t, c, "GET", u, "", ""); a.status != http.StatusOK || !strings.HasPrefix(a.body, "%PDF-") {
		t.Fatalf("PDF once S3 is back: %d", a.status)
	}
}
