package web_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"portail/pkg/apikey"
	"portail/pkg/apptest"
	"portail/pkg/imports"
)

// Text refused by the form middleware, in French.
const msgUnstorableText = "Le formulaire contient des caractères non valides"

func TestAnyPageNumberIsAnswered(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	// Enough invoices of each status for several pages of each tab.
	var b strings.Builder
	b.WriteString("Numéro;Référence redevable;Objet;Date;Echéance;Montant;Statut\n")
	for i, status := range strings.Split(strings.Repeat("non réglée,réglée,trésorerie,", 25), ",")[:75] {
		fmt.Fprintf(&b, "P-%03d;SISTEC560;Cantine;%02d/01/2016;28/02/2016;1,00;%s\n", i, 1+i%28, status)
	}
	if rep, err := e.App.Imports.ImportNow(ctx, sistec.ID, imports.KindInvoices, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "pages.csv", Body: strings.NewReader(b.String())}, nil); err != nil || rep.Inserted != 75 {
		t.Fatalf("import: %v %+v", err, rep)
	}
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	// One payment attempt, so that "Mes paiements" has a row.
	if res, _ := post(t, c, e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(invoiceIDByNumber(t, e, "2017-020-002059"))}}); res.StatusCode >= 400 {
		t.Fatalf("payment start: %d", res.StatusCode)
	}
	if countRows(t, e, `SELECT count(*) FROM payments`) == 0 {
		t.Fatal("no payment attempt stored")
	}
	pager := regexp.MustCompile(`Page (\d+) sur (\d+)`)
	// Past the end shows the last page; below 1 or malformed, the first.
	for _, path := range []string{"/factures?statut=toutes&", "/factures?statut=reglees&", "/factures?statut=tresorerie&",
		"/factures?", "/paiement?", "/paiements?"} {
		for q, last := range map[string]bool{
			"page=9223372036854775807":     true,
			"page=99999999999999999999999": true,
			"page=922337203685477581":      true,
			"page=1073741825":              true,
			"page=3":                       true,
			"page=0":                       false,
			"page=-9223372036854775808":    false,
			"page=abc":                     false,
		} {
			res, body := fetch(t, c, e.URL("sistec.localhost", path+q))
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s%s: status %d", path, q, res.StatusCode)
				continue
			}
			m := pager.FindStringSubmatch(body)
			if m == nil {
				if path != "/paiements?" { // one payment: one page, no pager
					t.Errorf("%s%s: no pager", path, q)
				}
				continue
			}
			if want := map[bool]string{true: m[2], false: "1"}[last]; m[1] != want {
				t.Errorf("%s%s: shows page %s of %s, want %s", path, q, m[1], m[2], want)
			}
		}
	}
}

