package invoice

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/blob"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// Blobs is what invoices need of the object store (*blob.Store).
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

// Defaults of the Importer's limits.
const (
	DefaultMaxLines      = 2_000_000
	DefaultMaxFileBytes  = 1 << 30
	DefaultMaxPDFBytes   = 32 << 20
	DefaultMaxErrors     = 10_000
	DefaultProgressEvery = 10_000
	DefaultUploaders     = 4
	// AlertNumbers is how many invoice numbers a new-invoice alert lists.
	AlertNumbers = 10
	// AlertTemplate is the email template of new-invoice alerts.
	AlertTemplate = "new_invoices"
)

// Importer loads the billing software's invoice files. The CLI, the API and
// the staff screens all call Import.
type Importer struct {
	DB     *sqlx.DB
	Blobs  Blobs            // needed when a ZIP of PDFs is given
	Outbox Mailer           // nil: no new-invoice alerts
	Now    func() time.Time // nil: time.Now

	MaxLines      int   // invoice lines per file (default 2,000,000)
	MaxFileBytes  int64 // size of the CSV file (default 1 GiB)
	MaxPDFBytes   int64 // size of one PDF (default 32 MiB)
	MaxErrors     int   // rejected lines detailed in a report (default 10,000; all are counted)
	ProgressEvery int   // lines between two Progress calls (default 10,000)
	Uploaders     int   // concurrent PDF uploads (default 4)

	hook func(stage string) // tests: fault injection between stages
}

// ImportOptions describes one import.
type ImportOptions struct {
	Filename string // shown in the journal
	// Progress is called every ProgressEvery lines while the file is read,
	// and once at the end with done == total. total counts the file's
	// non-blank lines after the header (an estimate when cells span lines).
	Progress func(done, total int)
}

// LineError is a rejected line of an import file. Line 0 is about the whole
// file; other lines are numbered as in a text editor or spreadsheet (the
// header is line 1).
type LineError struct {
	Line   int    `json:"line" db:"line"`
	Number string `json:"number,omitempty" db:"number"`
	Reason string `json:"reason" db:"reason"` // French, for staff
}

// Report tells what an import did, or why the file was refused.
type Report struct {
	BatchID    int64  `json:"batch_id,omitempty"`
	Filename   string `json:"filename"`
	FileSHA256 string `json:"file_sha256"`
	Encoding   string `json:"encoding,omitempty"`

	Lines     int `json:"lines"` // invoice lines read
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	PDFs      int `json:"pdfs"`   // PDFs attached or replaced
	Alerts    int `json:"alerts"` // new-invoice emails enqueued

	// AlreadyImported: this very file was imported before (BatchID); nothing changed.
	AlreadyImported bool `json:"already_imported"`

	Rejected int         `json:"rejected"` // rejected lines (0 for a successful import)
	Errors   []LineError `json:"errors"`   // the first MaxErrors of them, by line

	Duration time.Duration `json:"duration"`
}

// OK tells whether the file was imported (or had been already).
func (r Report) OK() bool { return r.Rejected == 0 }

// ErrRejected is returned, wrapped, with the report of a refused file: nothing
// was written but the journal entry listing its errors.
var ErrRejected = errors.New("invoice: import file rejected")

func (im *Importer) now() time.Time {
	if im.Now != nil {
		return im.Now()
	}
	return time.Now()
}

