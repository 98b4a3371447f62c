package imports

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/dbtest"
	"portail/pkg/devenv"
	"portail/pkg/invoice"
	"portail/pkg/jobs"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// s3 is the dev S3 server (gofakes3 on disk) reached over HTTP, which a
// test may stop and start again on the same address.
type s3 struct {
	t     testing.TB
	dir   string
	addr  string
	srv   *devenv.S3Server
	store *blob.Store
}

func startS3(t testing.TB) *s3 {
	t.Helper()
	x := &s3{t: t, dir: t.TempDir(), addr: "127.0.0.1:0"}
	x.start()
	x.addr = strings.TrimPrefix(x.srv.URL, "http://")
	st, err := blob.New(context.Background(), config.S3{
		Endpoint: x.srv.URL, Region: "us-east-1", Bucket: "test",
		AccessKey: x.srv.AccessKey, SecretKey: x.srv.SecretKey,
		PathStyle: true, ChecksumMode: "when_required",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	x.store = st
	t.Cleanup(func() {
		if x.srv != nil {
			x.srv.Close()
		}
	})
	return x
}

func (x *s3) start() {
	x.t.Helper()
	var err error
	for range 50 { // the port may linger a moment after a stop
		if x.srv, err = devenv.StartS3(x.dir, x.addr); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	x.t.Fatal(err)
}

func (x *s3) stop() {
	x.srv.Close()
	x.srv = nil
}

// keys lists the stored keys under prefix.
func (x *s3) keys(prefix string) []string {
	x.t.Helper()
	keys, err := x.store.List(context.Background(), prefix)
	if err != nil {
		x.t.Fatal(err)
	}
	return keys
}

type fixture struct {
	d      *sqlx.DB
	t      *tenant.Tenant
	s      *Service
	s3     *s3
	jobs   *jobs.Client
	ctx    context.Context
	nowVal time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return fixtureOn(t, dbtest.New(t), startS3(t), "sistec")
}

// fixtureOn is a commune slug on d, with the real object store, River's
// client (insert only: tests run the jobs they need) and its outbox.
func fixtureOn(t testing.TB, d *sqlx.DB, store *s3, slug string) *fixture {
	t.Helper()
	client, err := jobs.New(d, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{d: d, s3: store, jobs: client, ctx: context.Background(),
		nowVal: time.Date(2017, 7, 10, 9, 0, 0, 0, time.UTC)}
	f.t = createTenant(t, d, slug)
	f.s = &Service{DB: d, Blobs: store.store, Jobs: client, Outbox: mail.NewOutbox(client),
		Now: func() time.Time { return f.nowVal }, TempDir: t.TempDir()}
	return f
}

func createTenant(t testing.TB, d *sqlx.DB, slug string) *tenant.Tenant {
	t.Helper()
	var id int64
	err := d.Get(&id, `
		INSERT INTO tenants (slug, name, service_label, primary_host, payfip_numcli)
		VALUES ($1, 'MAIRIE DE ' || upper($1), 'Facturation Restauration scolaire', $1 || '.localhost', '004200')
		RETURNING id`, slug)
	if err != nil {
		t.Fatal(err)
	}
	tt, err := tenant.NewStore(d).ByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// account creates an active payer with alerts on.
func (f *fixture) account(t testing.TB, ref, name string) int64 {
	t.Helper()
	return createAccount(t, f.d, f.t.ID, ref, name, strings.ToLower(ref)+"@example.fr", "active")
}

func createAccount(t testing.TB, d *sqlx.DB, tenantID int64, ref, name, email, status string) int64 {
	t.Helper()
	var id int64
	err := d.Get(&id, `
		INSERT INTO accounts (tenant_id, external_ref, display_name, email, status)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, tenantID, ref, name, email, status)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

const header = "Numéro;Référence redevable;Objet;Date;Echéance;Montant\n"

const manualLine = "2017-020-002059;SISTEC560;Multi Services;10/07/2017;21/07/2017;243,11"

func csvOf(lines ...string) string {
	return header + strings.Join(lines, "\n") + "\n"
}

// zipOf is a ZIP archive of files (nil: no archive at all).
func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, b := range files {
		fw, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(b)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fakePDF(s string) []byte { return []byte("%PDF-1.4\n% " + s + "\n%%EOF\n") }

// importNow stages and applies an invoices file (and its ZIP when not nil).
func (f *fixture) importNow(t testing.TB, csv string, z []byte) (Report, error) {
	t.Helper()
	var zf *File
	if z != nil {
		zf = &File{Name: "pdfs.zip", Body: bytes.NewReader(z)}
	}
	return f.s.ImportNow(f.ctx, f.t.ID, KindInvoices, Actor{Kind: ActorCLI},
		File{Name: "factures.csv", Body: strings.NewReader(csv)}, zf)
}

// mustImport imports an invoices file that must be imported.
func (f *fixture) mustImport(t testing.TB, csv string, z []byte) Report {
	t.Helper()
	rep, err := f.importNow(t, csv, z)
	if err != nil || rep.Status != StatusImported && rep.Status != StatusDuplicate {
		t.Fatalf("import: %v\nreport: %+v", err, rep)
	}
	return rep
}

// payers imports a payers file.
func (f *fixture) payers(t testing.TB, csv string) Report {
	t.Helper()
	rep, err := f.s.ImportNow(f.ctx, f.t.ID, KindPayers, Actor{Kind: ActorCLI},
		File{Name: "redevables.csv", Body: strings.NewReader(csv)}, nil)
	if err != nil {
		t.Fatalf("payers import: %v", err)
	}
	return rep
}

func count(t testing.TB, d *sqlx.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := d.Get(&n, query, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

// snapshot fingerprints every invoice, account and email job, to prove
// nothing changed.
func snapshot(t testing.TB, d *sqlx.DB) string {
	t.Helper()
	var s string
	err := d.Get(&s, `
		SELECT coalesce(md5(string_agg(i::text, '|' ORDER BY tenant_id, id)), '') || '/' ||
		       (SELECT coalesce(md5(string_agg(a::text, '|' ORDER BY tenant_id, id)), '') FROM accounts a) || '/' ||
		       (SELECT count(*) FROM river_job WHERE kind = 'send_email')::text
		FROM invoices i`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) invoiceByNumber(t testing.TB, number string) invoice.Invoice {
	t.Helper()
	var inv invoice.Invoice
	if err := f.d.Get(&inv, `SELECT tenant_id, id, account_id, number, object, issued_on, due_on, amount_cents, status,
		paid_at, paid_how, direct_debit, payment_suspended, declared_paid_at, pdf_key, pdf_sha256, pdf_size,
		import_batch_id, created_at, updated_at
		FROM invoices WHERE tenant_id = $1 AND number = $2`, f.t.ID, number); err != nil {
		t.Fatalf("invoice %s: %v", number, err)
	}
	return inv
}

// emails are the emails enqueued (River jobs), oldest first.
func emails(t testing.TB, d *sqlx.DB) []mail.Email {
	t.Helper()
	var raw []string
	if err := d.Select(&raw, `SELECT args::text FROM river_job WHERE kind = 'send_email' ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	out := make([]mail.Email, len(raw))
	for i, r := range raw {
		var a mail.SendArgs
		if err := json.Unmarshal([]byte(r), &a); err != nil {
			t.Fatal(err)
		}
		out[i] = a.Email
	}
	return out
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless repeats a pattern forever.
type endless struct {
	pattern []byte
	off     int
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.pattern[e.off]
		e.off = (e.off + 1) % len(e.pattern)
	}
	return len(p), nil
}
