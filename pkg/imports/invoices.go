package imports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/db"
	"portail/pkg/invoice"
	"portail/pkg/mail"
)

// applyInvoiceFile is the import job of an invoices batch: all or nothing.
//
// It never moves an invoice to another payer, never changes the status of
// an invoice paid or cancelled on the portal, nor the amount of a paid one
// or of one a resident is paying (pending attempt): such lines are rejected
// or, for the status, left as they are.
func (s *Service) applyInvoiceFile(ctx context.Context, b *Batch) error {
	// Imported meanwhile (another upload of the same file): nothing to read.
	if id, done, err := importedBefore(ctx, s.DB, b); err != nil {
		return err
	} else if done {
		return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error { return finishDuplicate(ctx, tx, b, id, s.now()) })
	}
	csv, err := s.openStaged(ctx, b)
	if err != nil {
		return err
	}
	defer csv.Close()
	var pdfs pdfSource
	if b.ZipKey != "" {
		z, err := s.fetchZIP(ctx, b)
		if err != nil {
			return err
		}
		defer z.close()
		pdfs = z
	}
	lim := s.limits()
	var parser *invoiceParser
	run := &invoiceRun{s: s, lim: lim, b: b, pdfs: pdfs, prog: s.newProgress(b)}
	return run.run(ctx, func() (InvoiceLine, string, error) {
		if parser == nil {
			p, err := newInvoiceParser(newRecordReader(csv, b.Encoding, lim.maxRecord(), false))
			if err != nil {
				return InvoiceLine{}, "", err
			}
			parser = p
		}
		return parser.next()
	})
}

// openStaged streams the batch's staged CSV file from the store; a read
// failure wraps ErrStorage, bytes that differ from the upload fail at the end.
func (s *Service) openStaged(ctx context.Context, b *Batch) (io.ReadCloser, error) {
	rc, _, err := s.Blobs.Get(ctx, b.CSVKey, b.CSVSHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return storageReader{rc}, nil
}

// storageReader marks read failures of the store as ErrStorage.
type storageReader struct{ io.ReadCloser }

func (r storageReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, ErrStorage) {
		err = fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return n, err
}

// invoiceRun applies invoice lines in one transaction.
type invoiceRun struct {
	s    *Service
	lim  Limits
	b    *Batch // the file's batch; for a direct write, the batch to insert
	tx   *sqlx.Tx
	pdfs pdfSource // nil: no PDFs given
	prog *progress // nil for a direct write
	// direct: a write of the API, whose batch is inserted at the end.
	direct bool
	now    time.Time

	lines, valid int // lines read, lines that parsed
	alertsOn     bool
}

// run stages the lines given by next, checks them and applies them, or
// records why they are refused; the batch's outcome commits with them.
func (r *invoiceRun) run(ctx context.Context, next func() (InvoiceLine, string, error)) (err error) {
	r.now = r.s.now()
	tx, err := r.s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("imports: begin: %w", err)
	}
	r.tx = tx
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := r.lock(ctx); err != nil {
		return err
	}
	if !r.direct {
		if err := stillToApply(ctx, tx, r.b); err != nil {
			return err
		}
		if id, done, err := importedBefore(ctx, tx, r.b); err != nil {
			return err
		} else if done {
			return r.commit(finishDuplicate(ctx, tx, r.b, id, r.s.now()))
		}
	}
	if err := r.createStaging(ctx); err != nil {
		return err
	}
	refusal, err := r.stageLines(ctx, next)
	if err != nil {
		return err
	}
	if refusal == "" && r.lines == 0 {
		refusal = "Fichier vide : aucune facture après la ligne d'en-tête"
	}
	if refusal != "" {
		return r.commit(r.finishRefused(ctx, refusal))
	}
	r.s.fault("staged")

	if err := r.prog.setStage(ctx, StageChecking); err != nil {
		return err
	}
	if err := r.stageZipIndex(ctx); err != nil {
		return err
	}
	if err := r.checkLines(ctx); err != nil {
		return err
	}
	if r.pdfs != nil {
		if err := r.prog.setStage(ctx, StagePDFs); err != nil {
			return err
		}
		if err := r.checkPDFs(ctx); err != nil {
			return err
		}
	}
	var rejected int
	if err := tx.GetContext(ctx, &rejected, `SELECT count(*) FROM invoice_import_staging WHERE reason IS NOT NULL`); err != nil {
		return fmt.Errorf("imports: count rejected: %w", err)
	}
	if rejected > 0 {
		return r.commit(r.finishRejected(ctx, rejected))
	}
	r.s.fault("validated")

	if r.pdfs != nil {
		if err := r.prog.setStage(ctx, StageUploading); err != nil {
			return err
		}
		if err := r.storePDFs(ctx); err != nil {
			return err
		}
	}
	r.s.fault("uploaded")
	if err := r.prog.setStage(ctx, StageApplying); err != nil {
		return err
	}
	if err := r.merge(ctx); err != nil {
		return err
	}
	r.s.fault("merged")
	if r.alertsOn {
		if r.b.Alerts, err = r.enqueueAlerts(ctx); err != nil {
			return err
		}
	}
	if err := r.finish(ctx, StatusImported); err != nil {
		return err
	}
	if err := recordImported(ctx, r.tx, r.b); err != nil {
		return err
	}
	r.s.fault("commit")
	return r.commit(nil)
}

