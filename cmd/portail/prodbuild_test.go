package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portail/pkg/auth"
	"portail/pkg/dbtest"
	"portail/pkg/devenv"
)

// devToolingPackages must never be linked into the production build.
var devToolingPackages = []string{
	"portail/pkg/devenv",     // embedded S3 server, SMTP catcher
	"portail/pkg/payfip/sim", // PayFiP simulator
	"portail/pkg/pgcluster",  // private PostgreSQL launcher
	"portail/pkg/bench",      // make bench
	"portail/pkg/demo",       // demo data
	"portail/pkg/dbtest",     // test databases
	"github.com/johannesboyne/gofakes3",
	"github.com/emersion/go-smtp", // SMTP server of the catcher
	"github.com/tsenart/vegeta/v12/lib",
}

func TestProductionBuildCarriesNoDevelopmentTooling(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "prod", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	if !deps["portail/pkg/app"] || !deps["time/tzdata"] {
		t.Fatalf("the dependency list looks wrong (no pkg/app or time/tzdata):\n%s", out)
	}
	for _, p := range devToolingPackages {
		if deps[p] {
			t.Errorf("production build depends on %s", p)
		}
	}
	// The development build does carry them: the list above is meaningful.
	out, err = exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "portail/pkg/devenv\n") {
		t.Fatal("development build without pkg/devenv: the check above proves nothing")
	}
}

