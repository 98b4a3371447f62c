package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portail/pkg/dbtest"
	"portail/pkg/pgcluster"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestServeRefusesIncompleteConfiguration(t *testing.T) {
	t.Setenv("PORTAIL_DATABASE_URL", "")
	err := run([]string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "database.url is required") || !strings.Contains(err.Error(), "s3.endpoint") {
		t.Fatalf("serve without configuration: %v", err)
	}
}

func TestServeRefusesPendingMigrations(t *testing.T) {
	url := dbtest.NewURL(t)
	d, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(`DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTAIL_DATABASE_URL", url)
	t.Setenv("PORTAIL_S3_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("PORTAIL_S3_ACCESS_KEY", "k")
	t.Setenv("PORTAIL_S3_SECRET_KEY", "s")
	t.Setenv("PORTAIL_SMTP_HOST", "127.0.0.1")
	err = run([]string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "migration(s) pending") || !strings.Contains(err.Error(), "portail migrate") {
		t.Fatalf("serve with pending migrations: %v", err)
	}
	// migrate, then serve starts: it answers /healthz until stopped.
	if err := run([]string{"migrate"}); err != nil {
		t.Fatal(err)
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTAIL_HTTP_ADDR", fmt.Sprintf("127.0.0.1:%d", port))
	t.Setenv("PORTAIL_LOG_LEVEL", "error")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runContext(ctx, []string{"serve"}) }()
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case err := <-done:
			t.Fatalf("serve after migrate stopped: %v", err)
		default:
		}
		res, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || string(body) != "ok\n" {
				t.Fatalf("/healthz: %d %q", res.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve after migrate does not answer /healthz: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestTenantsCheckNamesFileAndField(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad", "tenant.yaml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("slug: bad\nname: X\nhosts:\n  primary: bad.localhost\ncontact:\n  email: a@b.fr\npayfip:\n  numcli: \"42\"\n"), 0o644)
	err := run([]string{"tenants", "check", dir})
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "payfip.numcli") {
		t.Fatalf("tenants check: %v", err)
	}
	if err := run([]string{"tenants", "check", "../../tenants"}); err != nil {
		t.Fatalf("demo tenants: %v", err)
	}
}

func TestServeRefusesClassicCommuneWithoutCallbackNetworks(t *testing.T) {
	t.Setenv("PORTAIL_DATABASE_URL", dbtest.NewURL(t))
	t.Setenv("PORTAIL_S3_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("PORTAIL_S3_ACCESS_KEY", "k")
	t.Setenv("PORTAIL_S3_SECRET_KEY", "s")
	t.Setenv("PORTAIL_SMTP_HOST", "127.0.0.1")
	if err := run([]string{"tenants", "apply", "../../tenants"}); err != nil { // belcastel is in classic mode
		t.Fatal(err)
	}
	err := run([]string{"serve"})
	if err == nil || !strings.Contains(err.Error(), "payfip.callback_networks") || !strings.Contains(err.Error(), "belcastel") ||
		strings.Contains(err.Error(), "sistec") {
		t.Fatalf("serve with a classic commune and no callback networks: %v", err)
	}
	// With PayFiP's networks, serve gets past the check: here it then fails
	// to listen on a port already taken.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	t.Setenv("PORTAIL_HTTP_ADDR", taken.Addr().String())
	t.Setenv("PORTAIL_PAYFIP_CALLBACK_NETWORKS", "192.0.2.0/24")
	err = run([]string{"serve"})
	if err == nil || strings.Contains(err.Error(), "callback_networks") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve with callback networks: %v", err)
	}
}

// `portail serve` warns when PayFiP's callback networks (the deployment's
// or a commune's own) include loopback, link-local or private ranges: in
// production they are PayFiP's public networks. Public ones say nothing.
func TestServeWarnsAboutNonPublicCallbackNetworks(t *testing.T) {
	url := dbtest.NewURL(t)
	t.Setenv("PORTAIL_DATABASE_URL", url)
	t.Setenv("PORTAIL_S3_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("PORTAIL_S3_ACCESS_KEY", "k")
	t.Setenv("PORTAIL_S3_SECRET_KEY", "s")
	t.Setenv("PORTAIL_SMTP_HOST", "127.0.0.1")
	if err := run([]string{"tenants", "apply", "../../tenants"}); err != nil {
		t.Fatal(err)
	}
	// serve gets past the checks, then fails to listen on a port taken.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	t.Setenv("PORTAIL_HTTP_ADDR", taken.Addr().String())
	serve := func() string {
		t.Helper()
		var err error
		out := captureStderr(t, func() { err = run([]string{"serve"}) })
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("serve: %v\n%s", err, out)
		}
		return out
	}
	const warning = "PayFiP callback networks include loopback, link-local or private addresses"

	t.Setenv("PORTAIL_PAYFIP_CALLBACK_NETWORKS", "192.0.2.0/24,198.51.100.7")
	if out := serve(); strings.Contains(out, warning) {
		t.Fatalf("public networks warned about:\n%s", out)
	}

	t.Setenv("PORTAIL_PAYFIP_CALLBACK_NETWORKS", "192.0.2.0/24,127.0.0.2/32,10.0.0.0/8")
	d, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(`UPDATE tenants SET payfip_callback_networks = '{198.51.100.0/24,fe80::/64}' WHERE slug = 'belcastel'`); err != nil {
		t.Fatal(err)
	}
	out := serve()
	lines := strings.Split(out, "\n")
	var warned []string
	for _, l := range lines {
		if strings.Contains(l, warning) {
			warned = append(warned, l)
		}
	}
	if len(warned) != 2 || !strings.Contains(warned[0], "payfip.callback_networks") || !strings.Contains(warned[0], "127.0.0.2/32,10.0.0.0/8") ||
		strings.Contains(warned[0], "192.0.2.0") || !strings.Contains(warned[1], "commune belcastel") ||
		!strings.Contains(warned[1], "fe80::/64") || strings.Contains(warned[1], "198.51.100") {
		t.Fatalf("warnings:\n%s", strings.Join(warned, "\n"))
	}
}

// captureStderr returns what f wrote to os.Stderr (the log, for commands
// run inside f).
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stderr = saved }()
	f()
	w.Close()
	os.Stderr = saved
	return <-done
}

func TestTenantsCheckRecommendsWebServiceMode(t *testing.T) {
	out := captureStdout(t, func() {
		if err := run([]string{"tenants", "check", "../../tenants"}); err != nil {
			t.Fatal(err)
		}
	})
	if !strings.Contains(out, "recommendation: belcastel uses PayFiP classic mode") || !strings.Contains(out, "web-service mode (payfip.mode: ws) is recommended") ||
		!strings.Contains(out, "`portail serve` will refuse to start") || strings.Contains(out, "recommendation: sistec") {
		t.Fatalf("tenants check output:\n%s", out)
	}
	t.Setenv("PORTAIL_PAYFIP_CALLBACK_NETWORKS", "192.0.2.0/24")
	out = captureStdout(t, func() {
		if err := run([]string{"tenants", "check", "../../tenants"}); err != nil {
			t.Fatal(err)
		}
	})
	if !strings.Contains(out, "recommendation: belcastel") || strings.Contains(out, "will refuse to start") {
		t.Fatalf("tenants check output with callback networks:\n%s", out)
	}
}

// captureStdout returns what f prints on standard output.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stdout = saved }()
	f()
	w.Close()
	os.Stdout = saved
	return <-done
}
