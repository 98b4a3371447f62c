package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/devenv"
)

// newStore starts the dev S3 server in a temp dir and returns a store on it,
// reached over HTTP like any S3 endpoint.
func newStore(t *testing.T, checksumMode string) *blob.Store {
	t.Helper()
	srv, err := devenv.StartS3(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	st, err := blob.New(context.Background(), config.S3{
		Endpoint: srv.URL, Region: "fr-par", Bucket: "portail-test",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PathStyle: true, ChecksumMode: checksumMode,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(ctx); err != nil {
		t.Fatalf("EnsureBucket is not idempotent: %v", err)
	}
	return st
}

func randomBytes(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

func readAll(t *testing.T, st *blob.Store, key, sha string) ([]byte, error) {
	t.Helper()
	rc, _, err := st.Get(context.Background(), key, sha)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestRoundTripBothChecksumModes(t *testing.T) {
	for _, mode := range []string{"when_required", "when_supported"} {
		t.Run(mode, func(t *testing.T) {
			st := newStore(t, mode)
			ctx := context.Background()
			body, sha := randomBytes(t, 3<<20+17)
			key := "tenant-1/invoices/2017-020-002059.pdf"
			if err := st.Put(ctx, key, bytes.NewReader(body), int64(len(body)), sha); err != nil {
				t.Fatal(err)
			}
			rc, size, err := st.Get(ctx, key, sha)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(len(body)) || !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes (size %d), want %d", len(got), size, len(body))
			}
			// Without an expected digest, the one recorded at upload is used.
			if got, err := readAll(t, st, key, ""); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("get with recorded digest: %v", err)
			}
			if err := st.SelfCheck(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEmptyObject(t *testing.T) {
	st := newStore(t, "when_required")
	ctx := context.Background()
	sum := sha256.Sum256(nil)
	sha := hex.EncodeToString(sum[:])
	if err := st.Put(ctx, "empty", bytes.NewReader(nil), 0, sha); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, st, "empty", sha)
	if err != nil || len(got) != 0 {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestPutRefusesOverwrite(t *testing.T) {
	st := newStore(t, "when_required")
	ctx := context.Background()
	a, shaA := randomBytes(t, 1000)
	b, shaB := randomBytes(t, 1000)
	if err := st.Put(ctx, "k", bytes.NewReader(a), int64(len(a)), shaA); err != nil {
		t.Fatal(err)
	}
	err := st.Put(ctx, "k", bytes.NewReader(b), int64(len(b)), shaB)
	if !errors.Is(err, blob.ErrExists) {
		t.Fatalf("second put: got %v, want ErrExists", err)
	}
	if got, err := readAll(t, st, "k", shaA); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("first object changed: %v", err)
	}
}

func TestConcurrentPutsOneWins(t *testing.T) {
	st := newStore(t, "when_required")
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, sha := randomBytes(t, 64<<10)
			errs[i] = st.Put(ctx, "race", bytes.NewReader(body), int64(len(body)), sha)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, blob.ErrExists):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d puts succeeded, want exactly 1", won)
	}
}

func TestPutChecksBodyAgainstDigest(t *testing.T) {
	st := newStore(t, "when_required")
	ctx := context.Background()
	body, _ := randomBytes(t, 100)
	_, other := randomBytes(t, 100)
	if err := st.Put(ctx, "bad", bytes.NewReader(body), 100, other); !errors.Is(err, blob.ErrChecksumMismatch) {
		t.Fatalf("wrong digest: got %v", err)
	}
	sum := sha256.Sum256(body)
	if err := st.Put(ctx, "bad", bytes.NewReader(body), 99, hex.EncodeToString(sum[:])); !errors.Is(err, blob.ErrChecksumMismatch) {
		t.Fatalf("wrong size: got %v", err)
	}
	if err := st.Put(ctx, "bad", bytes.NewReader(body), 100, "xyz"); err == nil {
		t.Fatal("malformed digest accepted")
	}
	if _, _, err := st.Get(ctx, "bad", ""); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("rejected put left an object: %v", err)
	}
}

func TestGetWrongDigest(t *testing.T) {
	st := newStore(t, "when_required")
	ctx := context.Background()
	body, sha := randomBytes(t, 5000)
	_, other := randomBytes(t, 10)
	if err := st.Put(ctx, "a/b", bytes.NewReader(body), int64(len(body)), sha); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, st, "a/b", other); !errors.Is(err, blob.ErrChecksumMismatch) {
		t.Fatalf("got %v, want ErrChecksumMismatch", err)
	}
}

func TestNotFoundAndDelete(t *testing.T) {
	st := newStore(t, "when_required")
	ctx := context.Background()
	if _, _, err := st.Get(ctx, "missing", ""); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	body, sha := randomBytes(t, 10)
	if err := st.Put(ctx, "x/y.pdf", bytes.NewReader(body), 10, sha); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "x/y.pdf"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "x/y.pdf"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if _, _, err := st.Get(ctx, "x/y.pdf", sha); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("after delete: got %v", err)
	}
}

func TestList(t *testing.T) {
	st := newStore(t, "when_required")
	ctx := context.Background()
	want := []string{"t1/a.pdf", "t1/b.pdf", "t1/sub/c.pdf"}
	for _, k := range append([]string{"t2/z.pdf"}, want...) {
		body, sha := randomBytes(t, 10)
		if err := st.Put(ctx, k, bytes.NewReader(body), 10, sha); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.List(ctx, "t1/")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("List = %v, want %v", got, want)
	}
	all, err := st.List(ctx, "")
	if err != nil || len(all) != 4 {
		t.Fatalf("List all = %v, %v", all, err)
	}
	if err := st.SelfCheck(ctx); err != nil {
		t.Fatal(err)
	}
	if left, err := st.List(ctx, blob.SelfCheckPrefix); err != nil || len(left) != 0 {
		t.Fatalf("selfcheck left %v (%v)", left, err)
	}
}

func TestPresignGet(t *testing.T) {
	st := newStore(t, "when_required")
	ctx := context.Background()
	body, sha := randomBytes(t, 200<<10)
	if err := st.Put(ctx, "t/f.pdf", bytes.NewReader(body), int64(len(body)), sha); err != nil {
		t.Fatal(err)
	}
	u, err := st.PresignGet(ctx, "t/f.pdf", time.Minute, "Facture d'été 2017.pdf")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(got))
	}
	cd := resp.Header.Get("Content-Disposition")
	if !strings.HasPrefix(cd, `attachment; filename="Facture d'_t_ 2017.pdf"`) ||
		!strings.Contains(cd, "filename*=UTF-8''Facture%20d%27%C3%A9t%C3%A9%202017.pdf") {
		t.Fatalf("Content-Disposition = %q", cd)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if _, err := st.PresignGet(ctx, "t/f.pdf", 0, "f.pdf"); err == nil {
		t.Fatal("zero ttl accepted")
	}
}

func TestBadKeys(t *testing.T) {
	st := newStore(t, "when_required")
	ctx := context.Background()
	body, sha := randomBytes(t, 10)
	for _, k := range []string{"", "/abs", "a/../b", "a//b", "dir/", "a\\b", "a\nb", ".."} {
		if err := st.Put(ctx, k, bytes.NewReader(body), 10, sha); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
}

func TestStoreDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	st, err := blob.New(context.Background(), config.S3{
		Endpoint: "http://" + addr, Region: "fr-par", Bucket: "b",
		AccessKey: "k", SecretKey: "s", PathStyle: true, ChecksumMode: "when_required",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, sha := randomBytes(t, 10)
	if err := st.Put(ctx, "k", bytes.NewReader(body), 10, sha); err == nil || ctx.Err() != nil {
		t.Fatalf("put to a down store: %v (ctx %v)", err, ctx.Err())
	}
	if err := st.SelfCheck(ctx); err == nil {
		t.Fatal("selfcheck passed on a down store")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := config.S3{Endpoint: "http://127.0.0.1:1", Bucket: "b", AccessKey: "k", SecretKey: "s", ChecksumMode: "when_required"}
	for name, mut := range map[string]func(*config.S3){
		"bucket":   func(c *config.S3) { c.Bucket = "" },
		"keys":     func(c *config.S3) { c.SecretKey = "" },
		"checksum": func(c *config.S3) { c.ChecksumMode = "crc32" },
		"endpoint": func(c *config.S3) { c.Endpoint = "127.0.0.1:9000" },
	} {
		c := ok
		mut(&c)
		if _, err := blob.New(context.Background(), c); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
}
