package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"portail/pkg/apikey"
	"portail/pkg/apptest"
)

// fuzzRoute is one route of the route table that takes a body, with its
// path parameters filled in.
type fuzzRoute struct {
	method, pattern, path string
	api                   bool
}

// fuzzContentTypes are the Content-Type headers the fuzzer chooses from;
// multipart bodies use the boundary "fuzz".
var fuzzContentTypes = []string{
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=fuzz",
	"application/json",
	"application/pdf",
	"text/plain; charset=windows-1252",
	"",
}

// fuzzSeeds are the bodies every route starts from: its kind of input,
// half-broken forms, NUL, invalid UTF-8, JSON with bad escapes, multipart.
var fuzzSeeds = []struct {
	contentType int
	body        string
}{
	{0, ""},
	{0, "email=demo%40demo.fr&password=x&remember=1&confirm=x&current=x&subject=Objet&body=Texte&papier=1&reglee=1&lue=1&factures=1&factures=2"},
	{0, "email=%00&password=%ff&subject=%C3%28&body=%ED%A0%80"},
	{0, "%zz=1&;&&==&email"},
	{0, "email=" + strings.Repeat("a", 70<<10)},
	{1, "--fuzz\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nObjet\r\n--fuzz\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nTexte\x00\r\n--fuzz\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"f\xff.csv\"\r\n\r\nNuméro;Référence redevable\r\n--fuzz--\r\n"},
	{1, "--fuzz\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"export.csv\"\r\n\r\nNuméro;Référence redevable;Objet;Date;Echéance;Montant\n2017-020-009800;SISTEC560;Cantine;10/11/2017;21/11/2017;12,50\n\r\n--fuzz--\r\n"},
	{1, "--fuzz\r\n\r\n"},
	{2, `{"display_name":"Nouveau PAYEUR","email":"nouveau.payeur@demo.fr"}`},
	{2, `{"payer_reference":"SISTEC560","object":"Cantine","issued_on":"2017-11-10","due_on":"2017-11-21","amount_cents":4410,"status":"paid"}`},
	{2, `{"display_name":"A\u0000","email":"\ud800","amount_cents":-9223372036854775808,"issued_on":"0000-00-00"}`},
	{2, "{\"display_name\":\"Fran\xe7ois\"}"},
	{3, "%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"},
	{4, "\x00\xff\xfe\x80 random bytes \r\n\r\n"},
	{5, ""},
}

// bodyRoutes lists the routes that take a body, from the route table, so a
// route added later is fuzzed without anyone touching this file.
func bodyRoutes(tb testing.TB, e *apptest.Env, params map[string]string) []fuzzRoute {
	tb.Helper()
	var out []fuzzRoute
	for _, r := range e.App.Web.Routes() {
		method, pattern, _ := strings.Cut(r, " ")
		if method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions {
			continue
		}
		segs := strings.Split(pattern, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
				v, ok := params[s[1:]]
				if !ok {
					tb.Fatalf("route %s: no value for the parameter %s: add one to the fuzz target", r, s)
				}
				segs[i] = url.PathEscape(v)
			}
		}
		out = append(out, fuzzRoute{method, pattern, strings.Join(segs, "/"), strings.HasPrefix(pattern, "/api/")})
	}
	slices.SortFunc(out, func(a, b fuzzRoute) int { return strings.Compare(a.method+a.pattern, b.method+b.pattern) })
	if len(out) < 20 {
		tb.Fatalf("only %d routes with a body in the route table", len(out))
	}
	return out
}

// FuzzRequestBodies sends arbitrary bodies, under every Content-Type, to
// every public and resident route that takes one (as a logged-in resident)
// and to the API's (with a valid key), in-process on the real handler and
// database: whatever the bytes, the portal never answers 5xx. `go test`
// runs the seeds (every seed body on every route); to fuzz:
//
//	go test -run '^$' -fuzz FuzzRequestBodies -fuzztime 10m -fuzzminimizetime 50x -parallel 1 ./pkg/web
//
// (each input costs database round trips: the default minimization of up
// to 60 s per new input would stall the run).
func FuzzRequestBodies(f *testing.F) {
	e := apptest.Start(f, apptest.Options{Demo: true})
	ctx := context.Background()
	host := "sistec.localhost"
	sistec, err := e.App.Tenants.BySlug(ctx, "sistec")
	if err != nil {
		f.Fatal(err)
	}
	key, _, err := (&apikey.Store{DB: e.App.DB}).Create(ctx, sistec.ID, "Logiciel")
	if err != nil {
		f.Fatal(err)
	}
	activateFor(f, e, host, "demo@demo.fr", strongPassword)
	var accountID, invoiceID int64
	if err := e.App.DB.QueryRow(`SELECT a.id, i.id FROM accounts a JOIN invoices i ON i.tenant_id = a.tenant_id AND i.account_id = a.id
		WHERE a.tenant_id = $1 AND a.email = 'demo@demo.fr' AND i.number = '2017-020-002059'`, sistec.ID).Scan(&accountID, &invoiceID); err != nil {
		f.Fatal(err)
	}
	routes := bodyRoutes(f, e, map[string]string{
		"id":        fmt.Sprint(invoiceID),
		"token":     "aBqfAi60sa_l0F5UvEL0Sxju3yKKSBE21rkChP2j7TE",
		"reference": "SISTEC970",
		"number":    "2017-020-009700",
	})
	handler := e.App.Web.Handler()

	for i := range routes {
		for _, s := range fuzzSeeds {
			f.Add(uint16(i), uint8(s.contentType), []byte(s.body))
		}
	}
	f.Fuzz(func(t *testing.T, route uint16, contentType uint8, body []byte) {
		r := routes[int(route)%len(routes)]
		req := httptest.NewRequest(r.method, "http://"+host+r.path, bytes.NewReader(body))
		if ct := fuzzContentTypes[int(contentType)%len(fuzzContentTypes)]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if r.api {
			req.Header.Set("Authorization", "Bearer "+key)
		} else {
			// A session of its own for each input: a fuzzed logout or
			// password change must not leave the next inputs anonymous.
			sid, _, err := e.App.Sessions.Create(ctx, sistec.ID, accountID)
			if err != nil {
				t.Fatal(err)
			}
			req.AddCookie(&http.Cookie{Name: "portail_session", Value: sid})
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (%s, %d bytes): %d\n%.2000s", r.method, r.pattern, req.Header.Get("Content-Type"), len(body), rec.Code, rec.Body.String())
		}
	})
}

// activateFor activates email's account through the emailed link, with
// password pw, as a resident would.
func activateFor(tb testing.TB, e *apptest.Env, host, email, pw string) {
	tb.Helper()
	res, body, err := apptest.PostForm(e.Client(), e.URL(host, "/activation"), url.Values{"email": {email}})
	if err != nil || res.StatusCode != http.StatusOK {
		tb.Fatalf("activation of %s: %v %s", email, err, body)
	}
	link := apptest.LinkIn(tb, e.WaitMail(email, "Accès au portail des factures"), "http://")
	_, body, err = apptest.PostForm(e.Client(), link, url.Values{"password": {pw}, "confirm": {pw}})
	if err != nil || !strings.Contains(body, "Le nouveau mot de passe a été enregistré avec succès.") {
		tb.Fatalf("password of %s not saved: %v %s", email, err, body)
	}
}