func (r *invoiceRun) commit(err error) error {
	if err != nil {
		return err
	}
	if err := r.tx.Commit(); err != nil {
		if db.IsUniqueViolation(err) {
			return fmt.Errorf("imports: file imported concurrently: %w", err)
		}
		return fmt.Errorf("imports: commit: %w", err)
	}
	return nil
}

// lock serialises the tenant's invoice imports: no deadlock between two
// files touching the same invoices, and the identity check cannot race.
// A direct write waits a bounded time behind a big file.
func (r *invoiceRun) lock(ctx context.Context) error {
	if r.direct {
		if _, err := r.tx.ExecContext(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
			return fmt.Errorf("imports: lock: %w", err)
		}
	}
	if _, err := r.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('portail.invoice.import', $1))`, r.b.TenantID); err != nil {
		if isLockTimeout(err) {
			return ErrBusy
		}
		return fmt.Errorf("imports: lock: %w", err)
	}
	if r.direct {
		if _, err := r.tx.ExecContext(ctx, `SET LOCAL lock_timeout = 0`); err != nil {
			return fmt.Errorf("imports: lock: %w", err)
		}
	}
	// Sorts and hashes over a million staged lines stay in memory.
	if _, err := r.tx.ExecContext(ctx, `SET LOCAL work_mem = '128MB'`); err != nil {
		return fmt.Errorf("imports: %w", err)
	}
	return nil
}

// ErrBusy is returned by a direct write that waited too long behind an
// import of the same commune: try again shortly.
var ErrBusy = errors.New("imports: an import of this commune is running")

func isLockTimeout(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// createStaging creates the transaction's work tables: every line of the
// file (reason set when rejected), the ZIP's index, the checked PDFs and
// the new invoices per account (alerts).
func (r *invoiceRun) createStaging(ctx context.Context) error {
	_, err := r.tx.ExecContext(ctx, `
		CREATE TEMP TABLE invoice_import_staging (
			line              integer NOT NULL,
			number            text COLLATE "C",
			payer_ref         text,
			object            text,
			issued_on         date,
			due_on            date,
			amount_cents      bigint,
			status            text,
			direct_debit      boolean,
			payment_suspended boolean,
			reason            text
		) ON COMMIT DROP;
		CREATE TEMP TABLE invoice_import_zip_entries (key text COLLATE "C" NOT NULL, entry integer NOT NULL) ON COMMIT DROP;
		CREATE TEMP TABLE invoice_import_pdfs (
			line       integer NOT NULL,
			number     text COLLATE "C" NOT NULL,
			pdf_key    text,
			pdf_sha256 text,
			pdf_size   bigint,
			reason     text
		) ON COMMIT DROP`)
	if err != nil {
		return fmt.Errorf("imports: staging: %w", err)
	}
	return nil
}

// stageLines COPYs every line into the staging table as it is read. It
// returns a French reason when the whole file is refused.
func (r *invoiceRun) stageLines(ctx context.Context, next func() (InvoiceLine, string, error)) (refusal string, err error) {
	stmt, err := r.tx.PrepareContext(ctx, pq.CopyIn("invoice_import_staging",
		"line", "number", "payer_ref", "object", "issued_on", "due_on", "amount_cents",
		"status", "direct_debit", "payment_suspended", "reason"))
	if err != nil {
		return "", fmt.Errorf("imports: copy: %w", err)
	}
	defer stmt.Close()
	for {
		l, reason, err := next()
		if err == io.EOF {
			break
		}
		var se *errStructure
		if errors.As(err, &se) {
			return se.reason, stmt.Close()
		}
		if err != nil {
			return "", err
		}
		r.lines++
		if r.lines > r.lim.MaxLines {
			return tooManyLines(r.lim.MaxLines), stmt.Close()
		}
		if err := r.prog.lines(ctx, r.lines); err != nil {
			return "", err
		}
		if reason != "" {
			var number any
			if invoice.ValidNumber(l.Number) {
				number = l.Number
			}
			if _, err := stmt.ExecContext(ctx, int64(l.Line), number, nil, nil, nil, nil, nil, nil, nil, nil, reason); err != nil {
				return "", fmt.Errorf("imports: copy: %w", err)
			}
			continue
		}
		r.valid++
		var status any
		if l.Status != "" {
			status = string(l.Status)
		}
		if _, err := stmt.ExecContext(ctx, int64(l.Line), l.Number, l.PayerRef, l.Object,
			l.IssuedOn.Format(time.DateOnly), l.DueOn.Format(time.DateOnly), l.AmountCents,
			status, optBool(l.DirectDebit), optBool(l.Suspended), nil); err != nil {
			return "", fmt.Errorf("imports: copy: %w", err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return "", fmt.Errorf("imports: copy: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return "", fmt.Errorf("imports: copy: %w", err)
	}
	if r.prog != nil {
		r.prog.done = r.lines // written with the next stage
	}
	return "", nil
}

func optBool(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

// stageZipIndex COPYs the archive's PDF entries by invoice number.
func (r *invoiceRun) stageZipIndex(ctx context.Context) error {
	if r.pdfs == nil {
		return nil
	}
	stmt, err := r.tx.PrepareContext(ctx, pq.CopyIn("invoice_import_zip_entries", "key", "entry"))
	if err != nil {
		return fmt.Errorf("imports: zip index: %w", err)
	}
	defer stmt.Close()
	for i := range r.pdfs.count() {
		if key, ok := pdfKey(r.pdfs.name(i)); ok {
			if _, err := stmt.ExecContext(ctx, key, int64(i)); err != nil {
				return fmt.Errorf("imports: zip index: %w", err)
			}
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("imports: zip index: %w", err)
	}
	return stmt.Close()
}

// checkLines records, on the lines that parsed, what the database refuses:
// numbers twice in the file, unknown payers, payer changes, amounts changed
// on invoices paid or in a pending payment (the resident is paying the
// amount he was shown), and PDFs missing from the archive or there twice.
//
// An attempt started after this check and before the merge may still see
// its invoice's amount change: settling the payment then marks the invoice
// paid only if its amount still equals what was paid (pkg/payment), so the
// window costs a refund, never an invoice paid at the wrong amount.
func (r *invoiceRun) checkLines(ctx context.Context) error {
	if _, err := r.tx.ExecContext(ctx, `ANALYZE invoice_import_staging`); err != nil {
		return fmt.Errorf("imports: analyze: %w", err)
	}
	_, err := r.tx.ExecContext(ctx, `
		WITH dup AS (
			SELECT number, min(line) AS first FROM invoice_import_staging WHERE reason IS NULL
			GROUP BY number HAVING count(*) > 1
		), zip AS (
			SELECT key, count(*) AS entries FROM invoice_import_zip_entries GROUP BY key
		), pending AS (
			SELECT invoice_id FROM payment_invoices WHERE tenant_id = $1 AND status = 'pending'
		), checked AS (
			SELECT s.line, concat_ws(' ; ',
				CASE WHEN d.first < s.line
					THEN 'Numéro de facture en double dans le fichier (déjà ligne ' || d.first || ')' END,
				CASE WHEN a.id IS NULL
					THEN 'Redevable inconnu : « ' || s.payer_ref || ' »' END,
				CASE WHEN a.id IS NOT NULL AND e.account_id <> a.id
					THEN 'Cette facture appartient déjà au redevable « ' || coalesce(o.external_ref, '?') ||
					     ' » : le changement de redevable est refusé' END,
				CASE WHEN $2 AND z.entries > 1
					THEN 'Plusieurs PDF pour la facture ' || s.number || ' dans l''archive' END,
				CASE WHEN $2 AND e.id IS NULL AND z.entries IS NULL
					THEN 'PDF absent de l''archive (' || s.number || '.pdf)' END,
				CASE WHEN e.status = 'paid' AND e.amount_cents <> s.amount_cents
					THEN 'Facture déjà réglée : son montant ne peut plus être modifié' END,
				CASE WHEN pp.invoice_id IS NOT NULL AND e.status <> 'paid' AND e.amount_cents <> s.amount_cents
					THEN 'Paiement en cours pour cette facture : son montant ne peut pas être modifié tant que le paiement n''est pas terminé' END) AS reason
			FROM invoice_import_staging s
			LEFT JOIN dup d ON d.number = s.number
			LEFT JOIN zip z ON z.key = lower(s.number)
			LEFT JOIN accounts a ON a.tenant_id = $1 AND a.external_ref = s.payer_ref
			LEFT JOIN invoices e ON e.tenant_id = $1 AND e.number = s.number
			LEFT JOIN accounts o ON o.tenant_id = $1 AND o.id = e.account_id
			LEFT JOIN pending pp ON pp.invoice_id = e.id
			WHERE s.reason IS NULL
		)
		UPDATE invoice_import_staging s SET reason = c.reason
		FROM checked c WHERE c.line = s.line AND c.reason <> ''`, r.b.TenantID, r.pdfs != nil)
	if err != nil {
		return fmt.Errorf("imports: check: %w", err)
	}
	return nil
}

// pdfPage is how many PDFs are checked or stored between two queries: the
// transaction's one connection cannot stream a query while it COPYs.
const pdfPage = 2000

// checkPDFs reads each line's PDF from the archive: a PDF of at most the
// limit, whose SHA-256 and size are staged for the apply. Lines with no
// entry or several were dealt with by checkLines.
func (r *invoiceRun) checkPDFs(ctx context.Context) error {
	_, err := r.tx.ExecContext(ctx, `
		CREATE TEMP TABLE invoice_import_pdf_todo ON COMMIT DROP AS
		SELECT row_number() OVER (ORDER BY min(z.entry), s.line) AS rn, s.line, s.number, min(z.entry) AS entry
		FROM invoice_import_staging s
		JOIN invoice_import_zip_entries z ON z.key = lower(s.number)
		WHERE s.number IS NOT NULL
		GROUP BY s.line, s.number HAVING count(*) = 1;
		CREATE INDEX ON invoice_import_pdf_todo (rn)`)
	if err != nil {
		return fmt.Errorf("imports: PDFs: %w", err)
	}
	type todo struct {
		RN     int64  `db:"rn"`
		Line   int    `db:"line"`
		Number string `db:"number"`
		Entry  int    `db:"entry"`
	}
	for after := int64(0); ; {
		var page []todo
		if err := r.tx.SelectContext(ctx, &page, `SELECT rn, line, number, entry FROM invoice_import_pdf_todo
			WHERE rn > $1 ORDER BY rn LIMIT $2`, after, pdfPage); err != nil {
			return fmt.Errorf("imports: PDFs: %w", err)
		}
		if len(page) == 0 {
			break
		}
		stmt, err := r.tx.PrepareContext(ctx, pq.CopyIn("invoice_import_pdfs", "line", "number", "pdf_key", "pdf_sha256", "pdf_size", "reason"))
		if err != nil {
			return fmt.Errorf("imports: PDFs: %w", err)
		}
		for _, t := range page {
			if err := ctx.Err(); err != nil {
				stmt.Close()
				return fmt.Errorf("imports: %w", err)
			}
			sum, size, reason := hashPDF(r.pdfs, t.Entry, r.lim.MaxPDFBytes)
			var key, sha, sz, why any
			if reason != "" {
				why = reason
			} else {
				key, sha, sz = invoice.PDFKey(r.b.TenantID, t.Number, sum), sum, size
			}
			if _, err := stmt.ExecContext(ctx, int64(t.Line), t.Number, key, sha, sz, why); err != nil {
				stmt.Close()
				return fmt.Errorf("imports: PDFs: %w", err)
			}
		}
		if _, err := stmt.ExecContext(ctx); err != nil {
			stmt.Close()
			return fmt.Errorf("imports: PDFs: %w", err)
		}
		if err := stmt.Close(); err != nil {
			return fmt.Errorf("imports: PDFs: %w", err)
		}
		after = page[len(page)-1].RN
	}
	_, err = r.tx.ExecContext(ctx, `
		UPDATE invoice_import_staging s SET reason = concat_ws(' ; ', s.reason, p.reason)
		FROM invoice_import_pdfs p WHERE p.line = s.line AND p.reason IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("imports: PDFs: %w", err)
	}
	return nil
}

