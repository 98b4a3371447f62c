package imports

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/db"
)

// applyPayerFile is the import job of a payers batch. A payers file is a
// list of independent people: the valid lines are applied (one bad address
// must not hold back the commune's other residents) and the others
// reported, by line, with the reason. A file (or a single API write) whose
// every line is rejected is "rejected": nothing was imported.
//
// New references become pending accounts. The email of an activated
// account is not replaced by the file's (it is its resident's login, which
// he may have changed on the portal); a note reports the difference.
// Accounts missing from the file are left as they are. A closed account
// (account.CloseTx) in the file becomes pending again, with the file's name
// and address: the commune still bills that payer.
func (s *Service) applyPayerFile(ctx context.Context, b *Batch) error {
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
	lim := s.limits()
	var parser *payerParser
	run := &payerRun{s: s, lim: lim, b: b, prog: s.newProgress(b)}
	return run.run(ctx, func() (PayerLine, string, error) {
		if parser == nil {
			// Stray quotes in names are common in exports: read them as
			// they are (a quote left open is caught by the parser).
			p, err := newPayerParser(newRecordReader(csv, b.Encoding, lim.maxRecord(), true))
			if err != nil {
				return PayerLine{}, "", err
			}
			parser = p
		}
		return parser.next()
	})
}

// payerRun applies payer lines in one transaction.
type payerRun struct {
	s      *Service
	lim    Limits
	b      *Batch
	tx     *sqlx.Tx
	prog   *progress
	direct bool
	lines  int
}

