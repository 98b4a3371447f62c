package imports_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"portail/pkg/apikey"
	"portail/pkg/apptest"
	"portail/pkg/invoice"
)

// invoiceLines streams an invoices file of n lines spread over payers
// P1…Ppayers, generated as it is read.
type invoiceLines struct {
	n, payers, i int
	buf          []byte
}

func (g *invoiceLines) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i <= g.n {
		if g.i == 0 {
			g.buf = append(g.buf, "numero;reference;objet;date;echeance;montant\n"...)
		} else {
			k := g.i - 1
			g.buf = append(g.buf, "M-"...)
			g.buf = strconv.AppendInt(g.buf, int64(k), 10)
			g.buf = append(g.buf, ";P"...)
			g.buf = strconv.AppendInt(g.buf, int64(k%g.payers+1), 10)
			g.buf = fmt.Appendf(g.buf, ";Restauration scolaire;%02d/07/2017;31/07/2017;%d,11\n", k%28+1, k%50000+100)
		}
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[:copy(g.buf, g.buf[n:])]
	return n, nil
}

// postFile streams body as the "csv" part of POST /api/v1/imports/invoices.
func postFile(t *testing.T, e *apptest.Env, key string, body io.Reader) (*http.Response, map[string]any) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("csv", "million.csv")
		if _, err := io.Copy(fw, body); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(mw.Close())
	}()
	return apiCall(t, e, key, "POST", "/api/v1/imports/invoices", mw.FormDataContentType(), pr)
}

func apiCall(t *testing.T, e *apptest.Env, key, method, path, contentType string, body io.Reader) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.URL("sistec.localhost", path), body)
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := e.Client()
	c.Timeout = 10 * time.Minute
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", method, path, res.StatusCode, err)
	}
	return res, out
}

// A million lines through the API: the upload is staged and answered at
// once, the job imports it while the uploader follows its progress, with
// the server's default timeouts. Not skipped in -short: the limit and the
// speed are features.
func TestMillionLinesThroughTheAPI(t *testing.T) {
	const n, payers = 1_000_000, 2000
	e := apptest.Start(t, apptest.Options{})
	t.Logf("server timeouts: read %v, write %v", e.App.Config.HTTP.ReadTimeout, e.App.Config.HTTP.WriteTimeout)
	ctx := context.Background()
	sistec, err := e.App.Tenants.BySlug(ctx, "sistec")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.DB.Exec(`
		INSERT INTO accounts (tenant_id, external_ref, display_name, email, status)
		SELECT $1, 'P' || g, 'Payeur ' || g, 'p' || g || '@example.fr', 'active'
		FROM generate_series(1, $2) g`, sistec.ID, payers); err != nil {
		t.Fatal(err)
	}
	key, _, err := (&apikey.Store{DB: e.App.DB}).Create(ctx, sistec.ID, "Logiciel de facturation")
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	res, rep := postFile(t, e, key, &invoiceLines{n: n, payers: payers})
	if res.StatusCode != http.StatusAccepted || rep["status"] != "queued" {
		t.Fatalf("upload: %d %v", res.StatusCode, rep)
	}
	t.Logf("uploaded and staged in %v", time.Since(start).Round(time.Millisecond))
	loc := res.Header.Get("Location")
	seenRunning := false
	for {
		_, rep = apiCall(t, e, key, "GET", loc, "", nil)
		if rep["status"] == "running" {
			seenRunning = true
		}
		if s := rep["status"]; s != "queued" && s != "running" {
			break
		}
		if time.Since(start) > 20*time.Minute {
			t.Fatalf("still %v", rep)
		}
		time.Sleep(500 * time.Millisecond)
	}
	elapsed := time.Since(start)
	t.Logf("imported %d lines in %v (%.0f lines/s), progress seen: %v", n, elapsed.Round(time.Millisecond), n/elapsed.Seconds(), seenRunning)
	if rep["status"] != "imported" || rep["inserted"] != float64(n) || rep["lines"] != float64(n) || rep["alerts"] != float64(payers) {
		t.Fatalf("report %v", rep)
	}
	var got int
	if err := e.App.DB.Get(&got, `SELECT count(*) FROM invoices WHERE tenant_id = $1`, sistec.ID); err != nil || got != n {
		t.Fatalf("%d invoices %v", got, err)
	}

	// The resident's list uses its index however large the table.
	if _, err := e.App.DB.Exec(`ANALYZE invoices`); err != nil {
		t.Fatal(err)
	}
	var plan []string
	if err := e.App.DB.Select(&plan, `EXPLAIN SELECT * FROM invoices WHERE tenant_id = $1 AND account_id = $2 AND status = ANY ('{unpaid}')
		ORDER BY issued_on DESC, id DESC LIMIT 20 OFFSET 20`, sistec.ID, 7); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "invoices_account_list") {
		t.Fatalf("list plan without the index:\n%s", strings.Join(plan, "\n"))
	}
	var acc int64
	e.App.DB.Get(&acc, `SELECT id FROM accounts WHERE tenant_id = $1 AND external_ref = 'P7'`, sistec.ID)
	list, total, err := e.App.Invoices.Search(ctx, sistec.ID, invoice.Query{AccountID: acc, Status: []invoice.Status{invoice.StatusUnpaid}, Page: 3, PerPage: 20})
	if err != nil || total != n/payers || len(list) != 20 {
		t.Fatalf("List: %d %d %v", total, len(list), err)
	}

	// The same file again: recognised by its identity while it is uploaded.
	start = time.Now()
	res, again := postFile(t, e, key, &invoiceLines{n: n, payers: payers})
	if res.StatusCode != http.StatusOK || again["already_imported"] != true || again["duplicate_of"] != rep["batch_id"] {
		t.Fatalf("again: %d %v", res.StatusCode, again)
	}
	t.Logf("same file again: %v", time.Since(start).Round(time.Millisecond))
}
