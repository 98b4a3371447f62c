package invoice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/devenv"
)

// realS3 starts the dev S3 server (gofakes3 on disk) and a blob.Store on
// it, reached over HTTP; dir is where its objects live, for tampering.
func realS3(t *testing.T) (st *blob.Store, srv *devenv.S3Server, dir string) {
	t.Helper()
	dir = t.TempDir()
	srv, err := devenv.StartS3(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	st, err = blob.New(context.Background(), config.S3{
		Endpoint: srv.URL, Region: "us-east-1", Bucket: "test",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		PathStyle: true, ChecksumMode: "when_required",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, srv, dir
}

func TestImportPDFsThroughS3(t *testing.T) {
	st, _, dir := realS3(t)
	f := newFixture(t)
	f.im.Blobs = st
	acc := f.account(t, "SISTEC560", "Test SISTEC560")
	manual := Invoice{Number: "2017-020-002059", Object: "Multi Services", AmountCents: 24311}
	manual.IssuedOn, _ = ParseDate("10/07/2017")
	manual.DueOn, _ = ParseDate("21/07/2017")
	pdf, err := GenerateInvoicePDF(f.t, manual, "Test SISTEC560")
	if err != nil {
		t.Fatal(err)
	}
	second, _ := GenerateInvoicePDF(f.t, Invoice{Number: "2017-020-002060", AmountCents: 100}, "Test SISTEC560")
	file := csvOf(manualLine, "2017-020-002060;SISTEC560;Cantine;10/07/2017;21/07/2017;1,00")
	pdfs := map[string][]byte{"2017-020-002059.pdf": pdf, "2017-020-002060.pdf": second}

	// Killed after the upload, before the commit: nothing is committed, and
	// the re-run finds the objects already there (content-addressed) and goes on.
	ctx, cancel := context.WithCancel(context.Background())
	im := *f.im
	im.hook = func(stage string) {
		if stage == "uploaded" {
			cancel()
		}
	}
	if _, err := im.Import(ctx, f.t, strings.NewReader(file), zipOf(t, pdfs), ImportOptions{}); err == nil {
		t.Fatal("cancelled import succeeded")
	}
	if n := count(t, f.d, `SELECT count(*) FROM invoices`); n != 0 {
		t.Fatalf("%d invoices after a cancelled import", n)
	}
	rep := f.mustImport(t, file, zipOf(t, pdfs))
	if rep.Inserted != 2 || rep.PDFs != 2 {
		t.Fatalf("report %+v", rep)
	}

	inv := f.invoiceByNumber(t, "2017-020-002059")
	got, err := f.store.Get(f.ctx, f.t.ID, acc, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	rc, size, err := OpenPDF(f.ctx, st, got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(b, pdf) || (size != -1 && size != int64(len(pdf))) {
		t.Fatalf("PDF read back: %d bytes, size %d, %v", len(b), size, err)
	}
	keys, err := st.List(f.ctx, fmt.Sprintf("t/%d/", f.t.ID))
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v %v", keys, err)
	}

	// A corrected PDF gets a new key; the old object is kept, never overwritten.
	pdf2 := append(bytes.Clone(pdf), "% corrigé\n"...)
	rep = f.mustImport(t, csvOf(manualLine), zipOf(t, map[string][]byte{"2017-020-002059.pdf": pdf2}))
	if rep.Updated != 1 || rep.PDFs != 1 {
		t.Fatalf("report %+v", rep)
	}
	updated := f.invoiceByNumber(t, "2017-020-002059")
	if updated.PDFKey == inv.PDFKey || updated.PDFSize != int64(len(pdf2)) {
		t.Fatalf("updated %+v", updated)
	}
	if keys, _ := st.List(f.ctx, fmt.Sprintf("t/%d/", f.t.ID)); len(keys) != 3 {
		t.Fatalf("keys %v", keys)
	}

	// Tampered bytes in the store: the stream fails instead of ending.
	var path string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, updated.PDFSHA256+".pdf") {
			path = p
		}
		return nil
	})
	if path == "" {
		t.Fatal("object file not found on disk")
	}
	raw, _ := os.ReadFile(path)
	raw[len(raw)/2] ^= 1
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, _, err = OpenPDF(f.ctx, st, updated)
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	if !errors.Is(err, blob.ErrChecksumMismatch) {
		t.Fatalf("tampered PDF: %v", err)
	}
}

func TestImportWithS3Down(t *testing.T) {
	st, srv, _ := realS3(t)
	f := newFixture(t)
	f.im.Blobs = st
	f.account(t, "SISTEC560", "Test SISTEC560")
	srv.Close()
	before := snapshot(t, f.d)
	rep, err := f.importString(t, csvOf(manualLine), zipOf(t, map[string][]byte{"2017-020-002059.pdf": fakePDF("x")}))
	if err == nil || errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, report %+v", err, rep)
	}
	t.Logf("S3 down: %v", err)
	if snapshot(t, f.d) != before || count(t, f.d, `SELECT count(*) FROM import_batches`) != 0 {
		t.Fatal("rows written while S3 was down")
	}
}
