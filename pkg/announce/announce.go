// Package announce sends the commune's information emails ("informations
// diverses") to every active resident who has not stopped them.
//
// Sending is two kinds of River job. The fan-out job first chooses the
// recipients once (a row each, whose key keeps a resident from being
// chosen twice) and then, a batch per transaction, enqueues one delivery
// job per recipient while marking it queued: a retried or concurrent
// fan-out skips what is queued already. A delivery job locks its
// recipient's row while it sends and marks it sent in the same
// transaction: a retried delivery finds it sent and does nothing. The
// deliveries run in a queue of their own, so that a large announcement
// does not delay the transactional emails (activation, passwords).
package announce

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"portail/pkg/audit"
	"portail/pkg/db"
	"portail/pkg/tenant"
)

// Queue is the River queue of the deliveries.
const Queue = "announcements"

// Template is the email, templates/email/announcement.tmpl.
const Template = "announcement"

// Bounds of an announcement, in characters.
const (
	MaxSubjectLength = 200
	MaxBodyLength    = 10000
)

// defaultBatch is how many recipients one fan-out transaction queues.
const defaultBatch = 500

// Recipient statuses.
const (
	RecipientPending = "pending"
	RecipientQueued  = "queued"
	RecipientSent    = "sent"
	RecipientFailed  = "failed"
	// RecipientSkipped: the resident stopped these emails, or the account
	// was disabled, before its email went.
	RecipientSkipped = "skipped"
)

// Errors of the package.
var (
	ErrNotFound = errors.New("announce: not found")
	// ErrInvalidRequestKey: the confirmation form lacks its key.
	ErrInvalidRequestKey = errors.New("announce: invalid request key")
)

// InputError is a refused field, with its message for the staff.
type InputError struct {
	Field   string // "subject" or "body"
	Message string
}

func (e *InputError) Error() string { return "announce: " + e.Field + ": " + e.Message }

