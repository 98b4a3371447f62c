package imports

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	"portail/pkg/blob"
)

// pdfSource is where the PDFs of an import come from: the ZIP uploaded
// with the file (read from a temporary file, never held in memory), or the
// single PDF of an API call.
type pdfSource interface {
	// count is the number of entries; entries are numbered from 0.
	count() int
	// archive tells a ZIP from the API's single PDF, for the reasons given.
	archive() bool
	name(entry int) string
	open(entry int) (io.ReadCloser, error)
	close()
}

// zipPDFs is a ZIP of PDFs in a temporary file.
type zipPDFs struct {
	f *os.File
	z *zip.Reader
}

func (z *zipPDFs) count() int                            { return len(z.z.File) }
func (z *zipPDFs) archive() bool                         { return true }
func (z *zipPDFs) name(entry int) string                 { return z.z.File[entry].Name }
func (z *zipPDFs) open(entry int) (io.ReadCloser, error) { return z.z.File[entry].Open() }
func (z *zipPDFs) close()                                { z.f.Close() }

// singlePDF is one PDF, for the invoice number it is named after.
type singlePDF struct {
	number string
	f      *os.File
}

func (p *singlePDF) count() int            { return 1 }
func (p *singlePDF) archive() bool         { return false }
func (p *singlePDF) name(entry int) string { return p.number + ".pdf" }
func (p *singlePDF) open(entry int) (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(p.f, 0, 1<<62)), nil
}
func (p *singlePDF) close() { p.f.Close() }

// pdfKey is the invoice number (lowercase) an archive entry is the PDF of,
// or false for folders, macOS metadata and files that are no .pdf.
func pdfKey(name string) (string, bool) {
	name = strings.ReplaceAll(name, `\`, "/")
	if strings.HasSuffix(name, "/") || strings.HasPrefix(name, "__MACOSX/") {
		return "", false
	}
	base := path.Base(name)
	if len(base) < 5 || !strings.EqualFold(base[len(base)-4:], ".pdf") {
		return "", false
	}
	return strings.ToLower(base[:len(base)-4]), true
}

// fetchZIP copies the batch's staged ZIP into a temporary file (verified
// against its SHA-256 as it streams) and opens it.
func (s *Service) fetchZIP(ctx context.Context, b *Batch) (*zipPDFs, error) {
	rc, _, err := s.Blobs.Get(ctx, b.ZipKey, b.ZipSHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	defer rc.Close()
	f, err := s.tempFile("portail-import-*.zip")
	if err != nil {
		return nil, fmt.Errorf("imports: spool ZIP: %w", err)
	}
	n, err := io.Copy(f, rc)
	if err != nil {
		f.Close()
		if errors.Is(err, blob.ErrChecksumMismatch) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: read %s: %w", ErrStorage, b.ZipKey, err)
	}
	z, err := zip.NewReader(f, n)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("imports: staged ZIP %s: %w", b.ZipKey, err)
	}
	return &zipPDFs{f: f, z: z}, nil
}

// hashPDF checks that an entry is a PDF of at most maxBytes and returns its
// SHA-256 and size; reason (French) tells why it is refused, naming the
// archive's entry, or the file sent alone through the API.
func hashPDF(src pdfSource, entry int, maxBytes int64) (sum string, size int64, reason string) {
	name := path.Base(strings.ReplaceAll(src.name(entry), `\`, "/"))
	unreadable := fmt.Sprintf("PDF illisible dans l'archive (%s)", name)
	notPDF := fmt.Sprintf("Le fichier %s de l'archive n'est pas un PDF", name)
	tooBig := fmt.Sprintf("PDF trop volumineux (%s) : %d Mo au plus", name, maxBytes>>20)
	if !src.archive() {
		unreadable = "Le fichier envoyé est illisible"
		notPDF = "Le fichier envoyé n'est pas un PDF"
		tooBig = fmt.Sprintf("Le fichier envoyé est trop volumineux : %d Mo au plus", maxBytes>>20)
	}
	rc, err := src.open(entry)
	if err != nil {
		return "", 0, unreadable
	}
	defer rc.Close()
	h := sha256.New()
	var head [5]byte
	n, err := io.ReadFull(rc, head[:])
	if (err != nil && err != io.ErrUnexpectedEOF && err != io.EOF) || string(head[:n]) != "%PDF-" {
		return "", 0, notPDF
	}
	h.Write(head[:n])
	m, err := io.Copy(h, io.LimitReader(rc, maxBytes+1-int64(n)))
	if err != nil {
		return "", 0, unreadable
	}
	size = int64(n) + m
	if size > maxBytes {
		return "", 0, tooBig
	}
	return hex.EncodeToString(h.Sum(nil)), size, ""
}

// pdfUpload is one PDF to store.
type pdfUpload struct {
	Number string `db:"number"`
	Key    string `db:"pdf_key"`
	SHA    string `db:"pdf_sha256"`
	Size   int64  `db:"pdf_size"`
	Entry  int    `db:"entry"`
}

// inMemoryPDF is the size up to which a PDF is uploaded from memory; larger
// ones go through a temporary file, so that a few uploads in flight never
// hold more than a few MiB.
const inMemoryPDF = 1 << 20

// uploadPDFs stores the PDFs with a few uploads in flight. An object already
// there has the same bytes (keys are content-addressed): a re-run after a
// crash just goes on.
func (s *Service) uploadPDFs(ctx context.Context, src pdfSource, list []pdfUpload) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan pdfUpload)
	var wg sync.WaitGroup
	for range s.limits().Uploaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				if err := s.uploadPDF(ctx, src, u); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, u := range list {
		select {
		case work <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

func (s *Service) uploadPDF(ctx context.Context, src pdfSource, u pdfUpload) error {
	rc, err := src.open(u.Entry)
	if err != nil {
		return fmt.Errorf("imports: PDF of %s: %w", u.Number, err)
	}
	defer rc.Close()
	var body io.ReadSeeker
	h := sha256.New()
	if u.Size <= inMemoryPDF {
		b, err := io.ReadAll(io.LimitReader(io.TeeReader(rc, h), u.Size+1))
		if err != nil {
			return fmt.Errorf("imports: PDF of %s: %w", u.Number, err)
		}
		body = bytes.NewReader(b)
	} else {
		f, err := s.tempFile("portail-import-*.pdf")
		if err != nil {
			return fmt.Errorf("imports: PDF of %s: %w", u.Number, err)
		}
		defer f.Close()
		if _, err := io.Copy(f, io.LimitReader(io.TeeReader(rc, h), u.Size+1)); err != nil {
			return fmt.Errorf("imports: PDF of %s: %w", u.Number, err)
		}
		body = f
	}
	n, _ := body.Seek(0, io.SeekEnd)
	if n != u.Size || hex.EncodeToString(h.Sum(nil)) != u.SHA {
		return fmt.Errorf("imports: PDF of %s changed during the import", u.Number)
	}
	if err := s.Blobs.Put(ctx, u.Key, body, u.Size, u.SHA); err != nil && !errors.Is(err, blob.ErrExists) {
		return fmt.Errorf("%w: upload PDF of %s: %w", ErrStorage, u.Number, err)
	}
	return nil
}