func orDefault[T int | int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (im *Importer) fault(stage string) {
	if im.hook != nil {
		im.hook(stage)
	}
}

// errorList keeps the first max line errors and counts them all.
type errorList struct {
	max   int
	count int
	list  []LineError
}

func (l *errorList) add(e LineError) {
	l.count++
	if len(l.list) < l.max {
		l.list = append(l.list, e)
	}
}

// Import reads an invoice file of tenant t (the billing software's CSV, see
// DESIGN.md "Import formats") and, optionally, a ZIP of PDFs named
// <number>.pdf, and applies it all or nothing:
//
//   - every line is checked first; if any is rejected, nothing is written
//     but a journal entry, and the report lists every rejected line with its
//     reason (err wraps ErrRejected). Staff fix the export and run it again;
//     a half-imported file would be harder to reason about;
//   - otherwise, in one transaction: new invoices are inserted, known numbers
//     updated when something differs, identical ones left alone; the PDFs
//     are uploaded before the commit; one alert email per account that got
//     new unpaid invoices is enqueued;
//   - the same file again (same SHA-256) is reported AlreadyImported.
//
// An import never moves an invoice to another payer, never changes the
// status of an invoice paid or cancelled on the portal, nor the amount of a
// paid one: such lines are rejected or, for the status, left as they are.
func (im *Importer) Import(ctx context.Context, t *tenant.Tenant, csvFile io.Reader, pdfs *zip.Reader, opts ImportOptions) (Report, error) {
	start := im.now()
	rep := Report{Filename: opts.Filename, Errors: []LineError{}}
	if t == nil || t.ID == 0 {
		return rep, errors.New("invoice: import without tenant")
	}
	if im.DB == nil {
		return rep, errors.New("invoice: importer without database")
	}
	if pdfs != nil && im.Blobs == nil {
		return rep, errors.New("invoice: importer without object store, cannot take PDFs")
	}
	maxLines := orDefault(im.MaxLines, DefaultMaxLines)
	errs := &errorList{max: orDefault(im.MaxErrors, DefaultMaxErrors)}
	progress := opts.Progress
	if progress == nil {
		progress = func(int, int) {}
	}

	src, err := seekable(csvFile, orDefault(im.MaxFileBytes, DefaultMaxFileBytes))
	if err != nil {
		return rep, err
	}
	defer src.close()
	scan, err := scanFile(src, orDefault(im.MaxFileBytes, DefaultMaxFileBytes))
	if err != nil {
		return rep, err
	}
	// The same CSV with other PDFs is another import: the batch's identity
	// covers the ZIP's entries too.
	scan.sha256 = importIdentity(scan.sha256, pdfs)
	rep.FileSHA256, rep.Encoding = scan.sha256, scan.encoding
	fileErr := func(reason string) (Report, error) {
		errs.add(LineError{Line: 0, Reason: reason})
		return im.reject(ctx, t, &rep, errs, start)
	}
	if scan.problem != "" {
		return fileErr(scan.problem)
	}
	total := max(scan.lines-1, 0)
	if !scan.hasQuote && total > maxLines {
		// Without quotes every non-blank line is a record: refuse at once.
		return fileErr(tooManyLines(maxLines))
	}
	if id, done, err := im.importedBefore(ctx, im.DB, t.ID, scan.sha256); err != nil {
		return rep, err
	} else if done {
		rep.AlreadyImported, rep.BatchID, rep.Duration = true, id, im.now().Sub(start)
		progress(total, total)
		return rep, nil
	}
	if err := src.rewind(); err != nil {
		return rep, err
	}
	parser, err := newCSVParser(decoder(src, scan))
	var se *errStructure
	if errors.As(err, &se) {
		return fileErr(se.reason)
	}
	if err != nil {
		return rep, err
	}
	zi := indexZip(pdfs)

	tx, err := im.DB.BeginTxx(ctx, nil)
	if err != nil {
		return rep, fmt.Errorf("invoice: import: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	// One import at a time per tenant: no deadlock between two files touching
	// the same invoices, and the file-hash check below cannot race.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('portail.invoice.import', $1))`, t.ID); err != nil {
		return rep, fmt.Errorf("invoice: import: lock: %w", err)
	}
	// Sorts and hashes over a million staged lines stay in memory.
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '128MB'`); err != nil {
		return rep, fmt.Errorf("invoice: import: %w", err)
	}
	if id, done, err := im.importedBefore(ctx, tx, t.ID, scan.sha256); err != nil {
		return rep, err
	} else if done {
		rep.AlreadyImported, rep.BatchID, rep.Duration = true, id, im.now().Sub(start)
		progress(total, total)
		return rep, nil
	}

	// Stage every valid line with COPY, then check and apply them with a few
	// set-based statements: per-row round trips would cap the import at a
	// few thousand lines per second.
	if _, err := tx.ExecContext(ctx, `
		CREATE TEMP TABLE invoice_import_staging (
			line              integer NOT NULL,
			number            text COLLATE "C" NOT NULL,
			payer_ref         text NOT NULL,
			object            text NOT NULL,
			issued_on         date NOT NULL,
			due_on            date NOT NULL,
			amount_cents      bigint NOT NULL,
			status            text,
			direct_debit      boolean,
			payment_suspended boolean,
			pdf_key           text,
			pdf_sha256        text,
			pdf_size          bigint
		) ON COMMIT DROP`); err != nil {
		return rep, fmt.Errorf("invoice: import: staging: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("invoice_import_staging",
		"line", "number", "payer_ref", "object", "issued_on", "due_on", "amount_cents",
		"status", "direct_debit", "payment_suspended", "pdf_key", "pdf_sha256", "pdf_size"))
	if err != nil {
		return rep, fmt.Errorf("invoice: import: copy: %w", err)
	}
	defer stmt.Close()
	every := orDefault(im.ProgressEvery, DefaultProgressEvery)
	maxPDF := orDefault(im.MaxPDFBytes, DefaultMaxPDFBytes)
	staged := 0
	for {
		row, err := parser.next()
		if err == io.EOF {
			break
		}
		var le *lineError
		if err != nil && !errors.As(err, &le) {
			return rep, err
		}
		rep.Lines++
		if rep.Lines > maxLines {
			stmt.Close()
			tx.Rollback()
			errs = &errorList{max: errs.max}
			return fileErr(tooManyLines(maxLines))
		}
		if rep.Lines%every == 0 {
			if err := ctx.Err(); err != nil {
				return rep, fmt.Errorf("invoice: import: %w", err)
			}
			progress(rep.Lines, max(total, rep.Lines+1)) // the end is reported after commit
		}
		if le != nil {
			errs.add(LineError{Line: le.line, Number: le.number, Reason: le.reason})
			continue
		}
		var pdfKey, pdfSHA, pdfSize any
		if zi != nil {
			f, dup := zi.lookup(row.number)
			switch {
			case dup:
				errs.add(LineError{Line: row.line, Number: row.number, Reason: fmt.Sprintf("Plusieurs PDF pour la facture %s dans l'archive", row.number)})
				continue
			case f != nil:
				sum, size, reason := hashPDF(f, maxPDF)
				if reason != "" {
					errs.add(LineError{Line: row.line, Number: row.number, Reason: reason})
					continue
				}
				pdfKey, pdfSHA, pdfSize = PDFKey(t.ID, row.number, sum), sum, size
			}
		}
		var status any
		if row.status != "" {
			status = string(row.status)
		}
		if _, err := stmt.Exec(int64(row.line), row.number, row.payerRef, row.object,
			row.issuedOn.Format(time.DateOnly), row.dueOn.Format(time.DateOnly), row.amountCents,
			status, optBool(row.directDebit), optBool(row.suspended), pdfKey, pdfSHA, pdfSize); err != nil {
			return rep, fmt.Errorf("invoice: import: copy: %w", err)
		}
		staged++
	}
	if _, err := stmt.Exec(); err != nil {
		return rep, fmt.Errorf("invoice: import: copy: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return rep, fmt.Errorf("invoice: import: copy: %w", err)
	}
	im.fault("staged")
	if rep.Lines == 0 {
		tx.Rollback()
		return fileErr("Fichier vide : aucune facture après la ligne d'en-tête")
	}

	// Checks that need the database: unknown payers, duplicates, payer
	// changes, missing PDFs, amounts of paid invoices.
	if _, err := tx.ExecContext(ctx, `ANALYZE invoice_import_staging`); err != nil {
		return rep, fmt.Errorf("invoice: import: analyze: %w", err)
	}
	sqlErrs, err := im.validate(ctx, tx, t.ID, pdfs != nil, errs.max)
	if err != nil {
		return rep, err
	}
	if errs.count > 0 || sqlErrs.count > 0 {
		tx.Rollback()
		merged := &errorList{max: errs.max, count: errs.count + sqlErrs.count}
		merged.list = append(append(merged.list, errs.list...), sqlErrs.list...)
		sort.SliceStable(merged.list, func(i, j int) bool { return merged.list[i].Line < merged.list[j].Line })
		if len(merged.list) > merged.max {
			merged.list = merged.list[:merged.max]
		}
		return im.reject(ctx, t, &rep, merged, start)
	}
	im.fault("validated")

	// PDFs go to the store before the rows that point to them commit; a
	// failed import leaves at worst unreferenced objects for the sweeper.
	if zi != nil {
		n, err := im.uploadPDFs(ctx, tx, t.ID, zi, maxPDF)
		if err != nil {
			return rep, err
		}
		rep.PDFs = n
	}
	im.fault("uploaded")

	now := im.now()
	err = tx.GetContext(ctx, &rep.BatchID, `
		INSERT INTO import_batches (tenant_id, kind, status, file_sha256, filename, encoding, started_at, finished_at, lines)
		VALUES ($1, 'invoices', 'imported', $2, $3, $4, $5, $5, $6) RETURNING id`,
		t.ID, scan.sha256, clip(opts.Filename, 255), scan.encoding, start, rep.Lines)
	if err != nil {
		return rep, fmt.Errorf("invoice: import: batch: %w", err)
	}

	res, err := tx.ExecContext(ctx, mergeUpdate, t.ID, rep.BatchID, now)
	if err != nil {
		return rep, fmt.Errorf("invoice: import: update: %w", err)
	}
	updated, _ := res.RowsAffected()
	rep.Updated = int(updated)

	var alertsOn bool
	if err := tx.GetContext(ctx, &alertsOn, `SELECT invoice_alerts FROM tenants WHERE id = $1`, t.ID); err != nil {
		return rep, fmt.Errorf("invoice: import: tenant: %w", err)
	}
	alertsOn = alertsOn && im.Outbox != nil
	if alertsOn {
		if _, err := tx.ExecContext(ctx, `
			CREATE TEMP TABLE invoice_import_news (
				account_id bigint PRIMARY KEY, n integer NOT NULL, numbers text[] NOT NULL
			) ON COMMIT DROP`); err != nil {
			return rep, fmt.Errorf("invoice: import: news: %w", err)
		}
		err = tx.GetContext(ctx, &rep.Inserted, mergeInsertWithNews, t.ID, rep.BatchID, now, AlertNumbers)
	} else {
		var res sql.Result
		if res, err = tx.ExecContext(ctx, insertNew, t.ID, rep.BatchID, now); err == nil {
			n, _ := res.RowsAffected()
			rep.Inserted = int(n)
		}
	}
	if err != nil {
		return rep, fmt.Errorf("invoice: import: insert: %w", err)
	}
	rep.Unchanged = staged - rep.Inserted - rep.Updated
	if rep.Unchanged < 0 {
		return rep, fmt.Errorf("invoice: import: %d lines staged but %d inserted and %d updated", staged, rep.Inserted, rep.Updated)
	}
	im.fault("merged")

	if alertsOn {
		if rep.Alerts, err = im.enqueueAlerts(ctx, tx, t.ID, now); err != nil {
			return rep, err
		}
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE import_batches SET finished_at = $3, inserted = $4, updated = $5, unchanged = $6, pdfs = $7, alerts = $8
		WHERE tenant_id = $1 AND id = $2`,
		t.ID, rep.BatchID, im.now(), rep.Inserted, rep.Updated, rep.Unchanged, rep.PDFs, rep.Alerts)
	if err != nil {
		return rep, fmt.Errorf("invoice: import: batch: %w", err)
	}
	im.fault("commit")
	if err := tx.Commit(); err != nil {
		if db.IsUniqueViolation(err) {
			return rep, fmt.Errorf("invoice: import: file imported concurrently: %w", err)
		}
		return rep, fmt.Errorf("invoice: import: commit: %w", err)
	}
	committed = true
	rep.Duration = im.now().Sub(start)
	progress(max(total, rep.Lines), max(total, rep.Lines))
	return rep, nil
}

func tooManyLines(maxLines int) string {
	return fmt.Sprintf("Fichier trop volumineux : plus de %d lignes de factures ; découpez-le en plusieurs fichiers", maxLines)
}

func optBool(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

func (im *Importer) importedBefore(ctx context.Context, q sqlx.QueryerContext, tenantID int64, sha string) (int64, bool, error) {
	var ids []int64
	err := sqlx.SelectContext(ctx, q, &ids, `
		SELECT id FROM import_batches
		WHERE tenant_id = $1 AND kind = 'invoices' AND file_sha256 = $2 AND status = 'imported'`, tenantID, sha)
	if err != nil {
		return 0, false, fmt.Errorf("invoice: import: journal: %w", err)
	}
	if len(ids) == 0 {
		return 0, false, nil
	}
	return ids[0], true, nil
}

// validate lists the staged lines the database refuses, in line order.
func (im *Importer) validate(ctx context.Context, tx *sqlx.Tx, tenantID int64, zipGiven bool, maxErrors int) (*errorList, error) {
	rows, err := tx.QueryxContext(ctx, `
		WITH dup AS (
			SELECT number, min(line) AS first FROM invoice_import_staging
			GROUP BY number HAVING count(*) > 1
		), checked AS (
			SELECT s.line, s.number,
				CASE WHEN d.first < s.line
					THEN 'Numéro de facture en double dans le fichier (déjà ligne ' || d.first || ')' END AS dup,
				CASE WHEN a.id IS NULL
					THEN 'Redevable inconnu : « ' || s.payer_ref || ' »' END AS payer,
				CASE WHEN a.id IS NOT NULL AND e.account_id <> a.id
					THEN 'Cette facture appartient déjà au redevable « ' || coalesce(o.external_ref, '?') ||
					     ' » : le changement de redevable est refusé' END AS moved,
				CASE WHEN e.id IS NULL AND $2 AND s.pdf_sha256 IS NULL
					THEN 'PDF absent de l''archive (' || s.number || '.pdf)' END AS pdf,
				CASE WHEN e.status = 'paid' AND e.amount_cents <> s.amount_cents
					THEN 'Facture déjà réglée : son montant ne peut plus être modifié' END AS paid
			FROM invoice_import_staging s
			LEFT JOIN dup d ON d.number = s.number
			LEFT JOIN accounts a ON a.tenant_id = $1 AND a.external_ref = s.payer_ref
			LEFT JOIN invoices e ON e.tenant_id = $1 AND e.number = s.number
			LEFT JOIN accounts o ON o.tenant_id = $1 AND o.id = e.account_id
		)
		SELECT line, number, concat_ws(' ; ', dup, payer, moved, pdf, paid) AS reason
		FROM checked
		WHERE dup IS NOT NULL OR payer IS NOT NULL OR moved IS NOT NULL OR pdf IS NOT NULL OR paid IS NOT NULL
		ORDER BY line`, tenantID, zipGiven)
	if err != nil {
		return nil, fmt.Errorf("invoice: import: validate: %w", err)
	}
	defer rows.Close()
	l := &errorList{max: maxErrors}
	for rows.Next() {
		var e LineError
		if err := rows.StructScan(&e); err != nil {
			return nil, fmt.Errorf("invoice: import: validate: %w", err)
		}
		l.add(e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("invoice: import: validate: %w", err)
	}
	return l, nil
}

// The update and insert below are two statements rather than one upsert so
// that a blank optional cell (status, direct debit, suspension) keeps the
// invoice's current value, which EXCLUDED (NOT NULL columns) cannot carry.
// The update reads the current, locked row version (READ COMMITTED re-check),
// so a payment committing meanwhile is never overwritten. The insert needs no
// ON CONFLICT (whose speculative insertion costs a fifth of the time): imports
// of a tenant are serialised by the advisory lock, and an invoice created
// meanwhile by any other path fails the import on the unique index rather
// than being skipped silently.
//
// newStatus: the file's status, except that a paid or cancelled invoice
// stays so (the portal knows better than a billing export made earlier).
const (
	newStatus = `(CASE WHEN i.status IN ('paid', 'cancelled') OR s.status IS NULL THEN i.status ELSE s.status END)`
	newDD     = `coalesce(s.direct_debit, i.direct_debit)`

	mergeUpdate = `
		UPDATE invoices AS i SET
			object = s.object,
			issued_on = s.issued_on,
			due_on = s.due_on,
			amount_cents = CASE WHEN i.status = 'paid' THEN i.amount_cents ELSE s.amount_cents END,
			status = ` + newStatus + `,
			paid_at = CASE WHEN ` + newStatus + ` = 'paid' THEN coalesce(i.paid_at, $3) END,
			paid_how = CASE WHEN ` + newStatus + ` <> 'paid' THEN ''
			                WHEN i.paid_how <> '' THEN i.paid_how
			                WHEN ` + newDD + ` THEN 'direct_debit' ELSE 'elsewhere' END,
			direct_debit = ` + newDD + `,
			payment_suspended = coalesce(s.payment_suspended, i.payment_suspended),
			pdf_key = coalesce(s.pdf_key, i.pdf_key),
			pdf_sha256 = coalesce(s.pdf_sha256, i.pdf_sha256),
			pdf_size = coalesce(s.pdf_size, i.pdf_size),
			import_batch_id = $2,
			updated_at = $3
		FROM invoice_import_staging s
		WHERE i.tenant_id = $1 AND i.number = s.number
		  AND (i.object, i.issued_on, i.due_on, i.amount_cents, i.status, i.direct_debit,
		       i.payment_suspended, i.pdf_sha256)
		      IS DISTINCT FROM
		      (s.object, s.issued_on, s.due_on,
		       CASE WHEN i.status = 'paid' THEN i.amount_cents ELSE s.amount_cents END,
		       ` + newStatus + `, ` + newDD + `,
		       coalesce(s.payment_suspended, i.payment_suspended), coalesce(s.pdf_sha256, i.pdf_sha256))`

	// Rows go in account by account: each payer's invoices end up together
	// in the table and in the list index, which the resident's page reads.
	insertNew = `
		INSERT INTO invoices (tenant_id, account_id, number, object, issued_on, due_on, amount_cents,
			status, paid_at, paid_how, direct_debit, payment_suspended, pdf_key, pdf_sha256, pdf_size,
			import_batch_id, created_at, updated_at)
		SELECT $1, a.id, s.number, s.object, s.issued_on, s.due_on, s.amount_cents,
			coalesce(s.status, 'unpaid'),
			CASE WHEN s.status = 'paid' THEN $3::timestamptz END,
			CASE WHEN s.status IS DISTINCT FROM 'paid' THEN ''
			     WHEN coalesce(s.direct_debit, false) THEN 'direct_debit' ELSE 'elsewhere' END,
			coalesce(s.direct_debit, false), coalesce(s.payment_suspended, false),
			coalesce(s.pdf_key, ''), coalesce(s.pdf_sha256, ''), coalesce(s.pdf_size, 0),
			$2, $3, $3
		FROM invoice_import_staging s
		JOIN accounts a ON a.tenant_id = $1 AND a.external_ref = s.payer_ref
		WHERE NOT EXISTS (SELECT 1 FROM invoices e WHERE e.tenant_id = $1 AND e.number = s.number)
		ORDER BY a.id, s.issued_on, s.line`

	// Alerts are about new invoices to pay: a history loaded as paid or in
	// treasury sends nothing.
	mergeInsertWithNews = `
		WITH ins AS (` + insertNew + ` RETURNING account_id, number, issued_on, status),
		news AS (
			INSERT INTO invoice_import_news (account_id, n, numbers)
			SELECT account_id, count(*), (array_agg(number ORDER BY issued_on DESC, number DESC))[1:$4]
			FROM ins WHERE status = 'unpaid' GROUP BY account_id
		)
		SELECT count(*) FROM ins`
)

// enqueueAlerts sends one email per account that got new unpaid invoices,
// if the account is active and wants alerts; the tenant's switch was checked.
func (im *Importer) enqueueAlerts(ctx context.Context, tx *sqlx.Tx, tenantID int64, now time.Time) (int, error) {
	type news struct {
		AccountID   int64          `db:"account_id"`
		N           int            `db:"n"`
		Numbers     pq.StringArray `db:"numbers"`
		Email       string         `db:"email"`
		DisplayName string         `db:"display_name"`
	}
	sent := 0
	after := int64(0)
	for {
		// Pages keep memory flat when a file brings invoices to every payer.
		var page []news
		err := tx.SelectContext(ctx, &page, `
			SELECT n.account_id, n.n, n.numbers, a.email, a.display_name
			FROM invoice_import_news n
			JOIN accounts a ON a.tenant_id = $1 AND a.id = n.account_id
			WHERE n.account_id > $2 AND a.status = 'active' AND a.invoice_alerts AND a.email <> ''
			ORDER BY n.account_id LIMIT 500`, tenantID, after)
		if err != nil {
			return sent, fmt.Errorf("invoice: import: alerts: %w", err)
		}
		for _, n := range page {
			err := im.Outbox.EnqueueTx(ctx, tx, mail.Email{
				TenantID: tenantID,
				To:       n.Email,
				Template: AlertTemplate,
				Data: map[string]any{
					"Count":       n.N,
					"Numbers":     []string(n.Numbers),
					"DisplayName": n.DisplayName,
					"AccountID":   n.AccountID,
				},
				// Stale after a month: the resident will have seen the invoices.
				NotAfter: now.Add(30 * 24 * time.Hour),
			})
			if err != nil {
				return sent, fmt.Errorf("invoice: import: alert for account %d: %w", n.AccountID, err)
			}
			sent++
			after = n.AccountID
		}
		if len(page) < 500 {
			return sent, nil
		}
	}
}

// reject records a refused file and its errors in the journal, in a
// transaction of its own: the invoices stay untouched.
func (im *Importer) reject(ctx context.Context, t *tenant.Tenant, rep *Report, errs *errorList, start time.Time) (Report, error) {
	rep.Rejected = errs.count
	rep.Errors = mergeSameLine(errs.list)
	rep.Inserted, rep.Updated, rep.Unchanged, rep.PDFs, rep.Alerts = 0, 0, 0, 0, 0
	rep.Duration = im.now().Sub(start)
	rejected := fmt.Errorf("%w: %d ligne(s) refusée(s)", ErrRejected, rep.Rejected)
	err := db.InTx(ctx, im.DB, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &rep.BatchID, `
			INSERT INTO import_batches (tenant_id, kind, status, file_sha256, filename, encoding, started_at, finished_at, lines, rejected)
			VALUES ($1, 'invoices', 'rejected', $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			t.ID, rep.FileSHA256, clip(rep.Filename, 255), rep.Encoding, start, im.now(), rep.Lines, rep.Rejected)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, pq.CopyIn("import_errors", "tenant_id", "batch_id", "line", "number", "reason"))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range rep.Errors {
			if _, err := stmt.Exec(t.ID, rep.BatchID, int64(e.Line), e.Number, e.Reason); err != nil {
				return err
			}
		}
		if _, err := stmt.Exec(); err != nil {
			return err
		}
		return stmt.Close()
	})
	if err != nil {
		return *rep, errors.Join(rejected, fmt.Errorf("invoice: import: journal: %w", err))
	}
	return *rep, rejected
}

// mergeSameLine joins the reasons of errors on the same line (sorted input).
func mergeSameLine(list []LineError) []LineError {
	out := make([]LineError, 0, len(list))
	for _, e := range list {
		if n := len(out); n > 0 && out[n-1].Line == e.Line {
			out[n-1].Reason += " ; " + e.Reason
			if out[n-1].Number == "" {
				out[n-1].Number = e.Number
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// source is the CSV file, readable twice (scan, then parse).
type source struct {
	io.ReadSeeker
	start int64
	tmp   *os.File
}

// seekable returns r itself when it can seek (files, uploads), else a
// temporary copy of at most maxBytes+1 bytes (the scan reports larger files).
func seekable(r io.Reader, maxBytes int64) (*source, error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		if pos, err := rs.Seek(0, io.SeekCurrent); err == nil {
			return &source{ReadSeeker: rs, start: pos}, nil
		}
	}
	f, err := os.CreateTemp("", "portail-import-*.csv")
	if err != nil {
		return nil, fmt.Errorf("invoice: import: spool: %w", err)
	}
	os.Remove(f.Name()) // unlinked: gone when closed, even after a crash
	if _, err := io.Copy(f, io.LimitReader(r, maxBytes+1)); err != nil {
		f.Close()
		return nil, fmt.Errorf("invoice: import: spool: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("invoice: import: spool: %w", err)
	}
	return &source{ReadSeeker: f, tmp: f}, nil
}

func (s *source) rewind() error {
	if _, err := s.Seek(s.start, io.SeekStart); err != nil {
		return fmt.Errorf("invoice: import: rewind: %w", err)
	}
	return nil
}

func (s *source) close() {
	if s.tmp != nil {
		s.tmp.Close()
	}
}

// zipIndex finds the PDF of an invoice number, case-insensitively.
type zipIndex struct {
	files map[string]*zip.File
	dup   map[string]bool
}

func indexZip(z *zip.Reader) *zipIndex {
	if z == nil {
		return nil
	}
	zi := &zipIndex{files: map[string]*zip.File{}, dup: map[string]bool{}}
	for _, f := range z.File {
		name := strings.ReplaceAll(f.Name, `\`, "/")
		if f.FileInfo().IsDir() || strings.HasPrefix(name, "__MACOSX/") {
			continue
		}
		base := path.Base(name)
		if len(base) < 5 || !strings.EqualFold(base[len(base)-4:], ".pdf") {
			continue
		}
		key := strings.ToLower(base[:len(base)-4])
		if _, seen := zi.files[key]; seen {
			zi.dup[key] = true
			continue
		}
		zi.files[key] = f
	}
	return zi
}

func (zi *zipIndex) lookup(number string) (f *zip.File, dup bool) {
	key := strings.ToLower(number)
	return zi.files[key], zi.dup[key]
}

// hashPDF checks that f is a PDF and returns its SHA-256 and size; reason
// (French) tells why it is refused.
func hashPDF(f *zip.File, maxBytes int64) (sum string, size int64, reason string) {
	rc, err := f.Open()
	if err != nil {
		return "", 0, fmt.Sprintf("PDF illisible dans l'archive (%s)", path.Base(f.Name))
	}
	defer rc.Close()
	h := sha256.New()
	var head [5]byte
	n, err := io.ReadFull(rc, head[:])
	if (err != nil && err != io.ErrUnexpectedEOF && err != io.EOF) || string(head[:n]) != "%PDF-" {
		return "", 0, fmt.Sprintf("Le fichier %s de l'archive n'est pas un PDF", path.Base(f.Name))
	}
	h.Write(head[:n])
	m, err := io.Copy(h, io.LimitReader(rc, maxBytes+1-int64(n)))
	if err != nil {
		return "", 0, fmt.Sprintf("PDF illisible dans l'archive (%s)", path.Base(f.Name))
	}
	size = int64(n) + m
	if size > maxBytes {
		return "", 0, fmt.Sprintf("PDF trop volumineux (%s) : %d Mo au plus", path.Base(f.Name), maxBytes>>20)
	}
	return hex.EncodeToString(h.Sum(nil)), size, ""
}

// uploadPDFs stores the PDFs of new invoices and the changed ones, with a
// few uploads in flight. An object already there has the same bytes (keys
// are content-addressed): a re-run after a crash just goes on.
func (im *Importer) uploadPDFs(ctx context.Context, tx *sqlx.Tx, tenantID int64, zi *zipIndex, maxBytes int64) (int, error) {
	type job struct {
		Number string `db:"number"`
		Key    string `db:"pdf_key"`
		SHA    string `db:"pdf_sha256"`
		Size   int64  `db:"pdf_size"`
	}
	var jobs []job
	err := tx.SelectContext(ctx, &jobs, `
		SELECT s.number, s.pdf_key, s.pdf_sha256, s.pdf_size
		FROM invoice_import_staging s
		LEFT JOIN invoices e ON e.tenant_id = $1 AND e.number = s.number
		WHERE s.pdf_sha256 IS NOT NULL AND (e.id IS NULL OR e.pdf_sha256 <> s.pdf_sha256)
		ORDER BY s.line`, tenantID)
	if err != nil {
		return 0, fmt.Errorf("invoice: import: PDFs: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan job)
	var wg sync.WaitGroup
	for range orDefault(im.Uploaders, DefaultUploaders) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				if err := im.uploadOne(ctx, zi, j.Number, j.Key, j.SHA, j.Size, maxBytes); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case work <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	return len(jobs), nil
}

func (im *Importer) uploadOne(ctx context.Context, zi *zipIndex, number, key, sum string, size, maxBytes int64) error {
	f, _ := zi.lookup(number)
	if f == nil {
		return fmt.Errorf("invoice: import: PDF of %s vanished from the archive", number)
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("invoice: import: PDF of %s: %w", number, err)
	}
	body, err := io.ReadAll(io.LimitReader(rc, maxBytes+1))
	rc.Close()
	if err != nil {
		return fmt.Errorf("invoice: import: PDF of %s: %w", number, err)
	}
	got := sha256.Sum256(body)
	if int64(len(body)) != size || hex.EncodeToString(got[:]) != sum {
		return fmt.Errorf("invoice: import: PDF of %s changed during the import", number)
	}
	err = im.Blobs.Put(ctx, key, bytes.NewReader(body), size, sum)
	if err != nil && !errors.Is(err, blob.ErrExists) {
		return fmt.Errorf("invoice: import: upload PDF of %s: %w", number, err)
	}
	return nil
}

// importIdentity is the CSV's SHA-256 alone, or, when a ZIP of PDFs comes
// with it, a SHA-256 over the CSV's and every entry's name, size and CRC-32
// (read from the ZIP's directory: no decompression needed).
func importIdentity(csvSHA string, pdfs *zip.Reader) string {
	if pdfs == nil {
		return csvSHA
	}
	entries := make([]string, 0, len(pdfs.File))
	for _, f := range pdfs.File {
		entries = append(entries, fmt.Sprintf("%s\x00%d\x00%08x", f.Name, f.UncompressedSize64, f.CRC32))
	}
	sort.Strings(entries)
	h := sha256.New()
	io.WriteString(h, csvSHA)
	for _, e := range entries {
		io.WriteString(h, "\x00"+e)
	}
	return hex.EncodeToString(h.Sum(nil))
}
