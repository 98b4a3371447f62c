package imports

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/db"
)

// ErrStorage wraps a failure of the object store while staging an upload:
// nothing was recorded, the upload may be sent again later.
var ErrStorage = errors.New("imports: file storage unavailable")

// ErrNoFile is returned by Commit when no CSV file was given.
var ErrNoFile = errors.New("imports: no CSV file in the upload")

// Staging is an upload being received: its files stream through the first
// pass into temporary files, then Commit stages them in S3 and queues the
// import job. Close it in any case.
type Staging struct {
	s        *Service
	lim      Limits
	tenantID int64
	kind     Kind
	actor    Actor

	csvSeen bool
	csv     *os.File
	csvName string
	scan    fileScan

	zip        *os.File
	zipName    string
	zipSHA     string
	zipSize    int64
	zipEntries []string // name, size and CRC-32 of each entry, sorted

	problem string // French reason of a refusal, for the whole file
}

// NewStaging starts receiving an upload of kind for the tenant.
func (s *Service) NewStaging(tenantID int64, kind Kind, actor Actor) *Staging {
	return &Staging{s: s, lim: s.limits(), tenantID: tenantID, kind: kind, actor: actor}
}

// ReadCSV reads the CSV file from r, to its end or until it is refused (the
// rest is then left unread: a line over the bound or a binary file never
// takes more memory, nor disk). An error is a failure to read r.
func (st *Staging) ReadCSV(name string, r io.Reader) error {
	if st.csvSeen {
		return errors.New("imports: two CSV files in one upload")
	}
	st.csvSeen, st.csvName = true, clip(name, 255)
	if st.problem != "" {
		return nil
	}
	f, err := st.s.tempFile("portail-import-*.csv")
	if err != nil {
		return fmt.Errorf("imports: spool: %w", err)
	}
	st.csv = f
	sc := newScanner(st.lim)
	// The scanner first: a refused file is not written any further.
	if _, err := io.Copy(io.MultiWriter(sc, f), r); err != nil && !errors.Is(err, errRefused) {
		return fmt.Errorf("imports: read %s: %w", name, err)
	}
	st.scan = sc.finish()
	if st.scan.problem != "" {
		st.problem = st.scan.problem
		st.closeCSV()
	}
	return nil
}

// ReadZIP reads the ZIP of PDFs (invoices only) from r.
func (st *Staging) ReadZIP(name string, r io.Reader) error {
	if st.kind != KindInvoices {
		return fmt.Errorf("imports: a %s import takes no ZIP", st.kind)
	}
	if st.zip != nil {
		return errors.New("imports: two ZIP files in one upload")
	}
	st.zipName = clip(name, 255)
	if st.problem != "" {
		return nil // refused already: nothing to keep
	}
	f, err := st.s.tempFile("portail-import-*.zip")
	if err != nil {
		return fmt.Errorf("imports: spool: %w", err)
	}
	st.zip = f
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, st.lim.MaxZipBytes+1))
	if err != nil {
		return fmt.Errorf("imports: read %s: %w", name, err)
	}
	refuse := func(reason string) error {
		st.problem = reason
		st.closeZIP()
		return nil
	}
	if n > st.lim.MaxZipBytes {
		return refuse(fmt.Sprintf("Archive des PDF trop volumineuse : plus de %d Mo ; découpez-la", st.lim.MaxZipBytes>>20))
	}
	zr, err := zip.NewReader(f, n)
	if err != nil {
		return refuse("L'archive des PDF n'est pas un fichier ZIP lisible")
	}
	if len(zr.File) > st.lim.MaxZipEntries {
		return refuse(fmt.Sprintf("Archive des PDF trop volumineuse : plus de %d fichiers ; découpez-la", st.lim.MaxZipEntries))
	}
	st.zipSHA, st.zipSize = hex.EncodeToString(h.Sum(nil)), n
	st.zipEntries = make([]string, 0, len(zr.File))
	for _, e := range zr.File {
		st.zipEntries = append(st.zipEntries, fmt.Sprintf("%s\x00%d\x00%08x", e.Name, e.UncompressedSize64, e.CRC32))
	}
	sort.Strings(st.zipEntries)
	return nil
}

// Close removes the temporary files.
func (st *Staging) Close() {
	st.closeCSV()
	st.closeZIP()
}

func (st *Staging) closeCSV() {
	if st.csv != nil {
		st.csv.Close()
		st.csv = nil
	}
}

func (st *Staging) closeZIP() {
	if st.zip != nil {
		st.zip.Close()
		st.zip = nil
	}
}

