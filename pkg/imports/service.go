// Package imports is the one import pipeline of payers and invoices files,
// for the CLI, the HTTP API and the staff screens.
//
// An upload is staged first (Staging): the CSV streams through a first
// pass that hashes it, bounds its lines and detects its encoding, into a
// temporary file, then into S3 under t/<tenant>/imports/<batch>/; a batch
// row and its River job are inserted in one transaction. The job (Worker,
// or Apply called directly) reads the staged file again, decoding and
// parsing it as it streams from S3, COPYs every line into a staging table,
// checks them with set-based SQL, checks and stores the PDFs of the ZIP,
// then applies everything in one transaction: invoices all or nothing per
// file, payers the valid lines. It records its stage and progress on the
// batch row, which the uploader follows, and its outcome: imported,
// rejected (with the rejected lines, in import_errors), duplicate (the same
// file was imported before) or failed.
//
// The API's single writes (one payer, one invoice, one PDF) build the same
// typed lines (PayerLine, InvoiceLine) and go through the same checks and
// apply code, synchronously.
package imports

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"portail/pkg/mail"
	"portail/pkg/metrics"
)

// Blobs is what imports need of the object store (*blob.Store).
type Blobs interface {
	// Put stores body under key, refusing to overwrite (blob.ErrExists).
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, sha256hex string) error
	// Get streams key, failing at the end when the bytes differ from wantSHA256.
	Get(ctx context.Context, key, wantSHA256 string) (io.ReadCloser, int64, error)
}

// Mailer enqueues an email in the caller's transaction (*mail.Outbox).
type Mailer interface {
	EnqueueTx(ctx context.Context, tx *sqlx.Tx, e mail.Email) error
}

// Inserter enqueues a job in the caller's transaction (River's client).
type Inserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Limits bound what one import may hold. Zero values take the defaults.
type Limits struct {
	MaxLines      int           // records per file (default 2,000,000)
	MaxFileBytes  int64         // the CSV file (default 1 GiB)
	MaxLineBytes  int           // one line of the CSV file (default 64 KiB)
	MaxZipBytes   int64         // the ZIP of PDFs (default 4 GiB)
	MaxZipEntries int           // files in the ZIP (default 100,000: its directory is read into memory)
	MaxPDFBytes   int64         // one PDF (default 32 MiB)
	MaxErrors     int           // rejected lines kept per batch (default 10,000; all are counted)
	ProgressEvery time.Duration // between two progress writes on the batch row (default 1 s)
	Uploaders     int           // concurrent PDF uploads (default 4)
}

// Defaults of Limits.
const (
	DefaultMaxLines      = 2_000_000
	DefaultMaxFileBytes  = 1 << 30
	DefaultMaxLineBytes  = 64 << 10
	DefaultMaxZipBytes   = 4 << 30
	DefaultMaxZipEntries = 100_000
	DefaultMaxPDFBytes   = 32 << 20
	DefaultMaxErrors     = 10_000
	DefaultProgressEvery = time.Second
	DefaultUploaders     = 4
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def64 := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxLines, DefaultMaxLines)
	def64(&l.MaxFileBytes, DefaultMaxFileBytes)
	def(&l.MaxLineBytes, DefaultMaxLineBytes)
	def64(&l.MaxZipBytes, DefaultMaxZipBytes)
	def(&l.MaxZipEntries, DefaultMaxZipEntries)
	def64(&l.MaxPDFBytes, DefaultMaxPDFBytes)
	def(&l.MaxErrors, DefaultMaxErrors)
	def(&l.Uploaders, DefaultUploaders)
	if l.ProgressEvery <= 0 {
		l.ProgressEvery = DefaultProgressEvery
	}
	return l
}

// maxRecord bounds one decoded CSV record (a line, or several when a quoted
// cell spans lines): a line's bytes may take up to three times as many once
// decoded from Windows-1252.
func (l Limits) maxRecord() int { return 4 * l.MaxLineBytes }

// AlertNumbers is how many invoice numbers a new-invoice alert lists, and
// AlertTemplate its email template.
const (
	AlertNumbers  = 10
	AlertTemplate = "new_invoices"
)

// Service is the import pipeline.
type Service struct {
	DB     *sqlx.DB
	Blobs  Blobs
	Jobs   Inserter // enqueues the import jobs
	Outbox Mailer   // nil: no new-invoice alerts
	Limits Limits
	Now    func() time.Time // nil: time.Now
	// TempDir holds the uploads while they are staged and the ZIPs while
	// they are applied ("": the system's).
	TempDir string
	Log     *slog.Logger
	// Metrics counts applied lines and files by outcome (nil: not counted).
	Metrics *metrics.Metrics

	hook       func(stage string)            // tests: fault injection between stages
	onProgress func(stage string, lines int) // tests: each progress write
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// countApplied counts the lines of an applied report and, for a file
// (not an API write), its outcome.
func (s *Service) countApplied(r Report, file bool) {
	s.Metrics.ImportLines(string(r.Kind), r.Inserted, r.Updated, r.Unchanged, r.Rejected)
	if file {
		s.Metrics.ImportFile(string(r.Kind), string(r.Status))
	}
}

func (s *Service) limits() Limits { return s.Limits.withDefaults() }

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Service) fault(stage string) {
	if s.hook != nil {
		s.hook(stage)
	}
}

// tempFile is an unlinked temporary file: gone when closed, even after a crash.
func (s *Service) tempFile(pattern string) (*os.File, error) {
	f, err := os.CreateTemp(s.TempDir, pattern)
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}
