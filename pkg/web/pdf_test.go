package web_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"portail/pkg/apptest"
)

func TestTamperedPDFIsNeverServed(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	var id int64
	var key, bucket string
	if err := e.App.DB.QueryRow(`SELECT id, pdf_key FROM invoices WHERE number = '2017-020-002059'`).Scan(&id, &key); err != nil {
		t.Fatal(err)
	}
	bucket = e.App.Config.S3.Bucket
	u := e.URL("sistec.localhost", fmt.Sprintf("/factures/%d/pdf", id))
	res, body := fetch(t, c, u)
	if res.StatusCode != 200 || !bytes.HasPrefix([]byte(body), []byte("%PDF-")) {
		t.Fatalf("intact PDF: %d", res.StatusCode)
	}
	if d := res.Header.Get("Content-Disposition"); d != `attachment; filename="facture-2017-020-002059.pdf"` {
		t.Errorf("Content-Disposition %q", d)
	}
	// Flip bytes of the stored object, keeping its size.
	path := filepath.Join(e.S3Dir, "buckets", bucket, filepath.FromSlash(key))
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("stored object not found on the S3 server's disk: %v", err)
	}
	tampered := bytes.Replace(stored, []byte("243,11"), []byte("143,11"), 1)
	if bytes.Equal(tampered, stored) {
		tampered = append([]byte{}, stored...)
		tampered[len(tampered)/2] ^= 0xff
	}
	if err := os.WriteFile(path, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	res2, err := c.Get(u)
	if err == nil {
		got, readErr := io.ReadAll(res2.Body)
		res2.Body.Close()
		if readErr == nil && res2.StatusCode == http.StatusOK && len(got) == len(stored) {
			t.Fatalf("tampered PDF served whole (%d bytes)", len(got))
		}
	}
}
