// Package message is the "Contact" exchange between residents and their
// commune's service, as threads: a resident's message from the Contact
// form opens a thread; the staff read it in their inbox, answer it (the
// reply is stored under its author, emailed to the resident and shown on
// the resident's Contact page) and open or close the thread. Every query
// is scoped by the commune's id; a resident's view adds its account.
package message

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/audit"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// Directions of a message.
const (
	FromResident = "resident"
	FromStaff    = "staff"
)

// Thread statuses.
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

// ReplyTemplate is the email of a reply, templates/email/contact_reply.tmpl.
const ReplyTemplate = "contact_reply"

// MaxBodyLength bounds a message, in characters.
const MaxBodyLength = 5000

// Errors of the package.
var (
	ErrNotFound = errors.New("message: thread not found")
	// ErrEmptyBody and ErrBodyTooLong refuse a reply (nothing is stored).
	ErrEmptyBody   = errors.New("message: empty body")
	ErrBodyTooLong = errors.New("message: body too long")
	ErrInvalidText = errors.New("message: invalid characters")
)

// Thread is a conversation between a resident and the service.
type Thread struct {
	TenantID      int64      `db:"tenant_id"`
	ID            int64      `db:"id"`
	AccountID     int64      `db:"account_id"`
	Subject       string     `db:"subject"`
	Status        string     `db:"status"`
	CreatedAt     time.Time  `db:"created_at"`
	LastMessageAt time.Time  `db:"last_message_at"`
	Unread        int        `db:"unread"` // resident messages staff have not read
	ClosedAt      *time.Time `db:"closed_at"`
	// The resident, as the staff's inbox shows them.
	PayerRef   string `db:"external_ref"`
	PayerName  string `db:"display_name"`
	PayerEmail string `db:"email"`
}

// Open tells whether the thread is open.
func (t Thread) Open() bool { return t.Status == StatusOpen }

// Message is one message of a thread.
type Message struct {
	ID        int64      `db:"id"`
	ThreadID  int64      `db:"thread_id"`
	Direction string     `db:"direction"`
	Subject   string     `db:"subject"`
	Body      string     `db:"body"`
	CreatedAt time.Time  `db:"created_at"`
	ReadAt    *time.Time `db:"read_at"`
	// Author is the staff member who wrote a reply ("" for a resident's).
	Author string `db:"author"`
}

// FromStaff tells whether the message is a reply of the service.
func (m Message) FromStaff() bool { return m.Direction == FromStaff }

