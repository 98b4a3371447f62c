package blob_test

import (
	"bytes"
	"context"
	"os"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/devenv"
)

func TestZZRace(t *testing.T) {
	for round := 0; round < 6; round++ {
		srv, _ := devenv.StartS3(t.TempDir(), "127.0.0.1:0")
		st, _ := blob.New(context.Background(), config.S3{Endpoint: srv.URL, Region: "fr-par", Bucket: "b", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true})
		ctx := context.Background()
		st.EnsureBucket(ctx)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, sha := randomBytes(t, 64<<10)
				st.Put(ctx, "race", bytes.NewReader(body), int64(len(body)), sha)
			}()
		}
		wg.Wait()
		done := make(chan error)
		go func() { done <- srv.Close() }()
		select {
		case err := <-done:
			t.Logf("round %d closed: %v", round, err)
		case <-time.After(2 * time.Second):
			pprof.Lookup("goroutine").WriteTo(os.Stdout, 1)
			t.Logf("round %d: close err %v", round, <-done)
			return
		}
	}
}
