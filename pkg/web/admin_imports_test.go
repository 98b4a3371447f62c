package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/staff"
)

// screenUpload posts a file (and, for invoices, a ZIP of PDFs) to the
// Imports screen as c, as the browser's form does.
func screenUpload(t *testing.T, e *apptest.Env, c *http.Client, host, kind, name string, csv, zip []byte) *http.Response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("csv", name)
	fw.Write(csv)
	if zip != nil {
		zw, _ := mw.CreateFormFile("pdfs", "pdfs.zip")
		zw.Write(zip)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", e.URL(host, "/admin/imports/"+kind), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// batchLocation reads the batch page an upload redirects to.
var batchLocation = regexp.MustCompile(`^/admin/imports/(\d+)$`)

func uploadedBatch(t *testing.T, res *http.Response) string {
	t.Helper()
	m := batchLocation.FindStringSubmatch(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("upload: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	return m[1]
}

type screenProgress struct {
	Status   string `json:"status"`
	Stage    string `json:"stage"`
	Done     int    `json:"done"`
	Total    int    `json:"total"`
	Percent  int    `json:"percent"`
	Finished bool   `json:"finished"`
	Text     string `json:"text"`
}

func importProgress(t *testing.T, e *apptest.Env, c *http.Client, host, id string) screenProgress {
	t.Helper()
	res, body := fetch(t, c, e.URL(host, "/admin/imports/"+id+"/avancement"))
	var p screenProgress
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(body), &p) != nil {
		t.Fatalf("progress of %s: %d %s", id, res.StatusCode, body)
	}
	return p
}

// followImport polls the progress endpoint, as the page's script does,
// until the import is finished.
func followImport(t *testing.T, e *apptest.Env, c *http.Client, host, id string) screenProgress {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p := importProgress(t, e, c, host, id)
		if p.Finished {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("import %s still %+v", id, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const invoicesHeader = "Numéro;Référence redevable;Objet;Date;Echéance;Montant\n"

// An agent imports payers, then invoices with their PDFs, through the
// screen: the progress of the running job shows through the JSON endpoint
// and on the page, then the report lists every rejected line (escaped);
// a refused file says nothing was imported; the history names each file
// with its identity and uploader. A viewer sees the history but cannot
// upload; another commune's staff gets 404.
func TestAdminImportsProgressReportAndHistory(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	agent := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, _ := staffLogin(t, e, host, agent.Email, staffPassword)

	res, body := fetch(t, c, e.URL(host, "/admin/imports?type=factures"))
	if res.StatusCode != 200 || !strings.Contains(body, `action="/admin/imports/factures"`) || !strings.Contains(body, `name="pdfs"`) ||
		!strings.Contains(body, `enctype="multipart/form-data"`) {
		t.Fatalf("imports page (factures): %d\n%s", res.StatusCode, body)
	}
	if _, body = fetch(t, c, e.URL(host, "/admin/imports")); !strings.Contains(body, `action="/admin/imports/redevables"`) || strings.Contains(body, `name="pdfs"`) {
		t.Fatalf("imports page (redevables by default):\n%s", body)
	}

	// Payers: one good line, one refused whose cell holds markup.
	payers := "Référence;Nom;Email\nSCR1;Payeur Écran;scr1@demo.fr\nSCR2;Payeur Deux;<img src=x onerror=alert(1)>\n"
	id := uploadedBatch(t, screenUpload(t, e, c, host, "redevables", "<em>redevables.csv", []byte(payers), nil))
	if p := followImport(t, e, c, host, id); p.Status != "imported" || p.Percent != 100 || p.Done != 2 {
		t.Fatalf("payers progress at the end: %+v", p)
	}
	res, body = fetch(t, c, e.URL(host, "/admin/imports/"+id))
	if res.StatusCode != 200 || !strings.Contains(body, "Adresse mail invalide") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") ||
		strings.Contains(body, "<img src=x") || strings.Contains(body, "<em>redevables") || !strings.Contains(body, "&lt;em&gt;redevables.csv") {
		t.Fatalf("payers report:\n%s", body)
	}
	if n := countRows(t, e, `SELECT count(*) FROM audit_log WHERE action = 'import.uploaded' AND actor_kind = 'staff' AND actor_id = $1
		AND object_id = $2`, agent.ID, id); n != 1 {
		t.Errorf("the upload is not in the journal as the agent's (%d rows)", n)
	}
	if !strings.Contains(body, "<dt>Ajoutées</dt><dd>1</dd>") || !strings.Contains(body, "<dt>Refusées</dt><dd>1</dd>") || strings.Contains(body, "import-progress.js") {
		t.Fatalf("payers report counts:\n%s", body)
	}

	// Invoices: a file big enough for the job to report its lines read,
	// held by a lock on one of its invoices so that it is seen running.
	if res := screenUpload(t, e, c, host, "factures", "first.csv", []byte(invoicesHeader+"SCR-LOCK;SCR1;Cantine;10/11/2026;21/11/2026;1,00\n"),
		zipOf(t, map[string][]byte{"SCR-LOCK.pdf": []byte("%PDF-1.4 un")})); res.StatusCode != 303 {
		t.Fatalf("first invoice: %d", res.StatusCode)
	} else {
		followImport(t, e, c, host, uploadedBatch(t, res))
	}
	var file strings.Builder
	file.WriteString(invoicesHeader)
	for i := range 3000 {
		fmt.Fprintf(&file, "SCR-%d;SCR1;Cantine;10/11/2026;21/11/2026;2,50\n", i)
	}
	file.WriteString("SCR-LOCK;SCR1;Cantine;10/11/2026;21/11/2026;9,99\n")
	ctx := context.Background()
	lock, err := e.App.DB.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.Exec(`SELECT 1 FROM invoices WHERE number = 'SCR-LOCK' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	id = uploadedBatch(t, screenUpload(t, e, c, host, "factures", "factures.csv", []byte(file.String()), nil))
	var running screenProgress
	for deadline := time.Now().Add(time.Minute); ; {
		running = importProgress(t, e, c, host, id)
		if running.Status == "running" && running.Done > 0 && running.Stage != "reading" {
			break
		}
		if running.Finished || time.Now().After(deadline) {
			t.Fatalf("never seen running with its lines read: %+v", running)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if running.Total != 3001 || running.Percent <= 0 || running.Percent >= 100 || !strings.Contains(running.Text, "sur 3\u202f001") {
		t.Errorf("running progress: %+v", running)
	}
	res, body = fetch(t, c, e.URL(host, "/admin/imports/"+id))
	if res.StatusCode != 200 || !strings.Contains(body, `<progress id="progress-bar" max="100" value="`+fmt.Sprint(running.Percent)) ||
		!strings.Contains(body, `aria-live="polite"`) || !strings.Contains(body, `<script src="/static/import-progress.js"`) ||
		!strings.Contains(body, `<meta http-equiv="refresh"`) || !strings.Contains(body, ">Rafraîchir</a>") {
		t.Errorf("page of a running import:\n%s", body)
	}
	lock.Rollback()
	if p := followImport(t, e, c, host, id); p.Status != "imported" || p.Done != 3001 {
		_, body := fetch(t, c, e.URL(host, "/admin/imports/"+id))
		t.Fatalf("invoices at the end: %+v\n%s", p, body)
	}
	if n := countRows(t, e, `SELECT count(*) FROM invoices WHERE number LIKE 'SCR-%'`); n != 3001 {
		t.Fatalf("%d invoices imported", n)
	}
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/static/import-progress.js")); res.StatusCode != 200 ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("progress script: %d", res.StatusCode)
	}

	// A file with refused lines: nothing imported, every line reported, by pages.
	var bad strings.Builder
	bad.WriteString(invoicesHeader)
	for i := range 150 {
		fmt.Fprintf(&bad, "BAD-%d;NOBODY;x;10/11/2026;21/11/2026;1,00\n", i)
	}
	id = uploadedBatch(t, screenUpload(t, e, c, host, "factures", "refus.csv", []byte(bad.String()), nil))
	if p := followImport(t, e, c, host, id); p.Status != "rejected" {
		t.Fatalf("refused file: %+v", p)
	}
	_, body = fetch(t, c, e.URL(host, "/admin/imports/"+id))
	if !strings.Contains(body, "Fichier refusé : rien n'a été importé.") || strings.Count(body, "<td class=\"num\">") != 100 ||
		!strings.Contains(body, `href="/admin/imports/`+id+`?page=2"`) {
		t.Fatalf("refused report, page 1:\n%s", body)
	}
	if _, body = fetch(t, c, e.URL(host, "/admin/imports/"+id+"?page=2")); strings.Count(body, "<td class=\"num\">") != 50 || !strings.Contains(body, "BAD-149") {
		t.Fatalf("refused report, page 2:\n%s", body)
	}
	if n := countRows(t, e, `SELECT count(*) FROM invoices WHERE number LIKE 'BAD-%'`); n != 0 {
		t.Fatalf("%d invoices of a refused file", n)
	}
	// Refused at once (a line over 64 KiB): the same report.
	res = screenUpload(t, e, c, host, "factures", "long.csv", []byte("numero;reference\n"+strings.Repeat("x", 70_000)+"\n"), nil)
	_, body = fetch(t, c, e.URL(host, res.Header.Get("Location")))
	if !strings.Contains(body, "Fichier refusé : rien n'a été importé.") || !strings.Contains(body, "Ligne 2 trop longue") {
		t.Fatalf("file refused at once:\n%s", body)
	}
	// The same payers file again: "déjà importé".
	res = screenUpload(t, e, c, host, "redevables", "encore.csv", []byte(payers), nil)
	_, body = fetch(t, c, e.URL(host, res.Header.Get("Location")))
	if !strings.Contains(body, "Ce fichier a déjà été importé : rien n&#39;a changé.") || !strings.Contains(body, "Déjà importé") {
		t.Fatalf("duplicate:\n%s", body)
	}

	// The history: each file with its identity and its uploader.
	_, body = fetch(t, c, e.URL(host, "/admin/imports"))
	sum := sha256.Sum256([]byte(file.String()))
	for _, want := range []string{"factures.csv", "refus.csv", "&lt;em&gt;redevables.csv", agent.Name, "Déjà importé", "Refusé", "pdfs.zip", `aria-sort="descending"`} {
		if !strings.Contains(body, want) {
			t.Errorf("history lacks %q", want)
		}
	}
	if !strings.Contains(body, `title="`+hex.EncodeToString(sum[:])+`"`) {
		t.Errorf("history lacks the identity of factures.csv")
	}
	var withZIP string // a file with its PDFs: the identity covers both
	e.App.DB.QueryRow(`SELECT file_sha256 FROM import_batches WHERE filename = 'first.csv'`).Scan(&withZIP)
	if withZIP == "" || !strings.Contains(body, `title="`+withZIP+`"`) {
		t.Errorf("history lacks the identity of first.csv %q", withZIP)
	}
	if _, body = fetch(t, c, e.URL(host, "/admin/imports?contenu=redevables")); strings.Contains(body, "refus.csv") || !strings.Contains(body, "encore.csv") {
		t.Errorf("history filtered on payers:\n%s", body)
	}

	// A viewer reads, never uploads; another commune's staff sees nothing.
	viewer := newStaff(t, e, "sistec", "lecteur@sistec.fr", staff.RoleViewer)
	v, _ := staffLogin(t, e, host, viewer.Email, staffPassword)
	if res, body := fetch(t, v, e.URL(host, "/admin/imports")); res.StatusCode != 200 || strings.Contains(body, "multipart/form-data") || !strings.Contains(body, "factures.csv") {
		t.Errorf("viewer's imports page: %d", res.StatusCode)
	}
	before := countRows(t, e, `SELECT count(*) FROM import_batches`)
	if res := screenUpload(t, e, v, host, "redevables", "viewer.csv", []byte("Référence;Nom;Email\nVW1;Lecteur;vw1@demo.fr\n"), nil); res.StatusCode != 403 {
		t.Errorf("viewer upload: %d", res.StatusCode)
	}
	if after := countRows(t, e, `SELECT count(*) FROM import_batches`); after != before {
		t.Errorf("a viewer's upload recorded a batch")
	}
	other := newStaff(t, e, "belcastel", "agent@belcastel.fr", staff.RoleAgent)
	o, _ := staffLogin(t, e, "belcastel.localhost", other.Email, staffPassword)
	for _, path := range []string{"/admin/imports/" + id, "/admin/imports/" + id + "/avancement", "/admin/imports/999999", "/admin/imports/x"} {
		if res, _ := fetch(t, o, e.URL("belcastel.localhost", path)); res.StatusCode != 404 {
			t.Errorf("belcastel %s: %d", path, res.StatusCode)
		}
	}
	if _, body := fetch(t, o, e.URL("belcastel.localhost", "/admin/imports")); strings.Contains(body, "factures.csv") {
		t.Error("belcastel's history shows sistec's imports")
	}
}

// The same file uploaded twice at once through the screen: one applies,
// the other reports "déjà importé".
func TestAdminImportSameFileTwiceAtOnce(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	agent := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	var file strings.Builder
	file.WriteString(invoicesHeader)
	for i := range 3000 {
		fmt.Fprintf(&file, "TW-%d;SISTEC560;x;10/11/2017;21/11/2017;1,00\n", i)
	}
	ids := make([]string, 2)
	clients := make([]*http.Client, 2)
	for i := range clients {
		clients[i], _ = staffLogin(t, e, host, agent.Email, staffPassword)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res := screenUpload(t, e, clients[i], host, "factures", "deux-fois.csv", []byte(file.String()), nil)
			if m := batchLocation.FindStringSubmatch(res.Header.Get("Location")); res.StatusCode == 303 && m != nil {
				ids[i] = m[1]
			} else {
				t.Errorf("upload %d: %d", i, res.StatusCode)
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	var statuses []string
	var duplicate string
	for i, id := range ids {
		p := followImport(t, e, clients[i], host, id)
		statuses = append(statuses, p.Status)
		if p.Status == "duplicate" {
			duplicate = id
		}
	}
	if !(statuses[0] == "imported" && statuses[1] == "duplicate" || statuses[0] == "duplicate" && statuses[1] == "imported") {
		t.Fatalf("outcomes %v", statuses)
	}
	if _, body := fetch(t, clients[0], e.URL(host, "/admin/imports/"+duplicate)); !strings.Contains(body, "Déjà importé :</strong> ce fichier a déjà été importé") {
		t.Fatalf("duplicate's page:\n%s", body)
	}
	if n := countRows(t, e, `SELECT count(*) FROM invoices WHERE number LIKE 'TW-%'`); n != 3000 {
		t.Fatalf("%d invoices", n)
	}
}

// Uploads refused before they are staged — not a form upload, cut short,
// without a file, or over the size limit — get a French reason on the
// form and record nothing.
func TestAdminImportUploadRefusedChangesNothing(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	agent := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, _ := staffLogin(t, e, host, agent.Email, staffPassword)
	send := func(kind, contentType string, body io.Reader) (*http.Response, string) {
		req, _ := http.NewRequest("POST", e.URL(host, "/admin/imports/"+kind), body)
		req.Header.Set("Content-Type", contentType)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	// A multipart body cut before its end.
	var cut bytes.Buffer
	mw := multipart.NewWriter(&cut)
	fw, _ := mw.CreateFormFile("csv", "coupe.csv")
	fw.Write([]byte("Référence;Nom;Email\nCUT1;Coupé;cut1@demo.fr\n"))
	// An empty file input, as a browser sends it.
	var empty bytes.Buffer
	ew := multipart.NewWriter(&empty)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="csv"; filename=""`}
	h["Content-Type"] = []string{"application/octet-stream"}
	ew.CreatePart(h)
	ew.Close()
	cases := []struct {
		name, kind, contentType string
		body                    io.Reader
		status                  int
		text                    string
	}{
		{"not multipart", "redevables", "application/x-www-form-urlencoded", strings.NewReader("csv=x"), 400, "L&#39;envoi est illisible."},
		{"cut short", "redevables", mw.FormDataContentType(), bytes.NewReader(cut.Bytes()), 400, "L&#39;envoi a été interrompu avant la fin du fichier."},
		{"no file", "factures", ew.FormDataContentType(), bytes.NewReader(empty.Bytes()), 422, "Choisissez le fichier CSV à importer."},
	}
	for _, tc := range cases {
		res, body := send(tc.kind, tc.contentType, tc.body)
		if res.StatusCode != tc.status || !strings.Contains(body, tc.text) || !strings.Contains(body, `aria-invalid="true"`) {
			t.Errorf("%s: %d\n%s", tc.name, res.StatusCode, body)
		}
	}
	// Over the payers' limit (256 MiB): refused on its declared length,
	// before its body is read.
	var head bytes.Buffer
	big := multipart.NewWriter(&head)
	big.CreateFormFile("csv", "enorme.csv")
	req, _ := http.NewRequest("POST", e.URL(host, "/admin/imports/redevables"),
		io.MultiReader(&head, io.LimitReader(zeros{}, 300<<20)))
	req.ContentLength = int64(head.Len()) + 300<<20
	req.Header.Set("Content-Type", big.FormDataContentType())
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if body := string(b); res.StatusCode != 413 || !strings.Contains(body, "L&#39;envoi dépasse la taille autorisée (256 Mo). Rien n&#39;a été importé") {
		t.Errorf("too large: %d\n%s", res.StatusCode, body)
	}
	if n := countRows(t, e, `SELECT count(*) FROM import_batches WHERE actor_kind = 'staff'`); n != 0 {
		t.Errorf("%d batches recorded for refused uploads", n)
	}
	if n := countRows(t, e, `SELECT count(*) FROM accounts WHERE external_ref = 'CUT1'`); n != 0 {
		t.Error("a cut upload was imported")
	}
}

// zeros reads as an endless run of "0".
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
