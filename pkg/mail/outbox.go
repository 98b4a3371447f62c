package mail

import (
	"context"
	"fmt"
	"time"

	"database/sql"
	"github.com/jmoiron/sqlx"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Email is one email to send, rendered when the job runs from the named
// templates/email template with the commune's branding and Data.
type Email struct {
	TenantID int64          `json:"tenant_id"`
	To       string         `json:"to"`
	ReplyTo  string         `json:"reply_to,omitempty"`
	Template string         `json:"template"` // e.g. "activation": templates/email/activation.{txt,html}
	Data     map[string]any `json:"data"`
	// NotAfter drops the email when it could not be sent before then, e.g.
	// when the link it carries has expired.
	NotAfter time.Time `json:"not_after,omitzero"`
}

// SendArgs is the River job that sends one Email.
type SendArgs struct {
	Email Email `json:"email"`
}

// Kind names the job in River's table.
func (SendArgs) Kind() string { return "send_email" }

// InsertOpts retries for a day (SMTP down for hours loses nothing).
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 25, Queue: river.QueueDefault}
}

// Inserter is what the outbox needs of River's client.
type Inserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Outbox enqueues emails inside the caller's transaction.
type Outbox struct {
	jobs Inserter
}

// NewOutbox returns an outbox inserting through River's client.
func NewOutbox(jobs Inserter) *Outbox { return &Outbox{jobs: jobs} }

// EnqueueTx schedules e; it is sent only if tx commits.
func (o *Outbox) EnqueueTx(ctx context.Context, tx *sqlx.Tx, e Email) error {
	if e.To == "" || e.Template == "" || e.TenantID == 0 {
		return fmt.Errorf("mail: incomplete email (to %q, template %q, tenant %d)", e.To, e.Template, e.TenantID)
	}
	if _, err := o.jobs.InsertTx(ctx, tx.Tx, SendArgs{Email: e}, nil); err != nil {
		return fmt.Errorf("mail: enqueue: %w", err)
	}
	return nil
}