// TestProductionBinaryFromEmptyDirectory runs the production binary as the
// container image does: alone in an empty working directory, configured by
// environment variables only, in a UTC zone. It migrates, provisions the
// communes, serves a commune's pages and writes Paris times.
func TestProductionBinaryFromEmptyDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the production binary")
	}
	bin := filepath.Join(t.TempDir(), "portail")
	build := exec.Command("go", "build", "-tags", "prod", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	dbURL := dbtest.NewURL(t)
	d, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(`DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	s3, err := devenv.StartS3(filepath.Join(t.TempDir(), "s3"), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	mc, err := devenv.StartMailCatcher(filepath.Join(t.TempDir(), "mail"), "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ml.Addr().String()
	ml.Close()
	smtpHost, smtpPort, _ := net.SplitHostPort(mc.SMTPAddr)

	empty := t.TempDir()
	env := []string{
		"TZ=UTC", // the server's own zone is not Paris: the portal must convert
		"PORTAIL_DATABASE_URL=" + dbURL,
		"PORTAIL_S3_ENDPOINT=" + s3.URL,
		"PORTAIL_S3_REGION=us-east-1",
		"PORTAIL_S3_ACCESS_KEY=" + s3.AccessKey,
		"PORTAIL_S3_SECRET_KEY=" + s3.SecretKey,
		"PORTAIL_SMTP_HOST=" + smtpHost,
		"PORTAIL_SMTP_PORT=" + smtpPort,
		"PORTAIL_SMTP_SECURITY=none",
		"PORTAIL_HTTP_ADDR=" + addr,
		"PORTAIL_METRICS_ADDR=" + metricsAddr,
		"PORTAIL_HTTP_PUBLIC_SCHEME=http",
		"PORTAIL_PAYFIP_CALLBACK_NETWORKS=192.0.2.0/24", // a classic commune needs PayFiP's networks
	}
	runBin := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = empty, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("portail %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	runBin("migrate")
	tenantsDir, err := filepath.Abs("../../tenants") // shipped beside the binary in the image
	if err != nil {
		t.Fatal(err)
	}
	runBin("tenants", "apply", tenantsDir)
	if out, err := exec.Command(bin, "dev").CombinedOutput(); err == nil || !strings.Contains(string(out), "production build") {
		t.Fatalf("dev in the production build: %v\n%s", err, out)
	}

	// A resident with a refused attempt (retry time shown in Paris) and a
	// payment made at 00:30 in Paris (22:30 UTC the day before).
	hash, err := auth.NewHasher(1).Hash(context.Background(), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	var refusedAt time.Time
	err = d.QueryRow(`
		WITH t AS (SELECT id FROM tenants WHERE slug = 'sistec'),
		a AS (INSERT INTO accounts (tenant_id, external_ref, display_name, email, status, password_hash)
			SELECT id, 'PROD1', 'Résidente Prod', 'prod@exemple.fr', 'active', $1 FROM t RETURNING tenant_id, id),
		i AS (INSERT INTO invoices (tenant_id, account_id, number, object, issued_on, due_on, amount_cents)
			SELECT tenant_id, id, 'PROD-1', 'Cantine', '2026-07-01', '2026-07-31', 4410 FROM a RETURNING tenant_id, id),
		p AS (INSERT INTO payments (tenant_id, account_id, refdet, mode, amount_cents, email, status, created_at,
				resolved_at, resolved_by, resultrans, id_op)
			SELECT tenant_id, id, 'PRODREFUSED1', 'ws', 4410, 'prod@exemple.fr', 'refused', now(), now(), 'return', 'R',
				'9d4b5e8e-6a43-4d51-9a57-3c1f0f2b7a11'
			FROM a RETURNING tenant_id, id, resolved_at)
		INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents, status)
		SELECT p.tenant_id, p.id, i.id, 4410, 'refused' FROM p, i RETURNING (SELECT resolved_at FROM p)`,
		hash).Scan(&refusedAt)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Exec(`
		WITH a AS (SELECT tenant_id, id FROM accounts WHERE email = 'prod@exemple.fr'),
		i AS (INSERT INTO invoices (tenant_id, account_id, number, object, issued_on, due_on, amount_cents, status, paid_at, paid_how)
			SELECT tenant_id, id, 'PROD-2', 'Garderie', '2026-07-01', '2026-07-31', 1200, 'paid', '2026-07-13 22:30:00+00', 'online'
			FROM a RETURNING tenant_id, id),
		p AS (INSERT INTO payments (tenant_id, account_id, refdet, mode, amount_cents, email, status, created_at,
				resolved_at, resolved_by, resultrans, paid_at)
			SELECT tenant_id, id, 'PRODPAID1', 'ws', 1200, 'prod@exemple.fr', 'paid', '2026-07-13 22:30:00+00',
				'2026-07-13 22:31:00+00', 'notification', 'P', '2026-07-13 22:30:00+00' FROM a RETURNING tenant_id, id)
		INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents, status)
		SELECT p.tenant_id, p.id, i.id, 1200, 'paid' FROM p, i`)
	if err != nil {
		t.Fatal(err)
	}

	serve := exec.Command(bin, "serve")
	serve.Dir, serve.Env = empty, env
	var logs bytes.Buffer
	serve.Stdout, serve.Stderr = &logs, &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		serve.Process.Signal(os.Interrupt)
		serve.Wait()
		if t.Failed() {
			t.Logf("serve output:\n%s", logs.String())
		}
	}()

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, "http://"+addr+path, body)
		req.Host = "sistec.localhost"
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if code, body := get("GET", "/", nil); code != 200 || !strings.Contains(body, "MAIRIE DE SISTEC") || !strings.Contains(body, "LE PORTAIL DES FACTURES") {
		t.Fatalf("login page: %d\n%s", code, body)
	}
	if code, body := get("GET", "/static/app.css", nil); code != 200 || len(body) == 0 {
		t.Fatalf("static asset: %d", code)
	}
	if code, body := get("POST", "/connexion", url.Values{"email": {"prod@exemple.fr"}, "password": {"correct horse battery"}}); code != 200 || !strings.Contains(body, "Résidente Prod") {
		t.Fatalf("login: %d\n%s", code, body)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	if code, body := get("GET", "/paiements", nil); code != 200 || !strings.Contains(body, "14/07/2026") || strings.Contains(body, "13/07/2026") {
		t.Fatalf("Mes paiements should date the 00:30 (Paris) payment 14/07/2026: %d\n%s", code, body)
	}
	var invoiceID int64
	if err := d.QueryRow(`SELECT id FROM invoices WHERE number = 'PROD-1'`).Scan(&invoiceID); err != nil {
		t.Fatal(err)
	}
	retry := refusedAt.Add(2 * time.Hour)
	if r := retry.Truncate(time.Minute); r.Before(retry) {
		retry = r.Add(time.Minute)
	}
	want := "à partir de " + retry.In(paris).Format("15h04")
	if code, body := get("GET", fmt.Sprintf("/factures/%d", invoiceID), nil); code != 200 || !strings.Contains(body, want) {
		t.Fatalf("invoice page should say %q (Paris time): %d\n%s", want, code, body)
	}

	// Metrics: on metrics.addr only, with the pages just served.
	if code, body := get("GET", "/metrics", nil); code != 404 || strings.Contains(body, "portail_http_requests_total") {
		t.Fatalf("/metrics on the portal's listener: %d", code)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, series := range []string{`portail_http_requests_total{class="2xx",method="GET",route="/paiements"} 1`,
		`portail_http_requests_by_commune_total{class="2xx",commune="sistec"}`, `go_sql_in_use_connections{db_name="portail"}`} {
		if resp.StatusCode != 200 || !strings.Contains(string(b), series) {
			t.Fatalf("metrics listener: %d, no %s\n%s", resp.StatusCode, series, b)
		}
	}
}