func TestTextThatCannotBeStoredIsRefused(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	resident := login(t, e, host, "demo@demo.fr", strongPassword, false)
	messages := func() int { return countRows(t, e, `SELECT count(*) FROM messages`) }
	before := messages()

	for _, tc := range []struct {
		name   string
		client *http.Client
		path   string
		form   url.Values
	}{
		{"NUL in the login email", e.Client(), "/connexion", url.Values{"email": {"demo\x00@demo.fr"}, "password": {"x"}}},
		{"invalid UTF-8 in the login email", e.Client(), "/connexion", url.Values{"email": {"d\xffemo@demo.fr"}, "password": {"x"}}},
		{"NUL in a password", e.Client(), "/connexion", url.Values{"email": {"demo@demo.fr"}, "password": {"a\x00b"}}},
		{"NUL in a field's name", e.Client(), "/connexion", url.Values{"email\x00": {"demo@demo.fr"}}},
		{"NUL in the activation email", e.Client(), "/activation", url.Values{"email": {"x\x00@demo.fr"}}},
		{"NUL in the forgotten-password email", e.Client(), "/mot-de-passe-oublie", url.Values{"email": {"demo@demo.fr\x00"}}},
		{"NUL in a token", e.Client(), "/desabonnement/ab%00cd", url.Values{}},
		{"invalid UTF-8 in a token", e.Client(), "/activation/%C3%28", url.Values{"password": {"x"}, "confirm": {"x"}}},
		{"NUL in a contact message", resident, "/contact", url.Values{"subject": {"Question"}, "body": {"Bonjour\x00"}}},
		{"invalid UTF-8 in a contact subject", resident, "/contact", url.Values{"subject": {"Qu\xe9bec"}, "body": {"Bonjour"}}},
		{"NUL in a query parameter", resident, "/informations/papier?x=%00", url.Values{"papier": {"1"}}},
	} {
		res, body := post(t, tc.client, e.URL(host, tc.path), tc.form)
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, msgUnstorableText) {
			t.Errorf("%s: status %d, want 422 with %q", tc.name, res.StatusCode, msgUnstorableText)
		}
	}
	// The same in a multipart form.
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("subject", "Question")
	mw.WriteField("body", "Bonjour\x00")
	mw.Close()
	req, _ := http.NewRequest("POST", e.URL(host, "/contact"), &mp)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := resident.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("multipart contact message with NUL: status %d, want 422", res.StatusCode)
	}
	if got := messages(); got != before {
		t.Errorf("%d contact messages stored from refused forms", got-before)
	}
	// GET pages too.
	if res, body := fetch(t, resident, e.URL(host, "/factures?statut=%00")); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, msgUnstorableText) {
		t.Errorf("GET with NUL in the query: %d", res.StatusCode)
	}
	// Good text still goes through.
	if res, _ := post(t, resident, e.URL(host, "/contact"), url.Values{"subject": {"Crèche d'été"}, "body": {"Œuvre à Noël 🎄"}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("accented contact message: status %d", res.StatusCode)
	}

	// The API, with its JSON error shape.
	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	key, _, err := (&apikey.Store{DB: e.App.DB}).Create(ctx, sistec.ID, "Logiciel")
	if err != nil {
		t.Fatal(err)
	}
	api := apiClient{t, e, host, key}
	for name, body := range map[string]string{
		"escaped NUL":           `{"display_name":"A\u0000B","email":"a@demo.fr"}`,
		"raw NUL":               "{\"display_name\":\"A\x00B\",\"email\":\"a@demo.fr\"}",
		"invalid UTF-8":         "{\"display_name\":\"Fran\xe7ois\",\"email\":\"a@demo.fr\"}",
		"lone high surrogate":   `{"display_name":"A\ud83dB","email":"a@demo.fr"}`,
		"lone low surrogate":    `{"display_name":"A\ude00","email":"a@demo.fr"}`,
		"surrogate at the end":  `{"display_name":"A\ud83d`,
		"NUL in an object name": `{"display_name\u0000":"A","email":"a@demo.fr"}`,
	} {
		status, out := api.do("PUT", "/payers/SISTEC950", "application/json", []byte(body))
		if e, _ := out["error"].(map[string]any); status != http.StatusUnprocessableEntity || e["code"] != "invalid_text" || e["message"] == "" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	for name, path := range map[string]string{
		"NUL in the reference":           "/payers/SIS%00TEC",
		"invalid UTF-8 in the reference": "/payers/SIS%FFTEC",
		"NUL in an invoice number":       "/invoices/2017%00",
	} {
		status, out := api.do("PUT", path, "application/json", []byte(`{"display_name":"A","email":"a@demo.fr"}`))
		if status != http.StatusUnprocessableEntity || errorCode(out) != "invalid_text" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	if n := countRows(t, e, `SELECT count(*) FROM accounts WHERE external_ref LIKE 'SIS%' AND external_ref NOT LIKE 'SISTEC5%'`); n != 0 {
		t.Errorf("%d payers stored from refused requests", n)
	}
	// Escapes that decode to good text are fine: é, and 😀 as a surrogate pair.
	status, out := api.do("PUT", "/payers/SISTEC950", "application/json", []byte(`{"display_name":"Fran\u00e7ois \ud83d\ude00 \\u0000","email":"a@demo.fr"}`))
	if status != http.StatusCreated {
		t.Fatalf("good escapes: %d %v", status, out)
	}
	var name string
	e.App.DB.Get(&name, `SELECT display_name FROM accounts WHERE external_ref = 'SISTEC950'`)
	if name != `François 😀 \u0000` {
		t.Errorf("stored name %q", name)
	}
}

func TestOversizedBodiesAre413(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	resident := login(t, e, host, "demo@demo.fr", strongPassword, false)

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("subject", "Gros message")
	mw.WriteField("body", strings.Repeat("x", 10<<20))
	mw.Close()
	req, _ := http.NewRequest("POST", e.URL(host, "/contact"), &mp)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := resident.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("10 MB multipart contact message: status %d, want 413", res.StatusCode)
	}
	if res, body := post(t, e.Client(), e.URL(host, "/connexion"), url.Values{"email": {strings.Repeat("a", 1<<20)}}); res.StatusCode != http.StatusRequestEntityTooLarge ||
		!strings.Contains(body, "Les données envoyées sont trop volumineuses.") {
		t.Errorf("1 MB login form: status %d, want 413", res.StatusCode)
	}

	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	key, _, err := (&apikey.Store{DB: e.App.DB}).Create(ctx, sistec.ID, "Logiciel")
	if err != nil {
		t.Fatal(err)
	}
	api := apiClient{t, e, host, key}
	big := fmt.Sprintf(`{"display_name":"%s","email":"a@demo.fr"}`, strings.Repeat("x", 2<<20))
	for _, path := range []string{"/payers/SISTEC951", "/invoices/2017-020-009999"} {
		status, out := api.do("PUT", path, "application/json", []byte(big))
		if status != http.StatusRequestEntityTooLarge || errorCode(out) != "too_large" {
			t.Errorf("2 MB JSON to %s: %d %v", path, status, out)
		}
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	key, _, err := (&apikey.Store{DB: e.App.DB}).Create(ctx, sistec.ID, "Logiciel")
	if err != nil {
		t.Fatal(err)
	}
	for header, want := range map[string]int{
		"Bearer " + key:     http.StatusOK,
		"bearer " + key:     http.StatusOK,
		"BEARER " + key:     http.StatusOK,
		"bEaReR   " + key:   http.StatusOK,
		"Basic " + key:      http.StatusUnauthorized,
		"Bearer":            http.StatusUnauthorized,
		"Bearer ":           http.StatusUnauthorized,
		"Bearer" + key:      http.StatusUnauthorized,
		"Bearer x" + key:    http.StatusUnauthorized,
		"Token " + key:      http.StatusUnauthorized,
		"Bearer " + key[1:]: http.StatusUnauthorized,
	} {
		req, _ := http.NewRequest("GET", e.URL("sistec.localhost", "/api/v1/invoices/2017-020-002059"), nil)
		req.Header.Set("Authorization", header)
		res, err := e.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Authorization %q: %d, want %d", strings.Replace(header, key, "KEY", 1), res.StatusCode, want)
		}
	}
}
