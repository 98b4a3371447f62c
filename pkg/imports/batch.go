package imports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
)

// Kind is what a file holds.
type Kind string

// Kinds of import.
const (
	KindPayers   Kind = "payers"
	KindInvoices Kind = "invoices"
)

// Valid tells whether k is a known kind.
func (k Kind) Valid() bool { return k == KindPayers || k == KindInvoices }

// Status is where a batch is.
type Status string

// Batch statuses.
const (
	StatusQueued    Status = "queued"    // staged, waiting for the import job
	StatusRunning   Status = "running"   // the job is applying it
	StatusImported  Status = "imported"  // applied (payers: the valid lines, if any)
	StatusRejected  Status = "rejected"  // refused: nothing changed; see the errors
	StatusDuplicate Status = "duplicate" // the same file was imported before: nothing changed
	StatusFailed    Status = "failed"    // every attempt failed: nothing changed
)

// Done tells whether the batch has its outcome.
func (s Status) Done() bool { return s != StatusQueued && s != StatusRunning }

// Stages of the job, shown beside the progress bar.
const (
	StageQueued    = "queued"
	StageReading   = "reading"   // parse and stage the lines
	StageChecking  = "checking"  // set-based checks in the database
	StagePDFs      = "pdfs"      // check the PDFs of the archive
	StageUploading = "uploading" // store the PDFs
	StageApplying  = "applying"  // write the rows, enqueue the alerts
	StageDone      = "done"
)

// ActorKind says who uploaded a batch.
type ActorKind string

// Uploaders.
const (
	ActorSystem ActorKind = "system"  // demo data, bench
	ActorCLI    ActorKind = "cli"     // portail import
	ActorAPIKey ActorKind = "api_key" // billing software through /api/v1 (ID: the key)
	ActorStaff  ActorKind = "staff"   // staff screens (ID: the staff user)
)

// Actor is who uploaded a batch.
type Actor struct {
	Kind ActorKind `json:"kind"`
	ID   int64     `json:"id,omitempty"`
}

// auditActor is the uploader as the audit trail names it: the command
// line and the demo data act as the system.
func (a Actor) auditActor() audit.Actor {
	switch a.Kind {
	case ActorAPIKey:
		return audit.Actor{Kind: audit.KindAPIKey, ID: a.ID}
	case ActorStaff:
		return audit.Actor{Kind: audit.KindStaff, ID: a.ID}
	}
	return audit.System
}

// recordImported journals an applied batch in the audit trail, in its
// transaction, as the actor of ctx (the uploader: see Apply).
func recordImported(ctx context.Context, x sqlx.ExecerContext, b *Batch) error {
	details := map[string]any{"inserted": b.Inserted, "updated": b.Updated, "unchanged": b.Unchanged,
		"rejected": b.Rejected, "uploader": b.ActorKind, "file": b.Filename}
	if b.Kind == KindInvoices {
		details["pdfs"], details["alerts"] = b.PDFs, b.Alerts
	}
	return audit.Record(ctx, x, b.TenantID, string(b.Kind)+".imported", audit.Of(audit.ObjectImportBatch, b.ID), details)
}

