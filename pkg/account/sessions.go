package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// sessionBytes: 256-bit session ids (the floor is 128).
const sessionBytes = 32

// touchEvery spares a write per request: last_seen_at moves at most once a
// minute, so the idle timeout is precise to a minute.
const touchEvery = time.Minute

// Sessions stores residents' server-side sessions. Any app instance can
// load a session created by another.
type Sessions struct {
	DB              *sqlx.DB
	IdleTimeout     time.Duration    // default 30 min
	AbsoluteTimeout time.Duration    // default 12 h
	Now             func() time.Time // nil: time.Now
}

// Session is a logged-in resident's session.
type Session struct {
	TenantID   int64
	AccountID  int64
	Account    *Account // as loaded with the session
	CreatedAt  time.Time
	LastSeenAt time.Time
	Flags      map[string]string
}

// now is truncated to PostgreSQL's precision (microseconds, rounded on
// store): otherwise a row written with now can compare as a fraction of a
// microsecond in the future when read back.
func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now().Truncate(time.Microsecond)
	}
	return time.Now().Truncate(time.Microsecond)
}

func (s *Sessions) idle() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 30 * time.Minute
}

func (s *Sessions) absolute() time.Duration {
	if s.AbsoluteTimeout > 0 {
		return s.AbsoluteTimeout
	}
	return 12 * time.Hour
}

// Create starts a session for the account (call it at every login: a new
// id each time) and returns the raw id for the cookie; only its SHA-256 is
// stored.
func (s *Sessions) Create(ctx context.Context, tenantID, accountID int64) (string, *Session, error) {
	raw, err := newSecret(sessionBytes)
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO sessions (tenant_id, id_hash, account_id, created_at, last_seen_at)
		VALUES ($1, $2, $3, $4, $4)`, tenantID, sha(raw), accountID, now); err != nil {
		return "", nil, fmt.Errorf("account: create session: %w", err)
	}
	return raw, &Session{TenantID: tenantID, AccountID: accountID, CreatedAt: now, LastSeenAt: now, Flags: map[string]string{}}, nil
}

// Load returns the session of this tenant with this raw id, or
// ErrSessionNotFound when unknown, of another tenant, idle or too old, or
// when the account is no longer active.
func (s *Sessions) Load(ctx context.Context, tenantID int64, rawID string) (*Session, error) {
	if !wellFormed(rawID, sessionBytes) {
		return nil, ErrSessionNotFound
	}
	h := sha(rawID)
	// One query gives the session and its account: every page needs both.
	var row struct {
		Account
		SessionCreatedAt time.Time `db:"session_created_at"`
		LastSeenAt       time.Time `db:"last_seen_at"`
		Flags            []byte    `db:"flags"`
	}
	err := s.DB.GetContext(ctx, &row, `SELECT s.created_at AS session_created_at, s.last_seen_at, s.flags, `+
		prefixedAccountColumns+`
		FROM sessions s JOIN accounts a ON a.tenant_id = s.tenant_id AND a.id = s.account_id
		WHERE s.tenant_id = $1 AND s.id_hash = $2`, tenantID, h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrSessionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: load session: %w", err)
	}
	now := s.now()
	if row.Status != StatusActive || !now.Before(row.SessionCreatedAt.Add(s.absolute())) || !now.Before(row.LastSeenAt.Add(s.idle())) {
		if _, err := s.DB.ExecContext(ctx, `DELETE FROM sessions WHERE tenant_id = $1 AND id_hash = $2`, tenantID, h); err != nil {
			return nil, fmt.Errorf("account: delete expired session: %w", err)
		}
		return nil, ErrSessionNotFound
	}
	account := row.Account
	sess := &Session{TenantID: tenantID, AccountID: account.ID, Account: &account,
		CreatedAt: row.SessionCreatedAt, LastSeenAt: row.LastSeenAt, Flags: map[string]string{}}
	if err := json.Unmarshal(row.Flags, &sess.Flags); err != nil {
		return nil, fmt.Errorf("account: session flags: %w", err)
	}
	if now.Sub(row.LastSeenAt) >= touchEvery {
		if _, err := s.DB.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $3
			WHERE tenant_id = $1 AND id_hash = $2`, tenantID, h, now); err != nil {
			return nil, fmt.Errorf("account: touch session: %w", err)
		}
		sess.LastSeenAt = now
	}
	return sess, nil
}

// Delete ends a session (logout). Unknown ids are not an error.
func (s *Sessions) Delete(ctx context.Context, tenantID int64, rawID string) error {
	if !wellFormed(rawID, sessionBytes) {
		return nil
	}
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM sessions WHERE tenant_id = $1 AND id_hash = $2`, tenantID, sha(rawID)); err != nil {
		return fmt.Errorf("account: delete session: %w", err)
	}
	return nil
}

// DeleteAllForAccount ends every session of the account but exceptRawID
// (empty: all of them).
func (s *Sessions) DeleteAllForAccount(ctx context.Context, tenantID, accountID int64, exceptRawID string) error {
	return deleteSessions(ctx, s.DB, tenantID, accountID, exceptRawID)
}

func deleteSessions(ctx context.Context, x sqlx.ExecerContext, tenantID, accountID int64, exceptRawID string) error {
	var except []byte
	if exceptRawID != "" {
		except = sha(exceptRawID)
	}
	if _, err := x.ExecContext(ctx, `DELETE FROM sessions WHERE tenant_id = $1 AND account_id = $2
		AND ($3::bytea IS NULL OR id_hash <> $3)`, tenantID, accountID, except); err != nil {
		return fmt.Errorf("account: delete sessions: %w", err)
	}
	return nil
}

// Flag keys and values are short (a session row is read at every request).
const maxFlagLen = 1024 // flags hold one-shot messages shown on the next page

// SetFlag stores a small per-session value, such as "notice_closed" = "1".
func (s *Sessions) SetFlag(ctx context.Context, tenantID int64, rawID, key, value string) error {
	if key == "" || len(key) > maxFlagLen || len(value) > maxFlagLen {
		return errors.New("account: session flag key or value too long")
	}
	if !wellFormed(rawID, sessionBytes) {
		return ErrSessionNotFound
	}
	res, err := s.DB.ExecContext(ctx, `UPDATE sessions SET flags = flags || jsonb_build_object($3::text, $4::text)
		WHERE tenant_id = $1 AND id_hash = $2`, tenantID, sha(rawID), key, value)
	if err != nil {
		return fmt.Errorf("account: set session flag: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrSessionNotFound
	}
	return nil
}

// Purge deletes idle and too old sessions (run it periodically).
func (s *Sessions) Purge(ctx context.Context) (int64, error) {
	now := s.now()
	res, err := s.DB.ExecContext(ctx, `DELETE FROM sessions WHERE last_seen_at <= $1 OR created_at <= $2`,
		now.Add(-s.idle()), now.Add(-s.absolute()))
	if err != nil {
		return 0, fmt.Errorf("account: purge sessions: %w", err)
	}
	return res.RowsAffected()
}
