package blob

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func newVR(body []byte, want []byte, size int64) *verifyingReader {
	return &verifyingReader{key: "k", body: io.NopCloser(iotest.HalfReader(bytes.NewReader(body))), h: sha256.New(), want: want, size: size}
}

func TestVerifyingReader(t *testing.T) {
	good := bytes.Repeat([]byte("facture "), 1000)
	sum := sha256.Sum256(good)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1

	for _, size := range []int64{int64(len(good)), -1} {
		got, err := io.ReadAll(newVR(good, sum[:], size))
		if err != nil || !bytes.Equal(got, good) {
			t.Fatalf("size %d: good body: %v", size, err)
		}
		got, err = io.ReadAll(newVR(bad, sum[:], size))
		if !errors.Is(err, ErrChecksumMismatch) {
			t.Fatalf("size %d: bad body: got %v", size, err)
		}
		// The consumer never holds the whole object when it is wrong (the
		// size is known on every S3 GET).
		if size >= 0 && len(got) >= len(bad) {
			t.Fatalf("size %d: %d of %d bad bytes handed over", size, len(got), len(bad))
		}
	}
	if _, err := io.ReadAll(newVR(good[:100], sum[:], int64(len(good)))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body: got %v", err)
	}
	if _, err := io.ReadAll(newVR(append(bytes.Clone(good), 'x'), sum[:], int64(len(good)))); !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("long body: got %v", err)
	}
	empty := sha256.Sum256(nil)
	if got, err := io.ReadAll(newVR(nil, empty[:], 0)); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v", err)
	}
	if _, err := io.ReadAll(newVR(nil, sum[:], 0)); !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("empty with wrong digest: %v", err)
	}
}

func TestContentDisposition(t *testing.T) {
	for in, want := range map[string]string{
		"facture.pdf":     `attachment; filename="facture.pdf"`,
		`a"b\c.pdf`:       `attachment; filename="a_b_c.pdf"; filename*=UTF-8''a%22b%5Cc.pdf`,
		"été.pdf":         `attachment; filename="_t_.pdf"; filename*=UTF-8''%C3%A9t%C3%A9.pdf`,
		"a\r\nSet: x.pdf": `attachment; filename="a__Set: x.pdf"; filename*=UTF-8''a%0D%0ASet%3A%20x.pdf`,
	} {
		if got := contentDisposition(in); got != want {
			t.Errorf("contentDisposition(%q) = %q, want %q", in, got, want)
		}
	}
}
