package invoice

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/blob"
	"portail/pkg/dbtest"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// memBlobs is an in-memory object store with blob.Store's contract.
type memBlobs struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    int
	failPut error
}

func newMemBlobs() *memBlobs { return &memBlobs{objects: map[string][]byte{}} }

func (m *memBlobs) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, sha string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failPut != nil {
		return m.failPut
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != size || hex.EncodeToString(sum[:]) != sha {
		return blob.ErrChecksumMismatch
	}
	if _, ok := m.objects[key]; ok {
		return fmt.Errorf("blob: put %s: %w", key, blob.ErrExists)
	}
	m.objects[key] = b
	m.puts++
	return nil
}

func (m *memBlobs) Get(ctx context.Context, key, want string) (io.ReadCloser, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[key]
	if !ok {
		return nil, 0, blob.ErrNotFound
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != want {
		return nil, 0, blob.ErrChecksumMismatch
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

// fakeMailer records the emails enqueued, checking they come with a live tx.
type fakeMailer struct {
	mu     sync.Mutex
	emails []mail.Email
}

func (f *fakeMailer) EnqueueTx(ctx context.Context, tx *sqlx.Tx, e mail.Email) error {
	if _, err := tx.ExecContext(ctx, `SELECT 1`); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emails = append(f.emails, e)
	return nil
}

func (f *fakeMailer) sent() []mail.Email {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]mail.Email(nil), f.emails...)
}

type fixture struct {
	d      *sqlx.DB
	t      *tenant.Tenant
	im     *Importer
	blobs  *memBlobs
	mails  *fakeMailer
	store  *Store
	ctx    context.Context
	nowVal time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	d := dbtest.New(t)
	return fixtureOn(t, d, "sistec")
}

func fixtureOn(t testing.TB, d *sqlx.DB, slug string) *fixture {
	t.Helper()
	f := &fixture{d: d, blobs: newMemBlobs(), mails: &fakeMailer{}, ctx: context.Background(),
		nowVal: time.Date(2017, 7, 10, 9, 0, 0, 0, time.UTC)}
	f.t = createTenant(t, d, slug)
	f.im = &Importer{DB: d, Blobs: f.blobs, Outbox: f.mails, Now: func() time.Time { return f.nowVal }}
	f.store = &Store{DB: d}
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

func csvOf(lines ...string) string {
	return header + strings.Join(lines, "\n") + "\n"
}

func zipOf(t testing.TB, files map[string][]byte) *zip.Reader {
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
	z, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func fakePDF(s string) []byte { return []byte("%PDF-1.4\n% " + s + "\n%%EOF\n") }

func (f *fixture) importString(t testing.TB, csv string, z *zip.Reader) (Report, error) {
	t.Helper()
	return f.im.Import(f.ctx, f.t, strings.NewReader(csv), z, ImportOptions{Filename: "factures.csv"})
}

func (f *fixture) mustImport(t testing.TB, csv string, z *zip.Reader) Report {
	t.Helper()
	rep, err := f.importString(t, csv, z)
	if err != nil {
		t.Fatalf("import: %v\nreport: %+v", err, rep)
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

// snapshot fingerprints every invoice and job row, to prove nothing changed.
func snapshot(t testing.TB, d *sqlx.DB) string {
	t.Helper()
	var s string
	err := d.Get(&s, `
		SELECT coalesce(md5(string_agg(i::text, '|' ORDER BY tenant_id, id)), '') ||
		       (SELECT count(*) FROM river_job)::text
		FROM invoices i`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) invoiceByNumber(t testing.TB, number string) Invoice {
	t.Helper()
	var inv Invoice
	if err := f.d.Get(&inv, `SELECT `+invoiceColumns+` FROM invoices WHERE tenant_id = $1 AND number = $2`, f.t.ID, number); err != nil {
		t.Fatalf("invoice %s: %v", number, err)
	}
	return inv
}