// Service reads and writes the threads.
type Service struct {
	DB     *sqlx.DB
	Outbox *mail.Outbox
	// Links builds an absolute link to path on the commune's primary host.
	Links func(t *tenant.Tenant, path string) string
	Now   func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// StartThread stores a resident's message as a new thread, in the
// caller's transaction; it returns the message's id.
func StartThread(ctx context.Context, tx *sqlx.Tx, tenantID, accountID int64, subject, body string, at time.Time) (int64, error) {
	var threadID, id int64
	if err := tx.GetContext(ctx, &threadID, `INSERT INTO message_threads (tenant_id, account_id, subject, created_at, last_message_at, unread)
		VALUES ($1, $2, $3, $4, $4, 1) RETURNING id`, tenantID, accountID, subject, at); err != nil {
		return 0, fmt.Errorf("message: thread: %w", err)
	}
	if err := tx.GetContext(ctx, &id, `INSERT INTO messages (tenant_id, account_id, thread_id, direction, subject, body, created_at)
		VALUES ($1, $2, $3, 'resident', $4, $5, $6) RETURNING id`, tenantID, accountID, threadID, subject, body, at); err != nil {
		return 0, fmt.Errorf("message: store: %w", err)
	}
	return id, nil
}

// Query selects a commune's threads (the staff's inbox). Zero fields
// filter nothing.
type Query struct {
	// Status is StatusOpen, StatusClosed or "" (both).
	Status string
	// Payer is any part of the resident's reference, name or email,
	// whatever the case and accents.
	Payer string
	// Sort is one of Sorts ("" is DefaultSort).
	Sort          string
	Page, PerPage int
}

// DefaultSort lists the threads with unread messages first, then the most
// recent.
const DefaultSort = "-unread"

var sorts = map[string]string{
	"-unread": "(t.unread > 0) DESC, t.last_message_at DESC, t.id DESC",
	"unread":  "(t.unread > 0), t.last_message_at DESC, t.id DESC",
	"-date":   "t.last_message_at DESC, t.id DESC",
	"date":    "t.last_message_at, t.id",
}

// Sorts lists the keys Query.Sort accepts ("-" first: descending).
func Sorts() []string { return []string{"unread", "date"} }

const threadColumns = `t.tenant_id, t.id, t.account_id, t.subject, t.status, t.created_at, t.last_message_at,
	t.unread, t.closed_at, a.external_ref, a.display_name, a.email`

const searchWhere = `t.tenant_id = $1
	AND ($2 = '' OR t.status = $2)
	AND ($3 = '' OR portail_fold(a.external_ref || ' ' || a.display_name || ' ' || a.email) LIKE portail_fold($3))`

// Search returns one page of tenantID's threads matching q, in q's
// order, and how many match in all.
func (s *Service) Search(ctx context.Context, tenantID int64, q Query) ([]Thread, int, error) {
	order, ok := sorts[q.Sort]
	if q.Sort == "" {
		order, ok = sorts[DefaultSort], true
	}
	if !ok {
		return nil, 0, fmt.Errorf("message: unknown sort %q", q.Sort)
	}
	if q.Status != "" && q.Status != StatusOpen && q.Status != StatusClosed {
		return nil, 0, fmt.Errorf("message: unknown status %q", q.Status)
	}
	args := []any{tenantID, q.Status, db.Contains(q.Payer)}
	var total int
	if err := s.DB.GetContext(ctx, &total, `SELECT count(*) FROM message_threads t
		JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id WHERE `+searchWhere, args...); err != nil {
		return nil, 0, fmt.Errorf("message: count: %w", err)
	}
	out := []Thread{}
	limit, offset, ok := db.PageWindow(q.Page, q.PerPage, total)
	if !ok {
		return out, total, nil
	}
	if err := s.DB.SelectContext(ctx, &out, `SELECT `+threadColumns+` FROM message_threads t
		JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
		WHERE `+searchWhere+` ORDER BY `+order+` LIMIT $4 OFFSET $5`, append(args, limit, offset)...); err != nil {
		return nil, 0, fmt.Errorf("message: search: %w", err)
	}
	return out, total, nil
}

// Thread returns a thread of tenantID (ErrNotFound when it has none of
// that id).
func (s *Service) Thread(ctx context.Context, tenantID, id int64) (*Thread, error) {
	return getThread(ctx, s.DB, tenantID, id, "")
}

func getThread(ctx context.Context, q sqlx.QueryerContext, tenantID, id int64, lock string) (*Thread, error) {
	var t Thread
	err := sqlx.GetContext(ctx, q, &t, `SELECT `+threadColumns+` FROM message_threads t
		JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
		WHERE t.tenant_id = $1 AND t.id = $2`+lock, tenantID, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("message: thread: %w", err)
	}
	return &t, nil
}

const messageColumns = `m.id, m.thread_id, m.direction, m.subject, m.body, m.created_at, m.read_at, coalesce(u.name, '') AS author`

// Messages returns a thread's messages, oldest first.
func (s *Service) Messages(ctx context.Context, tenantID, threadID int64) ([]Message, error) {
	var out []Message
	if err := s.DB.SelectContext(ctx, &out, `SELECT `+messageColumns+` FROM messages m
		LEFT JOIN staff_users u ON u.id = m.staff_user_id
		WHERE m.tenant_id = $1 AND m.thread_id = $2 ORDER BY m.created_at, m.id`, tenantID, threadID); err != nil {
		return nil, fmt.Errorf("message: messages: %w", err)
	}
	return out, nil
}

// Conversation is a thread with its messages, as its resident reads it.
type Conversation struct {
	Thread
	Messages []Message
}

// maxConversations bounds the threads shown on a resident's Contact page.
const maxConversations = 50

// ResidentConversations returns the account's threads (most recent
// first, at most 50) with their messages, oldest first in each.
func (s *Service) ResidentConversations(ctx context.Context, tenantID, accountID int64) ([]Conversation, error) {
	var threads []Thread
	if err := s.DB.SelectContext(ctx, &threads, `SELECT `+threadColumns+` FROM message_threads t
		JOIN accounts a ON a.tenant_id = t.tenant_id AND a.id = t.account_id
		WHERE t.tenant_id = $1 AND t.account_id = $2
		ORDER BY t.last_message_at DESC, t.id DESC LIMIT $3`, tenantID, accountID, maxConversations); err != nil {
		return nil, fmt.Errorf("message: conversations: %w", err)
	}
	if len(threads) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(threads))
	for i, t := range threads {
		ids[i] = t.ID
	}
	var ms []Message
	if err := s.DB.SelectContext(ctx, &ms, `SELECT `+messageColumns+` FROM messages m
		LEFT JOIN staff_users u ON u.id = m.staff_user_id
		WHERE m.tenant_id = $1 AND m.account_id = $2 AND m.thread_id = ANY ($3)
		ORDER BY m.created_at, m.id`, tenantID, accountID, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("message: conversations: %w", err)
	}
	out := make([]Conversation, len(threads))
	at := make(map[int64]int, len(threads))
	for i, t := range threads {
		out[i].Thread, at[t.ID] = t, i
	}
	for _, m := range ms {
		out[at[m.ThreadID]].Messages = append(out[at[m.ThreadID]].Messages, m)
	}
	return out, nil
}

