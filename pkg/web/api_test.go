package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"portail/pkg/apikey"
	"portail/pkg/apptest"
	"portail/pkg/web"
)

func TestOpenAPIDocumentMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(web.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{(\w+)\}`)
	var documented []string
	for p, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" /api/v1"+param.ReplaceAllString(p, ":$1"))
		}
	}
	e := apptest.Start(t, apptest.Options{})
	var routed []string
	for _, r := range e.App.Web.Routes() {
		if strings.Contains(r, " /api/v1/") && !strings.HasSuffix(r, "/openapi.yaml") {
			routed = append(routed, r)
		}
	}
	sort.Strings(documented)
	sort.Strings(routed)
	if strings.Join(documented, "\n") != strings.Join(routed, "\n") {
		t.Fatalf("OpenAPI document and routes differ:\ndocumented:\n%s\nrouted:\n%s", strings.Join(documented, "\n"), strings.Join(routed, "\n"))
	}
}

type apiClient struct {
	t    *testing.T
	e    *apptest.Env
	host string
	key  string
}

func (a apiClient) do(method, path, contentType string, body []byte) (int, map[string]any) {
	a.t.Helper()
	res, out := a.send(method, path, contentType, bytes.NewReader(body))
	return res.StatusCode, out
}

// send sends body (streamed) and decodes the JSON answer.
func (a apiClient) send(method, path, contentType string, body io.Reader) (*http.Response, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.e.URL(a.host, "/api/v1"+path), body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	c := a.e.Client()
	c.Timeout = 5 * time.Minute
	res, err := c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		a.t.Fatalf("%s %s: not JSON (%d): %s", method, path, res.StatusCode, raw)
	}
	return res, out
}

func errorCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestAPIv1(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	ctx := context.Background()
	keys := &apikey.Store{DB: e.App.DB}
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	belcastel, _ := e.App.Tenants.BySlug(ctx, "belcastel")
	key, _, err := keys.Create(ctx, sistec.ID, "Logiciel de facturation")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, _ := keys.Create(ctx, belcastel.ID, "Autre commune")

	for _, k := range []string{"", "pdf_nope_x", otherKey, key + "x"} {
		status, out := apiClient{t, e, "sistec.localhost", k}.do("GET", "/invoices/2017-020-002059", "", nil)
		if status != 401 || errorCode(out) != "unauthorized" {
			t.Errorf("key %q: %d %v", k, status, out)
		}
	}
	api := apiClient{t, e, "sistec.localhost", key}

	payer := []byte(`{"display_name":"Nouvel HABITANT","email":"nouvel.habitant@demo.fr"}`)
	if status, out := api.do("PUT", "/payers/SISTEC900", "application/json", payer); status != 201 {
		t.Fatalf("new payer: %d %v", status, out)
	}
	if status, out := api.do("PUT", "/payers/SISTEC900", "application/json", payer); status != 200 || out["unchanged"] != float64(1) {
		t.Fatalf("same payer again: %d %v", status, out)
	}
	if status, out := api.do("PUT", "/payers/SISTEC901", "application/json", []byte(`{"display_name":"X","email":"pas-une-adresse"}`)); status != 422 || errorCode(out) != "invalid_payer" {
		t.Fatalf("bad email: %d %v", status, out)
	}

	inv := []byte(`{"payer_reference":"SISTEC900","object":"Cantine novembre","issued_on":"2017-11-10","due_on":"2017-11-21","amount_cents":4410}`)
	if status, out := api.do("PUT", "/invoices/2017-020-009500", "application/json", inv); status != 201 || out["inserted"] != float64(1) {
		t.Fatalf("new invoice: %d %v", status, out)
	}
	if status, out := api.do("PUT", "/invoices/2017-020-009500", "application/json", inv); status != 200 || out["inserted"] != float64(0) {
		t.Fatalf("same invoice again: %d %v", status, out)
	}
	for name, body := range map[string]string{
		"unknown payer": `{"payer_reference":"NOBODY","object":"x","issued_on":"2017-11-10","due_on":"2017-11-21","amount_cents":100}`,
		"bad date":      `{"payer_reference":"SISTEC900","object":"x","issued_on":"2017-02-31","due_on":"2017-11-21","amount_cents":100}`,
		"not json":      `payer=SISTEC900`,
	} {
		status, out := api.do("PUT", "/invoices/2017-020-009501", "application/json", []byte(body))
		if status/100 != 4 || errorCode(out) == "" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	if status, _ := api.do("GET", "/invoices/2017-020-009501", "", nil); status != 404 {
		t.Errorf("rejected invoice exists: %d", status)
	}

	pdf := []byte("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
	if status, out := api.do("PUT", "/invoices/2017-020-009500/pdf", "application/pdf", pdf); status/100 != 2 || out["pdfs"] != float64(1) {
		t.Fatalf("PDF upload: %d %v", status, out)
	}
	if status, out := api.do("PUT", "/invoices/2017-020-009500/pdf", "application/pdf", []byte("GIF89a not a pdf")); status != 422 {
		t.Fatalf("non-PDF accepted: %d %v", status, out)
	}
	status, out := api.do("GET", "/invoices/2017-020-009500", "", nil)
	if status != 200 || out["amount_cents"] != float64(4410) || out["payer_reference"] != "SISTEC900" || out["issued_on"] != "2017-11-10" {
		t.Fatalf("read invoice: %d %v", status, out)
	}
	if p, _ := out["pdf"].(map[string]any); p["present"] != true || p["size"] != float64(len(pdf)) {
		t.Fatalf("pdf state: %v", out["pdf"])
	}
	// Another commune's invoice does not exist for this key.
	if status, _ := api.do("GET", "/invoices/EAU-2024-000123", "", nil); status != 404 {
		t.Errorf("belcastel's invoice through sistec: %d", status)
	}

	// The billing software's CSV export, as a multipart upload: a job.
	rep := api.importFile("invoices", "Numéro;Référence redevable;Objet;Date;Echéance;Montant\n2017-020-009600;SISTEC900;Garderie;10/11/2017;21/11/2017;12,50\n", nil)
	if rep["status"] != "imported" || rep["inserted"] != float64(1) {
		t.Fatalf("CSV import: %v", rep)
	}
	if status, out := api.do("GET", "/invoices/2017-020-009600", "", nil); status != 200 || out["amount_cents"] != float64(1250) {
		t.Fatalf("imported invoice: %d %v", status, out)
	}
	if status, out := api.do("GET", "/nothing-here", "", nil); status != 404 || errorCode(out) != "not_found" {
		t.Errorf("unknown API route: %d %v", status, out)
	}
}
