package web_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"portail/pkg/apikey"
	"portail/pkg/apptest"
)

// upload streams a multipart body with a "csv" part and, when zip is not
// nil, a "pdfs" part, to POST /imports/KIND.
func (a apiClient) upload(kind string, csv io.Reader, zip []byte) (*http.Response, map[string]any) {
	a.t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("csv", kind+".csv")
		if _, err := io.Copy(fw, csv); err != nil {
			pw.CloseWithError(err)
			return
		}
		if zip != nil {
			zw, _ := mw.CreateFormFile("pdfs", "pdfs.zip")
			zw.Write(zip)
		}
		pw.CloseWithError(mw.Close())
	}()
	return a.send("POST", "/imports/"+kind, mw.FormDataContentType(), pr)
}

// follow polls an import until its status is final.
func (a apiClient) follow(location string) map[string]any {
	a.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		status, rep := a.do("GET", strings.TrimPrefix(location, "/api/v1"), "", nil)
		if status != 200 {
			a.t.Fatalf("GET %s: %d %v", location, status, rep)
		}
		switch rep["status"] {
		case "imported", "rejected", "duplicate", "failed":
			return rep
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("import %s still %v", location, rep)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// importFile uploads a file, which must be accepted (202), and follows it.
func (a apiClient) importFile(kind, csv string, zip []byte) map[string]any {
	a.t.Helper()
	res, rep := a.upload(kind, strings.NewReader(csv), zip)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusAccepted || !strings.HasPrefix(loc, "/api/v1/imports/") || rep["status"] != "queued" ||
		loc != fmt.Sprintf("/api/v1/imports/%.0f", rep["batch_id"]) {
		a.t.Fatalf("upload: %d %q %v", res.StatusCode, loc, rep)
	}
	return a.follow(loc)
}

func sistecAPI(t *testing.T, e *apptest.Env) apiClient {
	t.Helper()
	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	key, _, err := (&apikey.Store{DB: e.App.DB}).Create(ctx, sistec.ID, "Logiciel de facturation")
	if err != nil {
		t.Fatal(err)
	}
	return apiClient{t, e, "sistec.localhost", key}
}

func TestAPIImportsAreJobs(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	api := sistecAPI(t, e)

	// Payers, then their invoices with PDFs.
	rep := api.importFile("payers", "Référence;Nom;Email\nAPI1;Payeur Un;api1@demo.fr\nAPI2;Payeur Deux;pas-une-adresse\n", nil)
	if rep["status"] != "imported" || rep["inserted"] != float64(1) || rep["rejected"] != float64(1) || rep["kind"] != "payers" {
		t.Fatalf("payers: %v", rep)
	}
	if errs, _ := rep["errors"].([]any); len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "Adresse mail invalide") {
		t.Fatalf("payers errors: %v", rep["errors"])
	}
	file := "Numéro;Référence redevable;Objet;Date;Echéance;Montant\n" +
		"API-1;API1;Cantine;10/11/2017;21/11/2017;12,50\nAPI-2;API1;Garderie;10/11/2017;21/11/2017;3,00\n"
	rep = api.importFile("invoices", file, zipOf(t, map[string][]byte{"API-1.pdf": []byte("%PDF-1.4 un"), "API-2.pdf": []byte("%PDF-1.4 deux")}))
	progress, _ := rep["progress"].(map[string]any)
	if rep["status"] != "imported" || rep["inserted"] != float64(2) || rep["pdfs"] != float64(2) ||
		progress["done"] != float64(2) || progress["total"] != float64(2) || progress["stage"] != "done" {
		t.Fatalf("invoices: %v", rep)
	}
	if u, _ := rep["uploader"].(map[string]any); u["kind"] != "api_key" || u["id"] == nil {
		t.Fatalf("uploader %v", rep["uploader"])
	}
	// The same file again: known at once, nothing changes.
	res, again := api.upload("invoices", strings.NewReader(file), zipOf(t, map[string][]byte{"API-1.pdf": []byte("%PDF-1.4 un"), "API-2.pdf": []byte("%PDF-1.4 deux")}))
	if res.StatusCode != 200 || again["already_imported"] != true || again["duplicate_of"] != rep["batch_id"] {
		t.Fatalf("same file: %d %v", res.StatusCode, again)
	}
	// A file with rejected lines: refused by the job, every line reported.
	var bad strings.Builder
	bad.WriteString("Numéro;Référence redevable;Objet;Date;Echéance;Montant\n")
	for i := range 150 {
		fmt.Fprintf(&bad, "BAD-%d;NOBODY;x;10/11/2017;21/11/2017;1,00\n", i)
	}
	rep = api.importFile("invoices", bad.String(), nil)
	errs, _ := rep["errors"].([]any)
	if rep["status"] != "rejected" || rep["rejected"] != float64(150) || len(errs) != 100 || rep["next_errors_from"] != float64(102) {
		t.Fatalf("rejected: %v %d", rep["status"], len(errs))
	}
	status, page := api.do("GET", fmt.Sprintf("/imports/%.0f?errors_from=102&errors_limit=1000", rep["batch_id"]), "", nil)
	if errs, _ := page["errors"].([]any); status != 200 || len(errs) != 50 || page["next_errors_from"] != nil {
		t.Fatalf("second page: %d %d", status, len(errs))
	}
	// A line over 64 KiB: refused while uploading, at once.
	res, refused := api.upload("invoices", strings.NewReader("numero;reference\n"+strings.Repeat("x", 70_000)+"\n"), nil)
	if res.StatusCode != 422 || errorCode(refused) != "rejected" || !strings.Contains(fmt.Sprint(refused["error"]), "Ligne 2 trop longue") ||
		res.Header.Get("Location") == "" {
		t.Fatalf("long line: %d %v", res.StatusCode, refused)
	}

	// Another commune's key cannot see the import; unknown ids are 404.
	ctx := context.Background()
	belcastel, _ := e.App.Tenants.BySlug(ctx, "belcastel")
	otherKey, _, _ := (&apikey.Store{DB: e.App.DB}).Create(ctx, belcastel.ID, "Autre")
	other := apiClient{t, e, "belcastel.localhost", otherKey}
	for _, path := range []string{fmt.Sprintf("/imports/%.0f", rep["batch_id"]), "/imports/999999", "/imports/x"} {
		if status, out := other.do("GET", path, "", nil); status != 404 || errorCode(out) != "not_found" {
			t.Errorf("belcastel GET %s: %d %v", path, status, out)
		}
	}
	if status, _ := api.do("POST", "/imports/invoices", "application/json", []byte(`{}`)); status != 400 {
		t.Errorf("JSON instead of multipart: %d", status)
	}
	var empty bytes.Buffer
	mw := multipart.NewWriter(&empty)
	mw.WriteField("other", "x")
	mw.Close()
	if status, out := api.do("POST", "/imports/invoices", mw.FormDataContentType(), empty.Bytes()); status != 400 || errorCode(out) != "missing_file" {
		t.Errorf("no csv part: %d %v", status, out)
	}
}

// S3 down: the upload is refused cleanly (503), nothing is recorded.
func TestAPIImportWithS3Down(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	api := sistecAPI(t, e)
	var before int
	e.App.DB.Get(&before, `SELECT count(*) FROM import_batches`)
	e.S3.Close()
	res, out := api.upload("invoices", strings.NewReader("Numéro;Référence redevable;Objet;Date;Echéance;Montant\nS3-1;SISTEC560;x;10/11/2017;21/11/2017;1,00\n"), nil)
	if res.StatusCode != 503 || errorCode(out) != "storage_unavailable" || res.Header.Get("Retry-After") == "" {
		t.Fatalf("S3 down: %d %v", res.StatusCode, out)
	}
	var after, jobs int
	e.App.DB.Get(&after, `SELECT count(*) FROM import_batches`)
	e.App.DB.Get(&jobs, `SELECT count(*) FROM river_job WHERE kind = 'import_batch'`)
	if after != before || jobs != 0 {
		t.Fatalf("recorded while S3 was down: %d batches (was %d), %d jobs", after, before, jobs)
	}
}

// Two uploads of the same file at once: one applies it, the other reports
// it already imported.
func TestAPISameFileUploadedTwiceAtOnce(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	api := sistecAPI(t, e)
	var b strings.Builder
	b.WriteString("Numéro;Référence redevable;Objet;Date;Echéance;Montant\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "TW-%d;SISTEC560;x;10/11/2017;21/11/2017;1,00\n", i)
	}
	outcomes := make([]map[string]any, 2)
	var wg sync.WaitGroup
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, rep := api.upload("invoices", strings.NewReader(b.String()), nil)
			switch res.StatusCode {
			case 202:
				outcomes[i] = api.follow(res.Header.Get("Location"))
			case 200:
				outcomes[i] = rep // the other was imported already
			default:
				t.Errorf("upload: %d %v", res.StatusCode, rep)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	statuses := []string{fmt.Sprint(outcomes[0]["status"]), fmt.Sprint(outcomes[1]["status"])}
	if !(statuses[0] == "imported" && statuses[1] == "duplicate" || statuses[0] == "duplicate" && statuses[1] == "imported") {
		t.Fatalf("outcomes %v", statuses)
	}
	var n int
	e.App.DB.Get(&n, `SELECT count(*) FROM invoices WHERE number LIKE 'TW-%'`)
	if n != 3000 {
		t.Fatalf("%d invoices", n)
	}
}

// Ten writes of the same new payer at once create one account: one 201,
// nine 200.
func TestAPIConcurrentPutOfOnePayer(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	api := sistecAPI(t, e)
	codes := make([]int, 10)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], _ = api.do("PUT", "/payers/RACE1", "application/json", []byte(`{"display_name":"Course","email":"race1@demo.fr"}`))
		}()
	}
	close(start)
	wg.Wait()
	created, ok := 0, 0
	for _, c := range codes {
		switch c {
		case 201:
			created++
		case 200:
			ok++
		}
	}
	var rows int
	e.App.DB.Get(&rows, `SELECT count(*) FROM accounts WHERE external_ref = 'RACE1'`)
	if created != 1 || ok != 9 || rows != 1 {
		t.Fatalf("codes %v, %d accounts", codes, rows)
	}
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, b := range files {
		fw, _ := w.Create(name)
		fw.Write(b)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
