package imports

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"portail/pkg/audit"
	"portail/pkg/blob"
)

// Queue is the River queue of import jobs: a few workers per instance, so
// that big files neither starve the emails nor exhaust memory.
const Queue = "imports"

// MaxAttempts is how many times an import job runs before its batch is
// failed (River waits longer between each).
const MaxAttempts = 5

// JobArgs is the River job that applies a staged batch.
type JobArgs struct {
	TenantID int64 `json:"tenant_id"`
	BatchID  int64 `json:"batch_id"`
}

// Kind names the job in River's table.
func (JobArgs) Kind() string { return "import_batch" }

// InsertOpts puts the job on the imports queue.
func (JobArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: MaxAttempts}
}

// Worker applies staged batches.
type Worker struct {
	river.WorkerDefaults[JobArgs]
	Service *Service
}

// Timeout: a million lines take tens of seconds, far more on a busy
// machine; River's default minute would cut them.
func (w *Worker) Timeout(*river.Job[JobArgs]) time.Duration { return time.Hour }

// Work applies the batch. A failure is recorded on the batch (River tries
// again later, and the batch is failed after the last attempt); nothing
// is ever half applied, so a retry starts afresh.
func (w *Worker) Work(ctx context.Context, job *river.Job[JobArgs]) error {
	_, err := w.Service.Apply(ctx, job.Args.TenantID, job.Args.BatchID)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return river.JobCancel(err)
	}
	// A staged file that changed in the store will not change back.
	hopeless := errors.Is(err, blob.ErrChecksumMismatch)
	final := hopeless || job.Attempt >= job.MaxAttempts
	if rerr := w.Service.recordFailure(context.WithoutCancel(ctx), job.Args.TenantID, job.Args.BatchID, err, final); rerr != nil {
		w.Service.log().Error("import: record failure", "batch", job.Args.BatchID, "error", rerr)
	}
	if hopeless {
		return river.JobCancel(err)
	}
	return err
}

// errBatchDone: the batch already has its outcome (a job run twice).
var errBatchDone = errors.New("imports: batch already done")

// Apply runs the import job of a staged batch now, in the caller's
// goroutine (the Worker, the bench), and returns its report. A batch that
// has its outcome already is left alone. On error nothing was applied and
// the batch can be applied again.
func (s *Service) Apply(ctx context.Context, tenantID, batchID int64) (Report, error) {
	b, err := s.claim(ctx, tenantID, batchID)
	if errors.Is(err, errBatchDone) {
		return s.Report(ctx, tenantID, batchID, 0, reportErrors)
	}
	if err != nil {
		return Report{}, err
	}
	// The job acts for whoever uploaded the file.
	uploader := Actor{Kind: b.ActorKind}
	if b.ActorID != nil {
		uploader.ID = *b.ActorID
	}
	ctx = audit.WithActor(ctx, uploader.auditActor())
	switch b.Kind {
	case KindInvoices:
		err = s.applyInvoiceFile(ctx, b)
	case KindPayers:
		err = s.applyPayerFile(ctx, b)
	default:
		err = fmt.Errorf("imports: batch %d of unknown kind %q", b.ID, b.Kind)
	}
	if errors.Is(err, errBatchDone) {
		// Another run gave the batch its outcome (and counted it).
		return s.Report(ctx, tenantID, batchID, 0, reportErrors)
	}
	if err != nil {
		return Report{}, err
	}
	rep, err := s.Report(ctx, tenantID, batchID, 0, reportErrors)
	if err == nil {
		s.countApplied(rep, true)
	}
	return rep, err
}

// claim marks the batch running, unless it is done.
func (s *Service) claim(ctx context.Context, tenantID, batchID int64) (*Batch, error) {
	var b Batch
	err := s.DB.GetContext(ctx, &b, `
		UPDATE import_batches SET status = 'running', stage = 'reading', lines_done = 0, attempts = attempts + 1,
			started_at = CASE WHEN status = 'running' THEN started_at ELSE $3 END, updated_at = $3, error = ''
		WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running')
		RETURNING `+batchColumns, tenantID, batchID, s.now())
	if err == nil {
		return &b, nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		if _, lerr := s.Batch(ctx, tenantID, batchID); lerr != nil {
			return nil, lerr
		}
		return nil, errBatchDone
	}
	return nil, fmt.Errorf("imports: claim batch %d: %w", batchID, err)
}

// recordFailure notes why an attempt failed; after the last one the batch
// is failed. The technical error goes to the log, staff read a French one.
func (s *Service) recordFailure(ctx context.Context, tenantID, batchID int64, cause error, final bool) error {
	reason := failureReason(cause)
	s.log().Warn("import attempt failed", "tenant_id", tenantID, "batch", batchID, "final", final, "error", cause)
	status, finished := StatusQueued, (*time.Time)(nil)
	if final {
		now := s.now()
		status, finished = StatusFailed, &now
		reason += " ; abandon : rien n'a été importé, envoyez le fichier à nouveau"
	} else {
		reason += " ; rien n'a été importé, nouvelle tentative automatique"
	}
	var kind string
	err := s.DB.GetContext(ctx, &kind, `
		UPDATE import_batches SET status = $3, stage = CASE WHEN $3 = 'failed' THEN 'done' ELSE 'queued' END,
			error = $4, finished_at = $5, updated_at = now()
		WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running')
		RETURNING kind`,
		tenantID, batchID, status, reason, finished)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // another run gave the batch its outcome
	}
	if err != nil {
		return fmt.Errorf("imports: record failure of batch %d: %w", batchID, err)
	}
	if final {
		s.Metrics.ImportFile(kind, string(StatusFailed))
	}
	return nil
}

// failureReason says in French what failed, without internals.
func failureReason(err error) string {
	var se interface{ SQLState() string }
	switch {
	case errors.Is(err, blob.ErrChecksumMismatch):
		return "Le fichier déposé a été altéré dans le stockage"
	case errors.Is(err, ErrStorage):
		return "Stockage des fichiers indisponible"
	case errors.As(err, &se), errors.Is(err, driver.ErrBadConn):
		return "Base de données indisponible"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "Import interrompu (arrêt du serveur ou délai dépassé)"
	}
	return "Erreur interne"
}