func (r *payerRun) run(ctx context.Context, next func() (PayerLine, string, error)) (err error) {
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
	// One payers import at a time per commune: the counts and the address
	// checks below read the accounts as they are, and concurrent writes of
	// the same new payer cannot both create it.
	if r.direct {
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
			return fmt.Errorf("imports: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('portail.payers.import', $1))`, r.b.TenantID); err != nil {
		if isLockTimeout(err) {
			return ErrBusy
		}
		return fmt.Errorf("imports: lock: %w", err)
	}
	if r.direct {
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = 0`); err != nil {
			return fmt.Errorf("imports: lock: %w", err)
		}
	} else if err := stillToApply(ctx, tx, r.b); err != nil {
		return err
	} else if id, done, err := importedBefore(ctx, tx, r.b); err != nil {
		return err
	} else if done {
		return r.commit(finishDuplicate(ctx, tx, r.b, id, r.s.now()))
	}
	if _, err := tx.ExecContext(ctx, `
		CREATE TEMP TABLE payer_import_staging (
			line          integer NOT NULL,
			ref           text,
			name          text,
			email         text,
			reason        text,
			account_id    bigint,
			current_name  text,
			current_email text,
			target        text,
			note          text
		) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("imports: staging: %w", err)
	}
	refusal, err := r.stageLines(ctx, next)
	if err != nil {
		return err
	}
	if refusal == "" && r.lines == 0 {
		refusal = "Fichier vide : aucun redevable après la ligne d'en-tête."
	}
	if refusal != "" {
		r.b.Rejected = 1
		if err := r.finish(ctx, StatusRejected); err != nil {
			return err
		}
		return r.commit(insertFileError(ctx, tx, r.b, refusal))
	}
	r.s.fault("staged")
	if err := r.prog.setStage(ctx, StageChecking); err != nil {
		return err
	}
	if err := r.check(ctx); err != nil {
		return err
	}
	var valid int
	if err := tx.GetContext(ctx, &valid, `SELECT count(*) FROM payer_import_staging WHERE reason IS NULL`); err != nil {
		return fmt.Errorf("imports: count: %w", err)
	}
	if valid == 0 {
		// Every line rejected (a single API write among them): nothing
		// was imported, and the batch says so.
		r.b.Rejected = r.lines
		if err := r.finish(ctx, StatusRejected); err != nil {
			return err
		}
		return r.commit(r.journal(ctx))
	}
	if err := r.prog.setStage(ctx, StageApplying); err != nil {
		return err
	}
	if err := r.apply(ctx); err != nil {
		return err
	}
	r.s.fault("merged")
	if err := r.finish(ctx, StatusImported); err != nil {
		return err
	}
	if err := recordImported(ctx, r.tx, r.b); err != nil {
		return err
	}
	if err := r.journal(ctx); err != nil {
		return err
	}
	r.s.fault("commit")
	return r.commit(nil)
}

func (r *payerRun) commit(err error) error {
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

// stageLines COPYs every line (rejected ones with their reason).
func (r *payerRun) stageLines(ctx context.Context, next func() (PayerLine, string, error)) (string, error) {
	stmt, err := r.tx.PrepareContext(ctx, pq.CopyIn("payer_import_staging", "line", "ref", "name", "email", "reason"))
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
		var why any
		if reason != "" {
			why = reason
		}
		if _, err := stmt.ExecContext(ctx, int64(l.Line), l.Ref, l.Name, l.Email, why); err != nil {
			return "", fmt.Errorf("imports: copy: %w", err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return "", fmt.Errorf("imports: copy: %w", err)
	}
	if r.prog != nil {
		r.prog.done = r.lines
	}
	return "", stmt.Close()
}

// check rejects, on the lines that parsed: references and addresses twice
// in the file, and addresses another account keeps; it notes the
// activated accounts that keep their login.
func (r *payerRun) check(ctx context.Context) error {
	tenantID := r.b.TenantID
	steps := []struct {
		what  string
		query string
		args  []any
	}{
		{"references twice", `
			UPDATE payer_import_staging s SET reason = format('Référence « %s » déjà présente ligne %s.', s.ref, d.first)
			FROM (SELECT line, min(line) OVER (PARTITION BY ref) AS first FROM payer_import_staging WHERE reason IS NULL) d
			WHERE d.line = s.line AND d.first < s.line`, nil},
		{"addresses twice", `
			UPDATE payer_import_staging s SET reason = format('Adresse mail « %s » déjà présente ligne %s.', s.email, d.first)
			FROM (SELECT line, min(line) OVER (PARTITION BY email) AS first FROM payer_import_staging WHERE reason IS NULL) d
			WHERE d.line = s.line AND d.first < s.line`, nil},
		// The accounts concerned stay as read until the commit.
		{"lock", `
			SELECT count(*) FROM (SELECT 1 FROM accounts a
				WHERE a.tenant_id = $1 AND (a.external_ref IN (SELECT ref FROM payer_import_staging WHERE reason IS NULL)
				                         OR a.email IN (SELECT email FROM payer_import_staging WHERE reason IS NULL))
				FOR UPDATE) locked`, []any{tenantID}},
		// target: the address each line's account ends with; an activated
		// account keeps its own.
		{"targets", `
			UPDATE payer_import_staging s SET account_id = a.id, current_name = a.display_name, current_email = a.email,
				target = CASE WHEN a.status = 'active' AND a.email <> s.email THEN a.email ELSE s.email END
			FROM accounts a
			WHERE a.tenant_id = $1 AND a.external_ref = s.ref AND s.reason IS NULL`, []any{tenantID}},
		{"new targets", `UPDATE payer_import_staging SET target = email WHERE reason IS NULL AND target IS NULL`, nil},
	}
	for _, st := range steps {
		if _, err := r.tx.ExecContext(ctx, st.query, st.args...); err != nil {
			return fmt.Errorf("imports: check %s: %w", st.what, err)
		}
	}
	// An address is free if nobody holds it, or its holder is in the file
	// and moves to another address. Rejecting a line can un-free an
	// address, hence the loop to a fixed point.
	for {
		res, err := r.tx.ExecContext(ctx, `
			UPDATE payer_import_staging s
			SET reason = format('Adresse mail « %s » déjà utilisée par un autre redevable (référence « %s »).', s.target, h.external_ref)
			FROM accounts h
			WHERE s.reason IS NULL AND h.tenant_id = $1 AND h.email = s.target AND h.external_ref <> s.ref
			  AND NOT EXISTS (SELECT 1 FROM payer_import_staging j
			                  WHERE j.ref = h.external_ref AND j.reason IS NULL AND j.target <> s.target)`, tenantID)
		if err != nil {
			return fmt.Errorf("imports: check addresses: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			break
		}
	}
	_, err := r.tx.ExecContext(ctx, `
		UPDATE payer_import_staging
		SET note = format('Compte activé : l''adresse de connexion « %s » est conservée (le fichier indique « %s »).', target, email)
		WHERE reason IS NULL AND account_id IS NOT NULL AND target <> email`)
	if err != nil {
		return fmt.Errorf("imports: check notes: %w", err)
	}
	return nil
}

// apply writes the valid lines and counts them.
func (r *payerRun) apply(ctx context.Context) error {
	tx, b := r.tx, r.b
	var counts struct {
		Inserted  int `db:"inserted"`
		Updated   int `db:"updated"`
		Unchanged int `db:"unchanged"`
		Rejected  int `db:"rejected"`
		Notes     int `db:"notes"`
	}
	if err := tx.GetContext(ctx, &counts, `
		SELECT count(*) FILTER (WHERE reason IS NULL AND account_id IS NULL) AS inserted,
		       count(*) FILTER (WHERE reason IS NULL AND account_id IS NOT NULL
		                        AND (name <> current_name OR target <> current_email)) AS updated,
		       count(*) FILTER (WHERE reason IS NULL AND account_id IS NOT NULL
		                        AND name = current_name AND target = current_email) AS unchanged,
		       count(*) FILTER (WHERE reason IS NOT NULL) AS rejected,
		       count(*) FILTER (WHERE reason IS NULL AND note IS NOT NULL) AS notes
		FROM payer_import_staging`); err != nil {
		return fmt.Errorf("imports: count: %w", err)
	}
	b.Inserted, b.Updated, b.Unchanged, b.Rejected, b.Notes = counts.Inserted, counts.Updated, counts.Unchanged, counts.Rejected, counts.Notes
	// Placeholder addresses let two accounts swap theirs within the
	// non-deferrable unique constraint; stale activation links (sent to the
	// old address) die.
	moving := `SELECT account_id FROM payer_import_staging WHERE reason IS NULL AND account_id IS NOT NULL AND target <> current_email`
	if _, err := tx.ExecContext(ctx, `UPDATE accounts SET email = 'moving-' || id || '@import.invalid'
		WHERE tenant_id = $1 AND id IN (`+moving+`)`, b.TenantID); err != nil {
		return fmt.Errorf("imports: apply: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE account_tokens SET used_at = now()
		WHERE tenant_id = $1 AND account_id IN (`+moving+`) AND used_at IS NULL`, b.TenantID); err != nil {
		return fmt.Errorf("imports: apply: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO accounts (tenant_id, external_ref, display_name, email)
		SELECT $1, ref, name, target FROM payer_import_staging
		WHERE reason IS NULL AND (account_id IS NULL OR name <> current_name OR target <> current_email)
		ORDER BY line
		ON CONFLICT (tenant_id, external_ref) DO UPDATE
		SET display_name = EXCLUDED.display_name, email = EXCLUDED.email, updated_at = now(),
		    -- A closed account imported again becomes a new pending account
		    -- of the imported name and address (it activates afresh).
		    status = CASE WHEN accounts.status = 'closed' THEN 'pending' ELSE accounts.status END,
		    closed_at = NULL`, b.TenantID); err != nil {
		if db.IsUniqueViolation(err) {
			// Someone took an address between our check and now.
			return fmt.Errorf("imports: concurrent change of an address, retry: %w", err)
		}
		return fmt.Errorf("imports: apply: %w", err)
	}
	return nil
}

func (r *payerRun) finish(ctx context.Context, status Status) error {
	b := r.b
	b.Status, b.Stage, b.Lines, b.LinesDone = status, StageDone, r.lines, r.lines
	b.LinesTotal = max(b.LinesTotal, r.lines)
	return finishBatch(ctx, r.tx, b, r.direct, r.s.now())
}

// journal records the rejected lines and the notes (the first MaxErrors
// of each), once the batch row exists.
func (r *payerRun) journal(ctx context.Context) error {
	_, err := r.tx.ExecContext(ctx, `
		INSERT INTO import_errors (tenant_id, batch_id, line, number, reason, severity)
		(SELECT $1::bigint, $2::bigint, line, left(coalesce(ref, ''), 100), reason, 'error' FROM payer_import_staging
		 WHERE reason IS NOT NULL ORDER BY line LIMIT $3)
		UNION ALL
		(SELECT $1, $2, line, left(ref, 100), note, 'note' FROM payer_import_staging
		 WHERE reason IS NULL AND note IS NOT NULL ORDER BY line LIMIT $3)`, r.b.TenantID, r.b.ID, r.lim.MaxErrors)
	if err != nil {
		return fmt.Errorf("imports: journal: %w", err)
	}
	return nil
}
