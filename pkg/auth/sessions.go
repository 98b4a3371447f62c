package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// touchEvery spares a write per request: last_seen_at moves at most once a
// minute, so the idle timeout is precise to a minute.
const touchEvery = time.Minute

// maxFlagLen bounds session flags (a session row is read at every request;
// flags hold one-shot messages shown on the next page).
const maxFlagLen = 1024

// SessionTable says where a principal's sessions live: a table with
// tenant_id, id_hash, the principal's id column, created_at, last_seen_at
// and flags (jsonb), keyed by (tenant_id, id_hash). Code constants only.
type SessionTable struct {
	Table     string // e.g. "sessions"
	Principal string // e.g. "account_id"
}

// SessionStore keeps server-side sessions of one kind of principal, bound
// to a commune: a session is looked up by (tenant, SHA-256 of its id), so
// it is void on another commune's host. Any app instance can load a
// session created by another.
//
// Loading is the principal's own query (a resident's session comes with
// its account, a staff session with the user and the membership, in one
// read); Admit then applies the timeouts.
type SessionStore struct {
	DB              *sqlx.DB
	Table           SessionTable
	IdleTimeout     time.Duration // required
	AbsoluteTimeout time.Duration // required
	Now             func() time.Time
}

// Session is the common part of a loaded session.
type Session struct {
	TenantID    int64
	PrincipalID int64
	CreatedAt   time.Time
	LastSeenAt  time.Time
	Flags       map[string]string
}

func (s *SessionStore) now() time.Time { return Clock(s.Now) }

// IDHash is the stored form of a raw session id; ok is false for anything
// NewSecret could not have made.
func IDHash(raw string) (hash []byte, ok bool) {
	if !WellFormed(raw, TokenBytes) {
		return nil, false
	}
	return Hash(raw), true
}

// Create starts a session (call it at every login: a new id each time) and
// returns the raw id for the cookie; only its SHA-256 is stored.
func (s *SessionStore) Create(ctx context.Context, tenantID, principalID int64) (string, *Session, error) {
	raw, err := NewSecret(TokenBytes)
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO `+s.Table.Table+` (tenant_id, id_hash, `+s.Table.Principal+`, created_at, last_seen_at)
		VALUES ($1, $2, $3, $4, $4)`, tenantID, Hash(raw), principalID, now); err != nil {
		return "", nil, fmt.Errorf("auth: create session: %w", err)
	}
	return raw, &Session{TenantID: tenantID, PrincipalID: principalID, CreatedAt: now, LastSeenAt: now, Flags: map[string]string{}}, nil
}

// Admit finishes loading sess (read by the principal's query, with the
// SHA-256 idHash): a session past its idle or absolute timeout, or whose
// principal may no longer use it (allowed false: an account disabled, a
// membership revoked), is deleted and ErrSessionNotFound returned; a live
// one is touched at most once a minute. flags is the jsonb column as read.
func (s *SessionStore) Admit(ctx context.Context, idHash []byte, sess *Session, flags []byte, allowed bool) error {
	now := s.now()
	if !allowed || !now.Before(sess.CreatedAt.Add(s.AbsoluteTimeout)) || !now.Before(sess.LastSeenAt.Add(s.IdleTimeout)) {
		if _, err := s.DB.ExecContext(ctx, `DELETE FROM `+s.Table.Table+` WHERE tenant_id = $1 AND id_hash = $2`, sess.TenantID, idHash); err != nil {
			return fmt.Errorf("auth: delete expired session: %w", err)
		}
		return ErrSessionNotFound
	}
	sess.Flags = map[string]string{}
	if len(flags) > 0 {
		if err := json.Unmarshal(flags, &sess.Flags); err != nil {
			return fmt.Errorf("auth: session flags: %w", err)
		}
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		if _, err := s.DB.ExecContext(ctx, `UPDATE `+s.Table.Table+` SET last_seen_at = $3
			WHERE tenant_id = $1 AND id_hash = $2`, sess.TenantID, idHash, now); err != nil {
			return fmt.Errorf("auth: touch session: %w", err)
		}
		sess.LastSeenAt = now
	}
	return nil
}

// Delete ends a session (logout). Unknown ids are not an error.
func (s *SessionStore) Delete(ctx context.Context, tenantID int64, rawID string) error {
	h, ok := IDHash(rawID)
	if !ok {
		return nil
	}
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM `+s.Table.Table+` WHERE tenant_id = $1 AND id_hash = $2`, tenantID, h); err != nil {
		return fmt.Errorf("auth: delete session: %w", err)
	}
	return nil
}

// DeleteAllFor ends every session of the principal in the commune but
// exceptRawID (empty: all of them), through x (a transaction or the DB),
// and returns how many ended.
func (s *SessionStore) DeleteAllFor(ctx context.Context, x sqlx.ExecerContext, tenantID, principalID int64, exceptRawID string) (int64, error) {
	var except []byte
	if exceptRawID != "" {
		except = Hash(exceptRawID)
	}
	res, err := x.ExecContext(ctx, `DELETE FROM `+s.Table.Table+` WHERE tenant_id = $1 AND `+s.Table.Principal+` = $2
		AND ($3::bytea IS NULL OR id_hash <> $3)`, tenantID, principalID, except)
	if err != nil {
		return 0, fmt.Errorf("auth: delete sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// SetFlag stores a small per-session value, such as "flash" = "…".
func (s *SessionStore) SetFlag(ctx context.Context, tenantID int64, rawID, key, value string) error {
	if key == "" || len(key) > maxFlagLen || len(value) > maxFlagLen {
		return errors.New("auth: session flag key or value too long")
	}
	h, ok := IDHash(rawID)
	if !ok {
		return ErrSessionNotFound
	}
	res, err := s.DB.ExecContext(ctx, `UPDATE `+s.Table.Table+` SET flags = flags || jsonb_build_object($3::text, $4::text)
		WHERE tenant_id = $1 AND id_hash = $2`, tenantID, h, key, value)
	if err != nil {
		return fmt.Errorf("auth: set session flag: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrSessionNotFound
	}
	return nil
}

// Purge deletes idle and too old sessions of every commune (run it
// periodically).
func (s *SessionStore) Purge(ctx context.Context) (int64, error) {
	now := s.now()
	res, err := s.DB.ExecContext(ctx, `DELETE FROM `+s.Table.Table+` WHERE last_seen_at <= $1 OR created_at <= $2`,
		now.Add(-s.IdleTimeout), now.Add(-s.AbsoluteTimeout))
	if err != nil {
		return 0, fmt.Errorf("auth: purge sessions: %w", err)
	}
	return res.RowsAffected()
}
