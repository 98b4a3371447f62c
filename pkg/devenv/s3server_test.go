package devenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portail/pkg/blob"
	"portail/pkg/config"
)

const testBucket = "portail"

func storeOn(t *testing.T, srv *S3Server) *blob.Store {
	t.Helper()
	st, err := blob.New(context.Background(), config.S3{
		Endpoint: srv.URL, Region: "us-east-1", Bucket: testBucket,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PathStyle: true, ChecksumMode: "when_required",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func get(t *testing.T, st *blob.Store, key, sha string) ([]byte, error) {
	t.Helper()
	rc, _, err := st.Get(context.Background(), key, sha)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestS3Server(t *testing.T) {
	dir := t.TempDir()
	srv, err := StartS3(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Close() }()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q", srv.URL)
	}
	st := storeOn(t, srv)
	ctx := context.Background()

	body := make([]byte, 5<<20+3)
	rand.Read(body)
	sum := sha256.Sum256(body)
	sha := hex.EncodeToString(sum[:])
	key := "t1/2017/2017-020-002059.pdf"
	if err := st.Put(ctx, key, bytes.NewReader(body), int64(len(body)), sha); err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, st, key, sha); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("round trip: %d bytes, %v", len(got), err)
	}

	t.Run("no overwrite", func(t *testing.T) {
		other := []byte("autre contenu")
		s := sha256.Sum256(other)
		err := st.Put(ctx, key, bytes.NewReader(other), int64(len(other)), hex.EncodeToString(s[:]))
		if !errors.Is(err, blob.ErrExists) {
			t.Fatalf("got %v, want ErrExists", err)
		}
	})

	t.Run("presigned", func(t *testing.T) {
		u, err := st.PresignGet(ctx, key, time.Minute, "facture.pdf")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("status %d, %d bytes", resp.StatusCode, len(got))
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="facture.pdf"` {
			t.Fatalf("Content-Disposition = %q", cd)
		}
		// Unsigned requests fail, as on a real store.
		resp, err = http.Get(srv.URL + "/" + testBucket + "/" + key)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("unsigned GET: status %d", resp.StatusCode)
		}
	})

	t.Run("expired presigned URL", func(t *testing.T) {
		u, err := st.PresignGet(ctx, key, time.Second, "facture.pdf")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2100 * time.Millisecond)
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})

	t.Run("list", func(t *testing.T) {
		keys, err := st.List(ctx, "t1/")
		if err != nil || len(keys) != 1 || keys[0] != key {
			t.Fatalf("List = %v, %v", keys, err)
		}
	})

	t.Run("tampered bytes on disk", func(t *testing.T) {
		tb := []byte("original bytes of a small pdf")
		s := sha256.Sum256(tb)
		tsha := hex.EncodeToString(s[:])
		if err := st.Put(ctx, "t1/tampered.pdf", bytes.NewReader(tb), int64(len(tb)), tsha); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "buckets", testBucket, "t1", "tampered.pdf")
		bad := bytes.Clone(tb)
		bad[3] ^= 0x20 // same size, one bit flipped
		if err := os.WriteFile(file, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{tsha, ""} {
			got, err := get(t, st, "t1/tampered.pdf", want)
			if !errors.Is(err, blob.ErrChecksumMismatch) {
				t.Fatalf("want %q: got %v", want, err)
			}
			if len(got) == len(tb) {
				t.Fatal("the whole tampered object was handed over")
			}
		}
		if err := os.WriteFile(file, append(bad, "more"...), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := get(t, st, "t1/tampered.pdf", tsha); !errors.Is(err, blob.ErrChecksumMismatch) {
			t.Fatalf("longer file: got %v", err)
		}
	})

	// Restart on the same directory, on another port.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv, err = StartS3(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st = storeOn(t, srv)
	if got, err := get(t, st, key, sha); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after restart: %d bytes, %v", len(got), err)
	}
	// The digest recorded as metadata survived too.
	if _, err := get(t, st, key, ""); err != nil {
		t.Fatalf("after restart, recorded digest: %v", err)
	}
	if err := st.SelfCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestS3ServerRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:9000", "nowhere"} {
		if s, err := StartS3(t.TempDir(), addr); err == nil {
			s.Close()
			t.Errorf("StartS3(%q) accepted", addr)
		}
	}
}

func TestS3ServerWrongAccessKey(t *testing.T) {
	srv, err := StartS3(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st, err := blob.New(context.Background(), config.S3{
		Endpoint: srv.URL, Region: "us-east-1", Bucket: testBucket,
		AccessKey: "someone-else", SecretKey: "x", PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(context.Background()); err == nil {
		t.Fatal("wrong access key accepted")
	}
}