// identity is the CSV's SHA-256 alone, or, when a ZIP of PDFs comes with
// it, a SHA-256 over the CSV's and every entry's name, size and CRC-32
// (read from the ZIP's directory: no decompression needed). The same CSV
// with other PDFs is another import.
func (st *Staging) identity() string {
	if st.zipSize == 0 && st.zipEntries == nil {
		return st.scan.sha256
	}
	h := sha256.New()
	io.WriteString(h, st.scan.sha256)
	for _, e := range st.zipEntries {
		io.WriteString(h, "\x00"+e)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// StagedKey is where an upload's file is kept in the object store.
func StagedKey(tenantID, batchID int64, name string) string {
	return fmt.Sprintf("t/%d/imports/%d/%s", tenantID, batchID, name)
}

// Commit records the upload: a refused file becomes a rejected batch at
// once; a file imported before, a duplicate batch; any other is staged in
// S3 and a queued batch with its import job is inserted in one
// transaction. When the store fails, nothing is recorded and the error
// wraps ErrStorage.
func (st *Staging) Commit(ctx context.Context) (Report, error) { return st.commit(ctx, true) }

// CommitForApply is Commit without the job, for a caller that applies the
// batch itself with Apply (demo data, the bench, tests).
func (st *Staging) CommitForApply(ctx context.Context) (Report, error) { return st.commit(ctx, false) }

func (st *Staging) commit(ctx context.Context, enqueue bool) (Report, error) {
	defer st.Close()
	s := st.s
	if !st.csvSeen {
		return Report{}, ErrNoFile
	}
	b := &Batch{TenantID: st.tenantID, Kind: st.kind, Filename: st.csvName, ZipFilename: st.zipName,
		Encoding: st.scan.encoding, ActorKind: st.actor.Kind, LinesTotal: max(st.scan.lines-1, 0)}
	if b.ActorKind == "" {
		b.ActorKind = ActorSystem
	}
	if st.actor.ID != 0 {
		b.ActorID = &st.actor.ID
	}
	if st.problem != "" {
		b.Encoding, b.LinesTotal = "", 0
		if err := s.insertRefused(ctx, b, st.problem); err != nil {
			return Report{}, err
		}
		return s.reportOf(ctx, b, 0, reportErrors)
	}
	b.Identity = st.identity()
	if id, done, err := importedBefore(ctx, s.DB, b); err != nil {
		return Report{}, err
	} else if done {
		if err := s.insertDuplicate(ctx, b, id); err != nil {
			return Report{}, err
		}
		return s.reportOf(ctx, b, 0, reportErrors)
	}

	// The batch's id names its files in the store: taken before anything is
	// written, so that a store failure leaves no row.
	if err := s.DB.GetContext(ctx, &b.ID, `SELECT nextval(pg_get_serial_sequence('import_batches', 'id'))`); err != nil {
		return Report{}, fmt.Errorf("imports: batch id: %w", err)
	}
	b.CSVKey, b.CSVSHA256, b.CSVSize = StagedKey(b.TenantID, b.ID, string(b.Kind)+".csv"), st.scan.sha256, st.scan.size
	if err := s.Blobs.Put(ctx, b.CSVKey, st.csv, b.CSVSize, b.CSVSHA256); err != nil {
		return Report{}, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if st.zip != nil {
		b.ZipKey, b.ZipSHA256, b.ZipSize = StagedKey(b.TenantID, b.ID, "pdfs.zip"), st.zipSHA, st.zipSize
		if err := s.Blobs.Put(ctx, b.ZipKey, st.zip, b.ZipSize, b.ZipSHA256); err != nil {
			return Report{}, fmt.Errorf("%w: %w", ErrStorage, err)
		}
	}
	b.Status, b.Stage = StatusQueued, StageQueued
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := insertBatch(ctx, tx, b, s.now()); err != nil {
			return err
		}
		// The upload itself, with the uploader's address (the job that
		// applies it later records the outcome).
		if err := audit.Record(ctx, tx, b.TenantID, "import.uploaded", audit.Of(audit.ObjectImportBatch, b.ID),
			map[string]any{"kind": b.Kind, "file": b.Filename, "csv_sha256": b.CSVSHA256, "zip": b.ZipFilename}); err != nil {
			return err
		}
		if !enqueue {
			return nil
		}
		if _, err := s.Jobs.InsertTx(ctx, tx.Tx, JobArgs{TenantID: b.TenantID, BatchID: b.ID}, nil); err != nil {
			return fmt.Errorf("imports: enqueue: %w", err)
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	return s.reportOf(ctx, b, 0, reportErrors)
}

// reportErrors is how many errors a report lists by default.
const reportErrors = 100

// insertBatch writes b (its ID when set, else a new one) with b's times.
func insertBatch(ctx context.Context, q sqlx.QueryerContext, b *Batch, now time.Time) error {
	b.CreatedAt, b.UpdatedAt = now, now
	if b.Status.Done() {
		b.FinishedAt = &now
		b.Stage = StageDone
	}
	id := any(nil)
	if b.ID != 0 {
		id = b.ID
	}
	err := sqlx.GetContext(ctx, q, &b.ID, `
		INSERT INTO import_batches (tenant_id, id, kind, status, stage, file_sha256, filename, zip_filename, encoding,
			lines_total, lines_done, lines, inserted, updated, unchanged, rejected, notes, pdfs, alerts,
			actor_kind, actor_id, csv_key, csv_sha256, csv_size, zip_key, zip_sha256, zip_size,
			duplicate_of, created_at, updated_at, started_at, finished_at)
		VALUES ($1, coalesce($2, nextval(pg_get_serial_sequence('import_batches', 'id'))), $3, $4, $5, $6, $7, $8, $9,
			$10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
			$20, $21, $22, $23, $24, $25, $26, $27,
			$28, $29, $29, $30, $31)
		RETURNING id`,
		b.TenantID, id, b.Kind, b.Status, b.Stage, b.Identity, b.Filename, b.ZipFilename, b.Encoding,
		b.LinesTotal, b.LinesDone, b.Lines, b.Inserted, b.Updated, b.Unchanged, b.Rejected, b.Notes, b.PDFs, b.Alerts,
		b.ActorKind, b.ActorID, b.CSVKey, b.CSVSHA256, b.CSVSize, b.ZipKey, b.ZipSHA256, b.ZipSize,
		b.DuplicateOf, now, b.StartedAt, b.FinishedAt)
	if err != nil {
		return fmt.Errorf("imports: batch: %w", err)
	}
	return nil
}

// insertRefused records a file refused as a whole, with its reason on line 0.
func (s *Service) insertRefused(ctx context.Context, b *Batch, reason string) error {
	b.Status, b.Rejected = StatusRejected, 1
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := insertBatch(ctx, tx, b, s.now()); err != nil {
			return err
		}
		return insertFileError(ctx, tx, b, reason)
	})
	if err == nil {
		s.Metrics.ImportFile(string(b.Kind), string(StatusRejected))
	}
	return err
}

func insertFileError(ctx context.Context, tx *sqlx.Tx, b *Batch, reason string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO import_errors (tenant_id, batch_id, line, reason) VALUES ($1, $2, 0, $3)`,
		b.TenantID, b.ID, reason)
	if err != nil {
		return fmt.Errorf("imports: journal: %w", err)
	}
	return nil
}

// insertDuplicate records an upload of a file imported before (batch id).
func (s *Service) insertDuplicate(ctx context.Context, b *Batch, id int64) error {
	b.Status, b.DuplicateOf = StatusDuplicate, &id
	if err := insertBatch(ctx, s.DB, b, s.now()); err != nil {
		return err
	}
	s.Metrics.ImportFile(string(b.Kind), string(StatusDuplicate))
	return nil
}

// importedBefore finds another batch that imported the file of b's identity.
func importedBefore(ctx context.Context, q sqlx.QueryerContext, b *Batch) (int64, bool, error) {
	if b.Identity == "" {
		return 0, false, nil
	}
	var ids []int64
	err := sqlx.SelectContext(ctx, q, &ids, `
		SELECT id FROM import_batches
		WHERE tenant_id = $1 AND kind = $2 AND file_sha256 = $3 AND status = 'imported' AND id <> $4`,
		b.TenantID, b.Kind, b.Identity, b.ID)
	if err != nil {
		return 0, false, fmt.Errorf("imports: journal: %w", err)
	}
	if len(ids) == 0 {
		return 0, false, nil
	}
	return ids[0], true, nil
}

// clip makes s storable text of at most n bytes: a file name is only a
// label, so bytes that are not UTF-8 and control characters (NUL
// included, which PostgreSQL refuses) are replaced rather than refused.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// File is one file of an upload.
type File struct {
	Name string
	Body io.Reader
}

// ImportNow stages a file (and, for invoices, an optional ZIP of PDFs)
// and applies it in the caller's goroutine, without a job: demo data, the
// bench, tests. A failure fails the batch.
func (s *Service) ImportNow(ctx context.Context, tenantID int64, kind Kind, actor Actor, csv File, zip *File) (Report, error) {
	st := s.NewStaging(tenantID, kind, actor)
	defer st.Close()
	if err := st.ReadCSV(csv.Name, csv.Body); err != nil {
		return Report{}, err
	}
	if zip != nil {
		if err := st.ReadZIP(zip.Name, zip.Body); err != nil {
			return Report{}, err
		}
	}
	rep, err := st.CommitForApply(ctx)
	if err != nil || rep.Status.Done() {
		return rep, err
	}
	done, err := s.Apply(ctx, tenantID, rep.BatchID)
	if err != nil {
		if ferr := s.recordFailure(context.WithoutCancel(ctx), tenantID, rep.BatchID, err, true); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return rep, err
	}
	return done, nil
}
