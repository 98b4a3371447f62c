package account

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"

	"portail/pkg/auth"
	"portail/pkg/dbtest"
	"portail/pkg/jobs"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// clock is the injected Now of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// cheapParams keep tests fast; tests about cost use DefaultHashParams.
func cheapParams() auth.HashParams {
	return auth.HashParams{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
}

type env struct {
	t       *testing.T
	ctx     context.Context
	db      *sqlx.DB
	clock   *clock
	svc     *Service
	sess    *Sessions
	a, b    *tenant.Tenant
	working bool // a River client works the address requests
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	client, err := jobs.New(d, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	e := &env{t: t, ctx: context.Background(), db: d, clock: c}
	e.svc = &Service{
		DB:     d,
		Hasher: auth.NewHasherWithParams(4, cheapParams()),
		Outbox: mail.NewOutbox(client),
		Jobs:   client,
		Links: func(t *tenant.Tenant, path string) string {
			return "https://" + t.PrimaryHost + path
		},
		Now: c.Now,
	}
	e.sess = &Sessions{DB: d, IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, Now: c.Now}
	e.a = e.newTenant("sistec", "MAIRIE DE SISTEC", "sistec.example.fr", "facturation@sistec.example.fr")
	e.b = e.newTenant("autre", "MAIRIE D'AUTREVILLE", "autreville.example.fr", "service@autreville.example.fr")
	return e
}

func (e *env) newTenant(slug, name, host, contact string) *tenant.Tenant {
	e.t.Helper()
	var id int64
	if err := e.db.Get(&id, `INSERT INTO tenants (slug, name, primary_host, payfip_numcli, contact_email)
		VALUES ($1, $2, $3, '123456', $4) RETURNING id`, slug, name, host, contact); err != nil {
		e.t.Fatal(err)
	}
	return &tenant.Tenant{ID: id, Slug: slug, Name: name, PrimaryHost: host, ContactEmail: contact,
		Status: "active", PasswordMinLength: 8, ActivationMessages: "explicit", PaperlessEnabled: true}
}

// newAccount inserts an account; a non-empty password is hashed.
func (e *env) newAccount(t *tenant.Tenant, ref, name, email, status, password string) *Account {
	e.t.Helper()
	hash := ""
	if password != "" {
		var err error
		if hash, err = e.svc.Hasher.Hash(e.ctx, password); err != nil {
			e.t.Fatal(err)
		}
	}
	var id int64
	if err := e.db.Get(&id, `INSERT INTO accounts (tenant_id, external_ref, display_name, email, status, password_hash)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, t.ID, ref, name, email, status, hash); err != nil {
		e.t.Fatal(err)
	}
	a, err := e.svc.Get(e.ctx, t.ID, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// sentEmails returns the emails enqueued in River, oldest first.
func (e *env) sentEmails() []mail.Email {
	e.t.Helper()
	var raws []string
	if err := e.db.Select(&raws, `SELECT args::text FROM river_job WHERE kind = 'send_email' ORDER BY id`); err != nil {
		e.t.Fatal(err)
	}
	out := make([]mail.Email, len(raws))
	for i, r := range raws {
		var a mail.SendArgs
		if err := json.Unmarshal([]byte(r), &a); err != nil {
			e.t.Fatal(err)
		}
		out[i] = a.Email
	}
	return out
}

func (e *env) lastEmail() mail.Email {
	e.t.Helper()
	all := e.sentEmails()
	if len(all) == 0 {
		e.t.Fatal("no email enqueued")
	}
	return all[len(all)-1]
}

// tokenFromLink checks that the link is on the tenant's primary host with
// the expected path prefix and returns the token.
func (e *env) tokenFromLink(em mail.Email, t *tenant.Tenant, prefix string) string {
	e.t.Helper()
	link, _ := em.Data["Link"].(string)
	want := "https://" + t.PrimaryHost + prefix
	if !strings.HasPrefix(link, want) {
		e.t.Fatalf("link %q does not start with %q", link, want)
	}
	tok := strings.TrimPrefix(link, want)
	if len(tok) < 22 {
		e.t.Fatalf("token too short: %q", tok)
	}
	return tok
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Get(&n, q, args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

const goodPassword = "Velo-Rouge-Sous-La-Pluie"

func rep(s string, n int) string { return strings.Repeat(s, n) }

// workRequests has River work the address requests enqueued so far, with
// the same worker as the app (emails stay enqueued: sentEmails reads them),
// and waits until none is left.
func (e *env) workRequests() {
	e.t.Helper()
	if !e.working {
		workers := river.NewWorkers()
		river.AddWorker(workers, &AddressRequestWorker{Service: e.svc, Tenants: tenant.NewStore(e.db)})
		client, err := river.NewClient(riverdatabasesql.New(e.db.DB), &river.Config{
			Queues:            map[string]river.QueueConfig{RequestQueue: {MaxWorkers: 2}},
			Workers:           workers,
			FetchPollInterval: 20 * time.Millisecond,
			FetchCooldown:     20 * time.Millisecond,
			Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		e.must(err)
		ctx, cancel := context.WithCancel(context.Background())
		e.must(client.Start(ctx))
		e.t.Cleanup(func() {
			stop, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			client.Stop(stop)
			cancel()
		})
		e.working = true
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left, failed int
		e.must(e.db.Get(&left, `SELECT count(*) FROM river_job WHERE queue = $1
			AND state NOT IN ('completed', 'cancelled', 'discarded')`, RequestQueue))
		e.must(e.db.Get(&failed, `SELECT count(*) FROM river_job WHERE queue = $1
			AND (state IN ('cancelled', 'discarded') OR errors IS NOT NULL)`, RequestQueue))
		if failed > 0 {
			e.t.Fatalf("%d address requests failed", failed)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d address requests still not worked", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeRecorder records every row written to any table of the test
// database (by triggers), to compare what two requests wrote.
type writeRecorder struct{ e *env }

func (e *env) recordWrites() *writeRecorder {
	e.t.Helper()
	e.db.MustExec(`CREATE TABLE test_writes (tbl text NOT NULL, op text NOT NULL)`)
	e.db.MustExec(`CREATE FUNCTION test_record_write() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO test_writes VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$`)
	var tables []string
	e.must(e.db.Select(&tables, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND c.relname <> 'test_writes' ORDER BY 1`))
	if len(tables) < 10 {
		e.t.Fatalf("only %d tables found: %v", len(tables), tables)
	}
	for _, tbl := range tables {
		e.db.MustExec(fmt.Sprintf(`CREATE TRIGGER test_record_write AFTER INSERT OR UPDATE OR DELETE ON %q
			FOR EACH ROW EXECUTE FUNCTION test_record_write()`, tbl))
	}
	return &writeRecorder{e: e}
}

// take returns the writes since the last take, as "table OP" → rows.
func (w *writeRecorder) take() map[string]int {
	w.e.t.Helper()
	var rows []struct {
		What string `db:"what"`
		N    int    `db:"n"`
	}
	w.e.must(w.e.db.Select(&rows, `SELECT tbl || ' ' || op AS what, count(*) AS n FROM test_writes GROUP BY 1`))
	w.e.db.MustExec(`DELETE FROM test_writes`)
	out := map[string]int{}
	for _, r := range rows {
		out[r.What] = r.N
	}
	return out
}

func formatWrites(m map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s×%d; ", k, m[k])
	}
	return b.String()
}