// storePDFs uploads the PDFs of new invoices and the changed ones before
// the rows that point to them commit: a failed import leaves at worst
// unreferenced objects for the sweeper.
func (r *invoiceRun) storePDFs(ctx context.Context) error {
	_, err := r.tx.ExecContext(ctx, `
		CREATE TEMP TABLE invoice_import_uploads ON COMMIT DROP AS
		SELECT row_number() OVER (ORDER BY t.entry) AS rn, p.number, p.pdf_key, p.pdf_sha256, p.pdf_size, t.entry
		FROM invoice_import_pdfs p
		JOIN invoice_import_pdf_todo t ON t.line = p.line
		LEFT JOIN invoices e ON e.tenant_id = $1 AND e.number = p.number
		WHERE e.id IS NULL OR e.pdf_sha256 <> p.pdf_sha256`, r.b.TenantID)
	if err == nil {
		_, err = r.tx.ExecContext(ctx, `CREATE INDEX ON invoice_import_uploads (rn)`)
	}
	if err != nil {
		return fmt.Errorf("imports: PDFs: %w", err)
	}
	for after := int64(0); ; {
		var page []struct {
			RN int64 `db:"rn"`
			pdfUpload
		}
		if err := r.tx.SelectContext(ctx, &page, `SELECT rn, number, pdf_key, pdf_sha256, pdf_size, entry
			FROM invoice_import_uploads WHERE rn > $1 ORDER BY rn LIMIT $2`, after, pdfPage); err != nil {
			return fmt.Errorf("imports: PDFs: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		list := make([]pdfUpload, len(page))
		for i, p := range page {
			list[i] = p.pdfUpload
		}
		if err := r.s.uploadPDFs(ctx, r.pdfs, list); err != nil {
			return err
		}
		r.b.PDFs += len(page)
		after = page[len(page)-1].RN
	}
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
			pdf_key = coalesce(p.pdf_key, i.pdf_key),
			pdf_sha256 = coalesce(p.pdf_sha256, i.pdf_sha256),
			pdf_size = coalesce(p.pdf_size, i.pdf_size),
			import_batch_id = $2,
			updated_at = $3
		FROM invoice_import_staging s
		LEFT JOIN invoice_import_pdfs p ON p.line = s.line
		WHERE i.tenant_id = $1 AND i.number = s.number
		  AND (i.object, i.issued_on, i.due_on, i.amount_cents, i.status, i.direct_debit,
		       i.payment_suspended, i.pdf_sha256)
		      IS DISTINCT FROM
		      (s.object, s.issued_on, s.due_on,
		       CASE WHEN i.status = 'paid' THEN i.amount_cents ELSE s.amount_cents END,
		       ` + newStatus + `, ` + newDD + `,
		       coalesce(s.payment_suspended, i.payment_suspended), coalesce(p.pdf_sha256, i.pdf_sha256))`

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
			coalesce(p.pdf_key, ''), coalesce(p.pdf_sha256, ''), coalesce(p.pdf_size, 0),
			$2, $3, $3
		FROM invoice_import_staging s
		JOIN accounts a ON a.tenant_id = $1 AND a.external_ref = s.payer_ref
		LEFT JOIN invoice_import_pdfs p ON p.line = s.line
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

// merge updates the invoices that changed and inserts the new ones.
func (r *invoiceRun) merge(ctx context.Context) error {
	tx, b := r.tx, r.b
	if b.ID == 0 {
		if err := tx.GetContext(ctx, &b.ID, `SELECT nextval(pg_get_serial_sequence('import_batches', 'id'))`); err != nil {
			return fmt.Errorf("imports: batch id: %w", err)
		}
	}
	res, err := tx.ExecContext(ctx, mergeUpdate, b.TenantID, b.ID, r.now)
	if err != nil {
		return fmt.Errorf("imports: update: %w", err)
	}
	updated, _ := res.RowsAffected()
	b.Updated = int(updated)

	if err := tx.GetContext(ctx, &r.alertsOn, `SELECT invoice_alerts FROM tenants WHERE id = $1`, b.TenantID); err != nil {
		return fmt.Errorf("imports: tenant: %w", err)
	}
	r.alertsOn = r.alertsOn && r.s.Outbox != nil
	if r.alertsOn {
		if _, err := tx.ExecContext(ctx, `
			CREATE TEMP TABLE invoice_import_news (
				account_id bigint PRIMARY KEY, n integer NOT NULL, numbers text[] NOT NULL
			) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("imports: news: %w", err)
		}
		err = tx.GetContext(ctx, &b.Inserted, mergeInsertWithNews, b.TenantID, b.ID, r.now, AlertNumbers)
	} else {
		var n int64
		if res, err = tx.ExecContext(ctx, insertNew, b.TenantID, b.ID, r.now); err == nil {
			n, _ = res.RowsAffected()
		}
		b.Inserted = int(n)
	}
	if err != nil {
		return fmt.Errorf("imports: insert: %w", err)
	}
	b.Unchanged = r.valid - b.Inserted - b.Updated
	if b.Unchanged < 0 {
		return fmt.Errorf("imports: %d lines staged but %d inserted and %d updated", r.valid, b.Inserted, b.Updated)
	}
	return nil
}