// Batch is one upload and its outcome (a row of import_batches).
type Batch struct {
	TenantID    int64      `db:"tenant_id"`
	ID          int64      `db:"id"`
	Kind        Kind       `db:"kind"`
	Status      Status     `db:"status"`
	Stage       string     `db:"stage"`
	Filename    string     `db:"filename"`
	ZipFilename string     `db:"zip_filename"`
	Identity    string     `db:"file_sha256"`
	Encoding    string     `db:"encoding"`
	LinesTotal  int        `db:"lines_total"`
	LinesDone   int        `db:"lines_done"`
	Lines       int        `db:"lines"`
	Inserted    int        `db:"inserted"`
	Updated     int        `db:"updated"`
	Unchanged   int        `db:"unchanged"`
	Rejected    int        `db:"rejected"`
	Notes       int        `db:"notes"`
	PDFs        int        `db:"pdfs"`
	Alerts      int        `db:"alerts"`
	ActorKind   ActorKind  `db:"actor_kind"`
	ActorID     *int64     `db:"actor_id"`
	CSVKey      string     `db:"csv_key"`
	CSVSHA256   string     `db:"csv_sha256"`
	CSVSize     int64      `db:"csv_size"`
	ZipKey      string     `db:"zip_key"`
	ZipSHA256   string     `db:"zip_sha256"`
	ZipSize     int64      `db:"zip_size"`
	DuplicateOf *int64     `db:"duplicate_of"`
	Attempts    int        `db:"attempts"`
	Error       string     `db:"error"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
	StartedAt   *time.Time `db:"started_at"`
	FinishedAt  *time.Time `db:"finished_at"`
}

const batchColumns = `tenant_id, id, kind, status, stage, filename, zip_filename, file_sha256, encoding,
	lines_total, lines_done, lines, inserted, updated, unchanged, rejected, notes, pdfs, alerts,
	actor_kind, actor_id, csv_key, csv_sha256, csv_size, zip_key, zip_sha256, zip_size,
	duplicate_of, attempts, error, created_at, updated_at, started_at, finished_at`

// ErrNotFound is returned for a batch id unknown to the tenant.
var ErrNotFound = errors.New("imports: no such batch")

// Batch loads one batch of the tenant.
func (s *Service) Batch(ctx context.Context, tenantID, id int64) (*Batch, error) {
	return loadBatch(ctx, s.DB, tenantID, id)
}

func loadBatch(ctx context.Context, q sqlx.QueryerContext, tenantID, id int64) (*Batch, error) {
	var b Batch
	err := sqlx.GetContext(ctx, q, &b, `SELECT `+batchColumns+` FROM import_batches WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("imports: batch %d: %w", id, err)
	}
	return &b, nil
}