// MarkRepliesRead records that the resident has seen the service's
// replies (they are shown on the Contact page).
func (s *Service) MarkRepliesRead(ctx context.Context, tenantID, accountID int64) error {
	if _, err := s.DB.ExecContext(ctx, `UPDATE messages SET read_at = $3
		WHERE tenant_id = $1 AND account_id = $2 AND direction = 'staff' AND read_at IS NULL`, tenantID, accountID, s.now()); err != nil {
		return fmt.Errorf("message: replies read: %w", err)
	}
	return nil
}

// cleanBody normalises a reply: LF line ends, trimmed, bounded.
func cleanBody(body string) (string, error) {
	if !utf8.ValidString(body) || strings.ContainsRune(body, 0) {
		return "", ErrInvalidText
	}
	body = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n"))
	if body == "" {
		return "", ErrEmptyBody
	}
	if utf8.RuneCountInString(body) > MaxBodyLength {
		return "", ErrBodyTooLong
	}
	return body, nil
}

// Reply stores staff member staffID's answer in thread threadID of
// commune t, marks the resident's messages read, and emails the answer to
// the resident (sent once the transaction commits), all audited.
func (s *Service) Reply(ctx context.Context, t *tenant.Tenant, threadID, staffID int64, body string) (int64, error) {
	body, err := cleanBody(body)
	if err != nil {
		return 0, err
	}
	now := s.now()
	var id int64
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		th, err := getThread(ctx, tx, t.ID, threadID, " FOR NO KEY UPDATE OF t")
		if err != nil {
			return err
		}
		var author string
		if err := tx.GetContext(ctx, &author, `SELECT name FROM staff_users WHERE id = $1`, staffID); err != nil {
			return fmt.Errorf("message: author: %w", err)
		}
		if err := tx.GetContext(ctx, &id, `INSERT INTO messages (tenant_id, account_id, thread_id, direction, subject, body, created_at, staff_user_id)
			VALUES ($1, $2, $3, 'staff', $4, $5, $6, $7) RETURNING id`, t.ID, th.AccountID, th.ID, th.Subject, body, now, staffID); err != nil {
			return fmt.Errorf("message: reply: %w", err)
		}
		if err := markRead(ctx, tx, t.ID, th.ID, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE message_threads SET last_message_at = $3 WHERE tenant_id = $1 AND id = $2`, t.ID, th.ID, now); err != nil {
			return fmt.Errorf("message: reply: %w", err)
		}
		if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
			TenantID: t.ID, To: th.PayerEmail, ReplyTo: t.ContactEmail, Template: ReplyTemplate,
			Data: map[string]any{
				"DisplayName": th.PayerName, "Subject": th.Subject, "Body": body, "Author": author,
				"ContactLink": s.Links(t, "/contact"), "At": now,
			},
		}); err != nil {
			return fmt.Errorf("message: reply email: %w", err)
		}
		return audit.Record(ctx, tx, t.ID, "message.reply", audit.Of(audit.ObjectMessage, id),
			map[string]any{"thread_id": th.ID, "account_id": th.AccountID})
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

func markRead(ctx context.Context, tx *sqlx.Tx, tenantID, threadID int64, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET read_at = $3
		WHERE tenant_id = $1 AND thread_id = $2 AND direction = 'resident' AND read_at IS NULL`, tenantID, threadID, at); err != nil {
		return fmt.Errorf("message: read: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE message_threads SET unread = 0 WHERE tenant_id = $1 AND id = $2`, tenantID, threadID); err != nil {
		return fmt.Errorf("message: read: %w", err)
	}
	return nil
}

// MarkRead marks the resident's messages of a thread read (read) or the
// last one unread again (!read), audited.
func (s *Service) MarkRead(ctx context.Context, tenantID, threadID int64, read bool) error {
	now := s.now()
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		th, err := getThread(ctx, tx, tenantID, threadID, " FOR NO KEY UPDATE OF t")
		if err != nil {
			return err
		}
		action := "message.thread.read"
		if read {
			if err := markRead(ctx, tx, tenantID, th.ID, now); err != nil {
				return err
			}
		} else {
			action = "message.thread.unread"
			_, err := tx.ExecContext(ctx, `UPDATE messages SET read_at = NULL WHERE tenant_id = $1 AND id = (
				SELECT id FROM messages WHERE tenant_id = $1 AND thread_id = $2 AND direction = 'resident'
				ORDER BY created_at DESC, id DESC LIMIT 1)`, tenantID, th.ID)
			if err != nil {
				return fmt.Errorf("message: unread: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE message_threads SET unread = (SELECT count(*) FROM messages
				WHERE tenant_id = $1 AND thread_id = $2 AND direction = 'resident' AND read_at IS NULL)
				WHERE tenant_id = $1 AND id = $2`, tenantID, th.ID); err != nil {
				return fmt.Errorf("message: unread: %w", err)
			}
		}
		return audit.Record(ctx, tx, tenantID, action, threadObject(th.ID), nil)
	})
}

// SetStatus opens or closes a thread, audited. Setting its current status
// again changes nothing.
func (s *Service) SetStatus(ctx context.Context, tenantID, threadID int64, status string) error {
	if status != StatusOpen && status != StatusClosed {
		return fmt.Errorf("message: unknown status %q", status)
	}
	now := s.now()
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		th, err := getThread(ctx, tx, tenantID, threadID, " FOR NO KEY UPDATE OF t")
		if err != nil {
			return err
		}
		if th.Status == status {
			return nil
		}
		var closedAt any
		if status == StatusClosed {
			closedAt = now
		}
		if _, err := tx.ExecContext(ctx, `UPDATE message_threads SET status = $3, closed_at = $4 WHERE tenant_id = $1 AND id = $2`,
			tenantID, th.ID, status, closedAt); err != nil {
			return fmt.Errorf("message: status: %w", err)
		}
		return audit.Record(ctx, tx, tenantID, "message.thread."+status, threadObject(th.ID), nil)
	})
}

// threadObject names a thread in the audit trail.
func threadObject(id int64) audit.Object { return audit.Of(ObjectThread, id) }

// ObjectThread is the audit object type of a thread.
const ObjectThread = "message_thread"