// enqueueAlerts sends one email per account that got new unpaid invoices,
// if the account is active and wants alerts; the tenant's switch was checked.
func (r *invoiceRun) enqueueAlerts(ctx context.Context) (int, error) {
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
		err := r.tx.SelectContext(ctx, &page, `
			SELECT n.account_id, n.n, n.numbers, a.email, a.display_name
			FROM invoice_import_news n
			JOIN accounts a ON a.tenant_id = $1 AND a.id = n.account_id
			WHERE n.account_id > $2 AND a.status = 'active' AND a.invoice_alerts AND a.email <> ''
			ORDER BY n.account_id LIMIT 500`, r.b.TenantID, after)
		if err != nil {
			return sent, fmt.Errorf("imports: alerts: %w", err)
		}
		for _, n := range page {
			err := r.s.Outbox.EnqueueTx(ctx, r.tx, mail.Email{
				TenantID: r.b.TenantID,
				To:       n.Email,
				Template: AlertTemplate,
				Data: map[string]any{
					"Count":       n.N,
					"Numbers":     []string(n.Numbers),
					"DisplayName": n.DisplayName,
					"AccountID":   n.AccountID,
				},
				// Stale after a month: the resident will have seen the invoices.
				NotAfter: r.now.Add(30 * 24 * time.Hour),
			})
			if err != nil {
				return sent, fmt.Errorf("imports: alert for account %d: %w", n.AccountID, err)
			}
			sent++
			after = n.AccountID
		}
		if len(page) < 500 {
			return sent, nil
		}
	}
}

