package announce

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// UnsubscribeList is the ?liste= of the unsubscribe link an announcement
// carries: it stops the commune's information emails only.
const UnsubscribeList = "informations"

// FanOutArgs is the job that chooses an announcement's recipients and
// enqueues their deliveries.
type FanOutArgs struct {
	TenantID       int64 `json:"tenant_id"`
	AnnouncementID int64 `json:"announcement_id"`
}

// Kind names the job in River's table.
func (FanOutArgs) Kind() string { return "announcement_fan_out" }

// InsertOpts: a failed fan-out is retried; a rerun queues nobody twice.
func (FanOutArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 10} }

// FanOutWorker runs Service.FanOut.
type FanOutWorker struct {
	river.WorkerDefaults[FanOutArgs]
	Service *Service
}

// Work queues the announcement's deliveries.
func (w *FanOutWorker) Work(ctx context.Context, job *river.Job[FanOutArgs]) error {
	return w.Service.FanOut(ctx, job.Args.TenantID, job.Args.AnnouncementID)
}

// Timeout: a commune of 100,000 residents is a few hundred batches.
func (w *FanOutWorker) Timeout(*river.Job[FanOutArgs]) time.Duration { return 10 * time.Minute }

// DeliverArgs is the job that emails one recipient.
type DeliverArgs struct {
	TenantID       int64 `json:"tenant_id"`
	AnnouncementID int64 `json:"announcement_id"`
	AccountID      int64 `json:"account_id"`
}

// Kind names the job in River's table.
func (DeliverArgs) Kind() string { return "announcement_delivery" }

// InsertOpts retries for about a day, like every email (an SMTP relay
// down for hours delays the announcement without losing it), in the
// announcements' own queue.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 25, Queue: Queue}
}

// DeliverWorker sends one recipient's email.
type DeliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	Service  *Service
	Tenants  mail.TenantLoader
	Renderer *mail.Renderer
	Sender   *mail.Sender
	// Links builds an absolute link to path on the commune's primary host.
	Links func(t *tenant.Tenant, path string) string
}

// Work delivers the email unless it is settled already.
func (w *DeliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	t, err := w.Tenants.ByID(ctx, job.Args.TenantID)
	if err != nil {
		return fmt.Errorf("announce: tenant %d: %w", job.Args.TenantID, err)
	}
	final := job.Attempt >= job.MaxAttempts
	return w.Service.Deliver(ctx, t, job.Args.AnnouncementID, job.Args.AccountID, final, w.send)
}

// Timeout bounds one send.
func (w *DeliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return time.Minute }

// send renders the announcement for one resident, with the link that
// stops these emails (also as List-Unsubscribe, with one-click POST).
func (w *DeliverWorker) send(ctx context.Context, s Sent) error {
	unsubscribe := w.Links(s.Tenant, "/desabonnement/"+s.UnsubscribeToken+"?liste="+UnsubscribeList)
	m, err := w.Renderer.Render(s.Tenant, Email(s.Tenant, s.To, s.DisplayName, s.Subject, s.Body, unsubscribe, w.Links(s.Tenant, "/")))
	if err != nil {
		return err
	}
	m.Headers = map[string]string{
		"List-Unsubscribe":      "<" + unsubscribe + ">",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
	}
	return w.Sender.Send(ctx, m)
}

// Email is the announcement's email to one resident (the preview renders
// it too).
func Email(t *tenant.Tenant, to, displayName, subject, body, unsubscribeLink, portalLink string) mail.Email {
	return mail.Email{TenantID: t.ID, To: to, Template: Template, Data: map[string]any{
		"DisplayName": displayName, "Subject": subject, "Body": body,
		"UnsubscribeLink": unsubscribeLink, "PortalLink": portalLink,
	}}
}