// Inserter is what the service needs of River's client.
type Inserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertManyTx(ctx context.Context, tx *sql.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// Service creates announcements and runs their sending.
type Service struct {
	DB   *sqlx.DB
	Jobs Inserter
	Now  func() time.Time
	// Batch is how many recipients one fan-out transaction queues (default 500).
	Batch int
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Announcement is one information email and how its sending goes.
type Announcement struct {
	TenantID  int64     `db:"tenant_id"`
	ID        int64     `db:"id"`
	Subject   string    `db:"subject"`
	Body      string    `db:"body"`
	Author    string    `db:"author"` // the staff member who sent it
	CreatedAt time.Time `db:"created_at"`
	Total     *int      `db:"total"` // nil while the recipients are being chosen
	Sent      int       `db:"sent"`
	Failed    int       `db:"failed"`
	Skipped   int       `db:"skipped"`
}

// Chosen tells whether the recipients are chosen (Recipients is known).
func (a Announcement) Chosen() bool { return a.Total != nil }

// Recipients is how many residents the announcement goes to (0 until
// they are chosen).
func (a Announcement) Recipients() int {
	if a.Total == nil {
		return 0
	}
	return *a.Total
}

// Done counts the recipients whose email is settled (sent, failed, skipped).
func (a Announcement) Done() int { return a.Sent + a.Failed + a.Skipped }

// Finished tells whether every recipient is settled.
func (a Announcement) Finished() bool { return a.Total != nil && a.Done() >= *a.Total }

// Clean validates and normalises an announcement: a one-line subject (it
// becomes the email's), LF line ends, trimmed.
func Clean(subject, body string) (string, string, error) {
	if !utf8.ValidString(subject) || strings.ContainsRune(subject, 0) {
		return "", "", &InputError{"subject", "L'objet contient des caractères non valides."}
	}
	if !utf8.ValidString(body) || strings.ContainsRune(body, 0) {
		return "", "", &InputError{"body", "Le texte contient des caractères non valides."}
	}
	subject = strings.Join(strings.Fields(subject), " ")
	body = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n"))
	switch {
	case subject == "":
		return "", "", &InputError{"subject", "Veuillez saisir l'objet de l'annonce."}
	case utf8.RuneCountInString(subject) > MaxSubjectLength:
		return "", "", &InputError{"subject", fmt.Sprintf("L'objet ne doit pas dépasser %d caractères.", MaxSubjectLength)}
	case body == "":
		return "", "", &InputError{"body", "Veuillez saisir le texte de l'annonce."}
	case utf8.RuneCountInString(body) > MaxBodyLength:
		return "", "", &InputError{"body", fmt.Sprintf("Le texte ne doit pas dépasser %d caractères.", MaxBodyLength)}
	}
	return subject, body, nil
}

// recipientsWhere selects the residents an announcement goes to: active
// accounts (activated, not disabled) with an address that did not stop
// the commune's information emails.
const recipientsWhere = `a.tenant_id = $1 AND a.status = 'active' AND a.announcements AND a.email <> ''`

// Recipients counts the residents an announcement of tenantID would reach
// now.
func (s *Service) Recipients(ctx context.Context, tenantID int64) (int, error) {
	var n int
	if err := s.DB.GetContext(ctx, &n, `SELECT count(*) FROM accounts a WHERE `+recipientsWhere, tenantID); err != nil {
		return 0, fmt.Errorf("announce: recipients: %w", err)
	}
	return n, nil
}

// Create records staff member staffID's announcement and starts its
// sending (the fan-out job runs once the transaction commits), audited.
// requestKey is the confirmation form's: posted again, it returns the
// announcement it created, sending nothing more.
func (s *Service) Create(ctx context.Context, tenantID, staffID int64, requestKey, subject, body string) (int64, error) {
	subject, body, err := Clean(subject, body)
	if err != nil {
		return 0, err
	}
	if n := len(requestKey); n < 16 || n > 64 {
		return 0, ErrInvalidRequestKey
	}
	var id int64
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &id, `INSERT INTO announcements (tenant_id, subject, body, staff_user_id, created_at, request_key)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, request_key) DO NOTHING RETURNING id`,
			tenantID, subject, body, staffID, s.now(), requestKey)
		if errors.Is(err, sql.ErrNoRows) {
			// Sent already from this form.
			if err := tx.GetContext(ctx, &id, `SELECT id FROM announcements WHERE tenant_id = $1 AND request_key = $2`, tenantID, requestKey); err != nil {
				return fmt.Errorf("announce: create: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("announce: create: %w", err)
		}
		if _, err := s.Jobs.InsertTx(ctx, tx.Tx, FanOutArgs{TenantID: tenantID, AnnouncementID: id}, nil); err != nil {
			return fmt.Errorf("announce: enqueue: %w", err)
		}
		return audit.Record(ctx, tx, tenantID, "announcement.send", audit.Of(ObjectAnnouncement, id),
			map[string]any{"subject": subject})
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// NewRequestKey is a confirmation form's key (see Create).
func NewRequestKey() string { return rand.Text() }

// ObjectAnnouncement is the audit object type of an announcement.
const ObjectAnnouncement = "announcement"

const announcementSelect = `SELECT n.tenant_id, n.id, n.subject, n.body, coalesce(u.name, '') AS author, n.created_at,
	n.total,
	count(*) FILTER (WHERE r.status = 'sent') AS sent,
	count(*) FILTER (WHERE r.status = 'failed') AS failed,
	count(*) FILTER (WHERE r.status = 'skipped') AS skipped
	FROM announcements n
	LEFT JOIN staff_users u ON u.id = n.staff_user_id
	LEFT JOIN announcement_recipients r ON r.tenant_id = n.tenant_id AND r.announcement_id = n.id`

// Get returns an announcement of tenantID with its progress (ErrNotFound
// when it has none of that id).
func (s *Service) Get(ctx context.Context, tenantID, id int64) (*Announcement, error) {
	var a Announcement
	err := s.DB.GetContext(ctx, &a, announcementSelect+`
		WHERE n.tenant_id = $1 AND n.id = $2 GROUP BY n.tenant_id, n.id, u.name`, tenantID, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("announce: get: %w", err)
	}
	return &a, nil
}

// List returns one page of tenantID's announcements, most recent first,
// with their progress, and how many there are.
func (s *Service) List(ctx context.Context, tenantID int64, page, perPage int) ([]Announcement, int, error) {
	var total int
	if err := s.DB.GetContext(ctx, &total, `SELECT count(*) FROM announcements WHERE tenant_id = $1`, tenantID); err != nil {
		return nil, 0, fmt.Errorf("announce: list: %w", err)
	}
	out := []Announcement{}
	limit, offset, ok := db.PageWindow(page, perPage, total)
	if !ok {
		return out, total, nil
	}
	// The page's ids first: the progress is counted for those rows only.
	if err := s.DB.SelectContext(ctx, &out, announcementSelect+`
		WHERE n.tenant_id = $1 AND n.id IN (SELECT id FROM announcements WHERE tenant_id = $1
			ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3)
		GROUP BY n.tenant_id, n.id, u.name ORDER BY n.created_at DESC, n.id DESC`, tenantID, limit, offset); err != nil {
		return nil, 0, fmt.Errorf("announce: list: %w", err)
	}
	return out, total, nil
}

// FanOut chooses the announcement's recipients (once) and enqueues their
// deliveries, a batch per transaction. Running it again, or twice at
// once, enqueues no recipient twice.
func (s *Service) FanOut(ctx context.Context, tenantID, id int64) error {
	if err := s.chooseRecipients(ctx, tenantID, id); err != nil {
		return err
	}
	batch := s.Batch
	if batch <= 0 {
		batch = defaultBatch
	}
	for {
		var n int
		err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
			var accounts []int64
			if err := tx.SelectContext(ctx, &accounts, `SELECT account_id FROM announcement_recipients
				WHERE tenant_id = $1 AND announcement_id = $2 AND status = 'pending'
				ORDER BY account_id LIMIT $3 FOR UPDATE SKIP LOCKED`, tenantID, id, batch); err != nil {
				return fmt.Errorf("announce: batch: %w", err)
			}
			if n = len(accounts); n == 0 {
				return nil
			}
			params := make([]river.InsertManyParams, n)
			for i, a := range accounts {
				params[i] = river.InsertManyParams{Args: DeliverArgs{TenantID: tenantID, AnnouncementID: id, AccountID: a}}
			}
			if _, err := s.Jobs.InsertManyTx(ctx, tx.Tx, params); err != nil {
				return fmt.Errorf("announce: enqueue: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE announcement_recipients SET status = 'queued'
				WHERE tenant_id = $1 AND announcement_id = $2 AND account_id = ANY ($3)`, tenantID, id, pq.Array(accounts)); err != nil {
				return fmt.Errorf("announce: batch: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// chooseRecipients records the recipients and their number, once: the
// announcement's row is locked while it does, and total set tells a rerun
// that it is done.
func (s *Service) chooseRecipients(ctx context.Context, tenantID, id int64) error {
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var total sql.NullInt64
		err := tx.GetContext(ctx, &total, `SELECT total FROM announcements WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenantID, id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("announce: recipients: %w", err)
		}
		if total.Valid {
			return nil
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO announcement_recipients (tenant_id, announcement_id, account_id)
			SELECT a.tenant_id, $2, a.id FROM accounts a WHERE `+recipientsWhere+`
			ON CONFLICT DO NOTHING`, tenantID, id)
		if err != nil {
			return fmt.Errorf("announce: recipients: %w", err)
		}
		n, _ := res.RowsAffected()
		if _, err := tx.ExecContext(ctx, `UPDATE announcements SET total = $3 WHERE tenant_id = $1 AND id = $2`, tenantID, id, n); err != nil {
			return fmt.Errorf("announce: recipients: %w", err)
		}
		return nil
	})
}

// delivery is a recipient as its delivery job reads it.
type delivery struct {
	Status           string `db:"status"`
	Email            string `db:"email"`
	DisplayName      string `db:"display_name"`
	AccountStatus    string `db:"account_status"`
	Wants            bool   `db:"announcements"`
	UnsubscribeToken string `db:"unsubscribe_token"`
	Subject          string `db:"subject"`
	Body             string `db:"body"`
}

// Sent is what Deliver's send function receives.
type Sent struct {
	Tenant           *tenant.Tenant
	To, DisplayName  string
	Subject, Body    string
	UnsubscribeToken string
}

// Deliver sends one recipient's email with send, unless it is settled
// already (a retried job) or the resident no longer wants it. The row is
// locked while send runs and marked in the same transaction: two jobs
// for one recipient send once. final says this is the job's last attempt:
// a failure then is recorded as such (otherwise it is returned, for River
// to retry later).
func (s *Service) Deliver(ctx context.Context, t *tenant.Tenant, id, accountID int64, final bool, send func(context.Context, Sent) error) error {
	var sendErr error
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var d delivery
		err := tx.GetContext(ctx, &d, `SELECT r.status, a.email, a.display_name, a.status AS account_status, a.announcements,
				a.unsubscribe_token, n.subject, n.body
			FROM announcement_recipients r
			JOIN accounts a ON a.tenant_id = r.tenant_id AND a.id = r.account_id
			JOIN announcements n ON n.tenant_id = r.tenant_id AND n.id = r.announcement_id
			WHERE r.tenant_id = $1 AND r.announcement_id = $2 AND r.account_id = $3
			FOR NO KEY UPDATE OF r SKIP LOCKED`, t.ID, id, accountID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // settled by another job holding it, or gone with its account
		}
		if err != nil {
			return fmt.Errorf("announce: delivery: %w", err)
		}
		if d.Status == RecipientSent || d.Status == RecipientFailed || d.Status == RecipientSkipped {
			return nil
		}
		status, detail := RecipientSent, ""
		if d.AccountStatus != "active" || !d.Wants || d.Email == "" {
			status = RecipientSkipped
		} else if sendErr = send(ctx, Sent{Tenant: t, To: d.Email, DisplayName: d.DisplayName, Subject: d.Subject,
			Body: d.Body, UnsubscribeToken: d.UnsubscribeToken}); sendErr != nil {
			if !final {
				return nil // left queued: River retries the job
			}
			status, detail = RecipientFailed, truncate(sendErr.Error(), 500)
		}
		var sentAt any
		if status == RecipientSent {
			sentAt = s.now()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE announcement_recipients SET status = $4, sent_at = $5, error = $6
			WHERE tenant_id = $1 AND announcement_id = $2 AND account_id = $3`, t.ID, id, accountID, status, sentAt, detail); err != nil {
			return fmt.Errorf("announce: delivery: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if sendErr != nil && !final {
		return sendErr
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