// finish writes the batch's outcome in the transaction: an update of the
// file's batch, or the direct write's batch.
func (r *invoiceRun) finish(ctx context.Context, status Status) error {
	b := r.b
	b.Status, b.Stage, b.Lines, b.LinesDone = status, StageDone, r.lines, r.lines
	b.LinesTotal = max(b.LinesTotal, r.lines)
	return finishBatch(ctx, r.tx, b, r.direct, r.s.now())
}

// finishRefused records a file refused as a whole (line 0); nothing but
// the work tables was written.
func (r *invoiceRun) finishRefused(ctx context.Context, reason string) error {
	r.b.Rejected = 1
	if err := r.finish(ctx, StatusRejected); err != nil {
		return err
	}
	return insertFileError(ctx, r.tx, r.b, reason)
}

// finishRejected records the rejected lines (the first MaxErrors) of a
// refused file; the invoices stay untouched.
func (r *invoiceRun) finishRejected(ctx context.Context, rejected int) error {
	r.b.Rejected = rejected
	r.b.Inserted, r.b.Updated, r.b.Unchanged, r.b.PDFs, r.b.Alerts = 0, 0, 0, 0, 0
	if err := r.finish(ctx, StatusRejected); err != nil {
		return err
	}
	_, err := r.tx.ExecContext(ctx, `
		INSERT INTO import_errors (tenant_id, batch_id, line, number, reason)
		SELECT $1, $2, line, coalesce(number, ''), reason FROM invoice_import_staging
		WHERE reason IS NOT NULL ORDER BY line LIMIT $3`, r.b.TenantID, r.b.ID, r.lim.MaxErrors)
	if err != nil {
		return fmt.Errorf("imports: journal: %w", err)
	}
	return nil
}

