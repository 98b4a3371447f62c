package mail

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"portail/pkg/metrics"
	"portail/pkg/tenant"
)

// TenantLoader finds the commune an email is sent for.
type TenantLoader interface {
	ByID(ctx context.Context, id int64) (*tenant.Tenant, error)
}

// Worker sends SendArgs jobs. River retries failures with backoff, so an
// SMTP server down for hours delays emails without losing them.
type Worker struct {
	river.WorkerDefaults[SendArgs]
	Tenants  TenantLoader
	Renderer *Renderer
	Sender   *Sender
	Logger   *slog.Logger
	Now      func() time.Time
	// Decorate adds data only known when sending (e.g. an unsubscribe link)
	// and extra headers; nil leaves the email as enqueued.
	Decorate func(ctx context.Context, t *tenant.Tenant, e *Email) (map[string]string, error)
	// Metrics counts sent and failed deliveries (nil: not counted).
	Metrics *metrics.Metrics
}

// Work renders and sends one email.
func (w *Worker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	e := job.Args.Email
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	if !e.NotAfter.IsZero() && now().After(e.NotAfter) {
		// The link it carries is dead: sending it would only confuse.
		w.Logger.Warn("email expired before it could be sent", "template", e.Template, "tenant_id", e.TenantID, "job_id", job.ID)
		return nil
	}
	t, err := w.Tenants.ByID(ctx, e.TenantID)
	if err != nil {
		return fmt.Errorf("mail: tenant %d: %w", e.TenantID, err)
	}
	var headers map[string]string
	if w.Decorate != nil {
		if headers, err = w.Decorate(ctx, t, &e); err != nil {
			return fmt.Errorf("mail: %s: %w", e.Template, err)
		}
	}
	m, err := w.Renderer.Render(t, e)
	m.Headers = headers
	if err != nil {
		// A template error will not fix itself: stop retrying.
		return river.JobCancel(err)
	}
	if err := w.Sender.Send(ctx, m); err != nil {
		w.Metrics.Email(e.Template, metrics.EmailFailed)
		return err
	}
	w.Metrics.Email(e.Template, metrics.EmailSent)
	w.Logger.Info("email sent", "template", e.Template, "tenant", t.Slug, "job_id", job.ID)
	return nil
}

// Timeout bounds one send.
func (w *Worker) Timeout(*river.Job[SendArgs]) time.Duration { return time.Minute }
