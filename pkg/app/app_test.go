package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portail/pkg/app"
	"portail/pkg/apptest"
	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/dbtest"
	"portail/pkg/devenv"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestGracefulShutdownUnderLoad cancels the portal (as SIGTERM does) while
// clients keep sending requests: every request that got a connection gets a
// whole answer, and Run returns once in-flight work is done.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := dbtest.New(t)
	s3, err := devenv.StartS3(filepath.Join(t.TempDir(), "s3"), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	cfg, _ := config.Load("")
	cfg.S3.Endpoint, cfg.S3.AccessKey, cfg.S3.SecretKey, cfg.S3.Region = s3.URL, s3.AccessKey, s3.SecretKey, "us-east-1"
	cfg.HTTP.ShutdownTimeout = 10 * time.Second
	bs, _ := blob.New(ctx, cfg.S3)
	bs.EnsureBucket(ctx)
	files, _ := tenant.LoadDir(filepath.Join(apptest.RepoDir(), "tenants"))
	tenant.NewStore(d).Apply(ctx, files)
	a, err := app.New(ctx, cfg, d, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	url := fmt.Sprintf("http://%s/", l.Addr())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, l) }()

	var ok, refused, broken atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Host = "sistec.localhost"
				res, err := client.Do(req)
				if err != nil {
					refused.Add(1) // no connection any more: expected after shutdown starts
					continue
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != 200 || len(body) == 0 {
					broken.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	close(stop)
	wg.Wait()
	if ok.Load() == 0 {
		t.Fatal("no request served before shutdown")
	}
	if broken.Load() > 0 {
		t.Fatalf("%d requests cut or failed during shutdown (%d served, %d refused after)", broken.Load(), ok.Load(), refused.Load())
	}
	t.Logf("%d requests served, %d refused after shutdown, none cut", ok.Load(), refused.Load())
}