// finishBatch writes a batch's outcome: an update of a staged batch, or an
// insert for a direct write.
func finishBatch(ctx context.Context, tx *sqlx.Tx, b *Batch, insert bool, now time.Time) error {
	if insert {
		if b.StartedAt == nil {
			b.StartedAt = &now
		}
		return insertBatch(ctx, tx, b, now)
	}
	b.FinishedAt, b.UpdatedAt = &now, now
	_, err := tx.ExecContext(ctx, `
		UPDATE import_batches SET status = $3, stage = 'done', lines = $4, lines_done = $4,
			lines_total = greatest(lines_total, $4), inserted = $5, updated = $6, unchanged = $7,
			rejected = $8, notes = $9, pdfs = $10, alerts = $11, finished_at = $12, updated_at = $12, error = ''
		WHERE tenant_id = $1 AND id = $2`,
		b.TenantID, b.ID, b.Status, b.Lines, b.Inserted, b.Updated, b.Unchanged, b.Rejected, b.Notes, b.PDFs, b.Alerts, now)
	if err != nil {
		return fmt.Errorf("imports: batch: %w", err)
	}
	return nil
}

// stillToApply checks, under the import lock, that no other run (a job
// rescued while its first run still goes on) applied the batch meanwhile.
func stillToApply(ctx context.Context, tx *sqlx.Tx, b *Batch) error {
	var status Status
	if err := tx.GetContext(ctx, &status, `SELECT status FROM import_batches WHERE tenant_id = $1 AND id = $2`, b.TenantID, b.ID); err != nil {
		return fmt.Errorf("imports: batch %d: %w", b.ID, err)
	}
	if status.Done() {
		return errBatchDone
	}
	return nil
}

// finishDuplicate ends a batch whose file was imported before (batch id).
func finishDuplicate(ctx context.Context, tx *sqlx.Tx, b *Batch, id int64, now time.Time) error {
	b.Status, b.DuplicateOf = StatusDuplicate, &id
	_, err := tx.ExecContext(ctx, `
		UPDATE import_batches SET status = 'duplicate', stage = 'done', duplicate_of = $3,
			finished_at = $4, updated_at = $4, error = ''
		WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running')`, b.TenantID, b.ID, id, now)
	if err != nil {
		return fmt.Errorf("imports: batch: %w", err)
	}
	return nil
}
