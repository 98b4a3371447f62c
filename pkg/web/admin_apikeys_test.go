package web_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"portail/pkg/apikey"
	"portail/pkg/apptest"
	"portail/pkg/staff"
)

var shownKey = regexp.MustCompile(`value="(pdf_[a-z2-7]{10}_[A-Z2-7]+)"`)

// TestAPIKeysFromTheBackOffice: an administrator creates a key, shown on
// that answer only and stored hashed; it works on the API at once, on
// this commune's host only. Revoked, it is refused at the next request.
// Both are journaled. An agent or a viewer cannot open the screen nor
// post to it (403, nothing changed); another commune's administrator
// cannot revoke this commune's key (404).
func TestAPIKeysFromTheBackOffice(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	ctx := context.Background()
	admin := newStaff(t, e, "sistec", "admin@sistec.fr", staff.RoleAdmin)
	c, _ := staffLogin(t, e, "sistec.localhost", admin.Email, staffPassword)
	enrolAdmin(t, e, c, "sistec.localhost")
	page := e.URL("sistec.localhost", "/admin/cles-api")
	res, body := fetch(t, c, page)
	if res.StatusCode != 200 || !strings.Contains(body, `href="/admin/cles-api" aria-current="page"`) || !strings.Contains(body, "pas encore de clé") {
		t.Fatalf("Clés d'API: %d\n%s", res.StatusCode, body)
	}
	// A name is required.
	if res, body := post(t, c, page, url.Values{"name": {"  "}}); res.StatusCode != 422 || !strings.Contains(body, "Donnez un nom à la clé") || !strings.Contains(body, `aria-describedby="message"`) {
		t.Fatalf("nameless key: %d", res.StatusCode)
	}
	res, body = post(t, c, page, url.Values{"name": {"Logiciel <b>Berger</b>"}})
	m := shownKey.FindStringSubmatch(body)
	if res.StatusCode != 200 || m == nil || !strings.Contains(body, "elle ne sera plus jamais affichée") || strings.Contains(body, "<b>Berger</b>") {
		t.Fatalf("created key: %d\n%s", res.StatusCode, body)
	}
	key := m[1]
	// Stored as its hash only.
	h := sha256.Sum256([]byte(key))
	if n := countRows(t, e, `SELECT count(*) FROM api_keys WHERE key_hash = $1 AND created_by = $2`, h[:], admin.ID); n != 1 {
		t.Fatal("the key is not stored as its hash, with its creator")
	}
	if n := countRows(t, e, `SELECT count(*) FROM api_keys k WHERE strpos(k::text, $1) > 0`, key[15:]); n != 0 {
		t.Fatal("the key's secret is stored in clear")
	}
	// Shown once: the list shows its prefix, name, creator, never the secret.
	_, body = fetch(t, c, page)
	if strings.Contains(body, key) || !strings.Contains(body, key[:14]+"_…") || !strings.Contains(body, "Logiciel &lt;b&gt;Berger&lt;/b&gt;") ||
		!strings.Contains(body, "Agent admin") || !strings.Contains(body, "jamais") || !strings.Contains(body, "active") {
		t.Fatalf("the list after creation:\n%s", body)
	}

	// It works on the API, on sistec's host only.
	api := apiClient{t, e, "sistec.localhost", key}
	if status, out := api.do("GET", "/invoices/2017-020-002059", "", nil); status != 200 {
		t.Fatalf("the new key on the API: %d %v", status, out)
	}
	if status, _ := (apiClient{t, e, "belcastel.localhost", key}).do("GET", "/invoices/2017-020-002059", "", nil); status != 401 {
		t.Errorf("sistec's key on belcastel's host: %d", status)
	}
	belcastel, _ := e.App.Tenants.BySlug(ctx, "belcastel")
	otherKey, _, err := (&apikey.Store{DB: e.App.DB}).Create(ctx, belcastel.ID, "Autre commune")
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := (apiClient{t, e, "sistec.localhost", otherKey}).do("GET", "/invoices/2017-020-002059", "", nil); status != 401 {
		t.Errorf("belcastel's key on sistec's host: %d", status)
	}
	if _, body := fetch(t, c, page); strings.Contains(body, "Autre commune") || strings.Contains(body, ">jamais<") {
		t.Error("the list shows another commune's key, or the key's use is not recorded")
	}

	var id string
	e.App.DB.QueryRow(`SELECT id::text FROM api_keys WHERE key_hash = $1`, h[:]).Scan(&id)
	var otherID string
	e.App.DB.QueryRow(`SELECT id::text FROM api_keys WHERE tenant_id = $1`, belcastel.ID).Scan(&otherID)

	// Agents and viewers: 403 on every URL, nothing changed.
	for _, role := range []string{staff.RoleAgent, staff.RoleViewer} {
		m := newStaff(t, e, "sistec", role+"@sistec.fr", role)
		rc, _ := staffLogin(t, e, "sistec.localhost", m.Email, staffPassword)
		if res, body := fetch(t, rc, e.URL("sistec.localhost", "/admin")); res.StatusCode != 200 || strings.Contains(body, `href="/admin/cles-api"`) {
			t.Errorf("%s's menu offers Clés d'API (%d)", role, res.StatusCode)
		}
		if res, _ := fetch(t, rc, page); res.StatusCode != 403 {
			t.Errorf("%s opens Clés d'API: %d", role, res.StatusCode)
		}
		if res, body := post(t, rc, page, url.Values{"name": {"Clé d'un " + role}}); res.StatusCode != 403 || shownKey.MatchString(body) {
			t.Errorf("%s creates a key: %d", role, res.StatusCode)
		}
		if res, _ := post(t, rc, page+"/"+id+"/revocation", nil); res.StatusCode != 403 {
			t.Errorf("%s revokes a key: %d", role, res.StatusCode)
		}
	}
	if n := countRows(t, e, `SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL OR name LIKE 'Clé d''un%'`); n != 0 {
		t.Fatal("an agent's or viewer's post changed the keys")
	}
	// Another commune's key through this commune's screen: 404.
	if res, _ := post(t, c, page+"/"+otherID+"/revocation", nil); res.StatusCode != 404 {
		t.Errorf("revoking belcastel's key from sistec: %d", res.StatusCode)
	}
	if status, _ := (apiClient{t, e, "belcastel.localhost", otherKey}).do("GET", "/invoices/2017-020-002059", "", nil); status == 401 {
		t.Error("belcastel's key was revoked from sistec's screen")
	}

	// Revoked: refused at the next request.
	res, _ = post(t, c, page+"/"+id+"/revocation", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if status, out := api.do("GET", "/invoices/2017-020-002059", "", nil); status != 401 {
		t.Fatalf("the revoked key on the API: %d %v", status, out)
	}
	if _, body := fetch(t, c, page); !strings.Contains(body, "La clé est révoquée") || !strings.Contains(body, "révoquée le") || strings.Contains(body, "Révoquer<span") {
		t.Error("the list does not show the revocation")
	}
	if res, _ := post(t, c, page+"/"+id+"/revocation", nil); res.StatusCode != 404 {
		t.Errorf("revoking again: %d", res.StatusCode)
	}
	for _, action := range []string{"api_key.create", "api_key.revoke"} {
		if n := countRows(t, e, `SELECT count(*) FROM audit_log WHERE action = $1 AND actor_kind = 'staff' AND actor_id = $2 AND object_id = $3`, action, admin.ID, id); n != 1 {
			t.Errorf("%d %s entries in the journal", n, action)
		}
	}
}