// Batches returns the tenant's latest batches, most recent first (staff).
func (s *Service) Batches(ctx context.Context, tenantID int64, limit int) ([]Batch, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	bs := []Batch{}
	err := s.DB.SelectContext(ctx, &bs, `SELECT `+batchColumns+` FROM import_batches WHERE tenant_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("imports: batches: %w", err)
	}
	return bs, nil
}

// LineError is a line of a file that was rejected, or (payers) imported
// with a remark. Line 0 is about the whole file; other lines are numbered
// as in a text editor or spreadsheet (the header is line 1).
type LineError struct {
	Line   int    `json:"line" db:"line"`
	Number string `json:"number,omitempty" db:"number"` // the invoice number or payer reference, when readable
	Reason string `json:"reason" db:"reason"`           // French, for staff
}

// Errors returns the batch's rejected lines (severity "error") or remarks
// ("note") from line `from` on, by line, at most limit of them.
func (s *Service) Errors(ctx context.Context, tenantID, batchID int64, severity string, from, limit int) ([]LineError, error) {
	es := []LineError{}
	err := s.DB.SelectContext(ctx, &es, `
		SELECT line, number, reason FROM import_errors
		WHERE tenant_id = $1 AND batch_id = $2 AND severity = $3 AND line >= $4
		ORDER BY line LIMIT $5`, tenantID, batchID, severity, from, limit)
	if err != nil {
		return nil, fmt.Errorf("imports: errors of batch %d: %w", batchID, err)
	}
	return es, nil
}

// Progress is how far the job has read the file.
type Progress struct {
	Stage string `json:"stage"`
	Done  int    `json:"done"`  // lines read
	Total int    `json:"total"` // lines of the file (an estimate when cells span lines)
}

// Report tells what an import did, is doing, or why it was refused: the
// same for payers and invoices, for the CLI, the API and the staff screens.
type Report struct {
	BatchID     int64    `json:"batch_id"`
	Kind        Kind     `json:"kind"`
	Status      Status   `json:"status"`
	Progress    Progress `json:"progress"`
	Filename    string   `json:"filename"`
	ZipFilename string   `json:"zip_filename,omitempty"`
	FileSHA256  string   `json:"file_sha256,omitempty"` // the file's identity
	Encoding    string   `json:"encoding,omitempty"`
	Uploader    Actor    `json:"uploader"`

	Lines     int `json:"lines"` // lines read
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	PDFs      int `json:"pdfs"`   // PDFs attached or replaced
	Alerts    int `json:"alerts"` // new-invoice emails enqueued

	// AlreadyImported: this very file was imported before (DuplicateOf);
	// nothing changed.
	AlreadyImported bool  `json:"already_imported"`
	DuplicateOf     int64 `json:"duplicate_of,omitempty"`

	// Rejected counts the refused lines; Errors lists the first ones, by
	// line (line 0: the whole file). Invoices: any rejected line refuses
	// the whole file. Payers: the other lines were imported.
	Rejected       int         `json:"rejected"`
	Errors         []LineError `json:"errors"`
	NextErrorsFrom int         `json:"next_errors_from,omitempty"` // more errors from this line on
	// Payers: lines imported with a remark.
	NoteCount int         `json:"note_count"`
	Notes     []LineError `json:"notes"`

	// Error says, in French, why the last attempt failed (the job retries
	// on its own until the batch is failed).
	Error    string `json:"error,omitempty"`
	Attempts int    `json:"attempts"`

	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Refused tells whether the file was refused (nothing imported).
func (r Report) Refused() bool { return r.Status == StatusRejected }

// Duration is how long the job took to apply the file (0 until done).
func (r Report) Duration() time.Duration {
	if r.StartedAt == nil || r.FinishedAt == nil {
		return 0
	}
	return r.FinishedAt.Sub(*r.StartedAt)
}

// Report builds the batch's report with its first errors from line
// errorsFrom on, and its first notes (at most limit of each).
func (s *Service) Report(ctx context.Context, tenantID, batchID int64, errorsFrom, limit int) (Report, error) {
	b, err := s.Batch(ctx, tenantID, batchID)
	if err != nil {
		return Report{}, err
	}
	return s.reportOf(ctx, b, errorsFrom, limit)
}

func (s *Service) reportOf(ctx context.Context, b *Batch, errorsFrom, limit int) (Report, error) {
	rep := Report{
		BatchID: b.ID, Kind: b.Kind, Status: b.Status, Filename: b.Filename, ZipFilename: b.ZipFilename,
		FileSHA256: b.Identity, Encoding: b.Encoding, Uploader: Actor{Kind: b.ActorKind},
		Progress: Progress{Stage: b.Stage, Done: b.LinesDone, Total: max(b.LinesTotal, b.LinesDone)},
		Lines:    b.Lines, Inserted: b.Inserted, Updated: b.Updated, Unchanged: b.Unchanged, PDFs: b.PDFs, Alerts: b.Alerts,
		AlreadyImported: b.Status == StatusDuplicate, Rejected: b.Rejected, NoteCount: b.Notes,
		Error: b.Error, Attempts: b.Attempts, CreatedAt: b.CreatedAt, StartedAt: b.StartedAt, FinishedAt: b.FinishedAt,
		Errors: []LineError{}, Notes: []LineError{},
	}
	if b.ActorID != nil {
		rep.Uploader.ID = *b.ActorID
	}
	if b.DuplicateOf != nil {
		rep.DuplicateOf = *b.DuplicateOf
	}
	if limit <= 0 {
		return rep, nil
	}
	var err error
	if b.Rejected > 0 {
		if rep.Errors, err = s.Errors(ctx, b.TenantID, b.ID, "error", errorsFrom, limit+1); err != nil {
			return rep, err
		}
		if len(rep.Errors) > limit {
			rep.NextErrorsFrom = rep.Errors[limit].Line
			rep.Errors = rep.Errors[:limit]
		}
	}
	if b.Notes > 0 {
		if rep.Notes, err = s.Errors(ctx, b.TenantID, b.ID, "note", 0, limit); err != nil {
			return rep, err
		}
	}
	return rep, nil
}
