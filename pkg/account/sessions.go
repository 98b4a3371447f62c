package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/auth"
)

// residentSessions is where residents' sessions live.
var residentSessions = auth.SessionTable{Table: "sessions", Principal: "account_id"}

// Sessions stores residents' server-side sessions (auth.SessionStore on
// the sessions table). Any app instance can load a session created by
// another.
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

func (s *Sessions) store() *auth.SessionStore {
	idle, absolute := s.IdleTimeout, s.AbsoluteTimeout
	if idle <= 0 {
		idle = 30 * time.Minute
	}
	if absolute <= 0 {
		absolute = 12 * time.Hour
	}
	return &auth.SessionStore{DB: s.DB, Table: residentSessions, IdleTimeout: idle, AbsoluteTimeout: absolute, Now: s.Now}
}

// Create starts a session for the account (call it at every login: a new
// id each time) and returns the raw id for the cookie; only its SHA-256 is
// stored.
func (s *Sessions) Create(ctx context.Context, tenantID, accountID int64) (string, *Session, error) {
	raw, sess, err := s.store().Create(ctx, tenantID, accountID)
	if err != nil {
		return "", nil, err
	}
	return raw, &Session{TenantID: tenantID, AccountID: accountID, CreatedAt: sess.CreatedAt,
		LastSeenAt: sess.LastSeenAt, Flags: sess.Flags}, nil
}

// Load returns the session of this tenant with this raw id, or
// ErrSessionNotFound when unknown, of another tenant, idle or too old, or
// when the account is no longer active.
func (s *Sessions) Load(ctx context.Context, tenantID int64, rawID string) (*Session, error) {
	h, ok := auth.IDHash(rawID)
	if !ok {
		return nil, ErrSessionNotFound
	}
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
	common := &auth.Session{TenantID: tenantID, PrincipalID: row.ID, CreatedAt: row.SessionCreatedAt, LastSeenAt: row.LastSeenAt}
	if err := s.store().Admit(ctx, h, common, row.Flags, row.Status == StatusActive); err != nil {
		return nil, err
	}
	account := row.Account
	return &Session{TenantID: tenantID, AccountID: account.ID, Account: &account,
		CreatedAt: common.CreatedAt, LastSeenAt: common.LastSeenAt, Flags: common.Flags}, nil
}

// Delete ends a session (logout). Unknown ids are not an error.
func (s *Sessions) Delete(ctx context.Context, tenantID int64, rawID string) error {
	return s.store().Delete(ctx, tenantID, rawID)
}

// DeleteAllForAccount ends every session of the account but exceptRawID
// (empty: all of them).
func (s *Sessions) DeleteAllForAccount(ctx context.Context, tenantID, accountID int64, exceptRawID string) error {
	_, err := s.store().DeleteAllFor(ctx, s.DB, tenantID, accountID, exceptRawID)
	return err
}

// deleteSessions ends the account's sessions but exceptRawID in tx.
func deleteSessions(ctx context.Context, x sqlx.ExecerContext, tenantID, accountID int64, exceptRawID string) (int64, error) {
	return (&auth.SessionStore{Table: residentSessions}).DeleteAllFor(ctx, x, tenantID, accountID, exceptRawID)
}

// SetFlag stores a small per-session value, such as "notice_closed" = "1".
func (s *Sessions) SetFlag(ctx context.Context, tenantID int64, rawID, key, value string) error {
	return s.store().SetFlag(ctx, tenantID, rawID, key, value)
}

// Purge deletes idle and too old sessions (run it periodically).
func (s *Sessions) Purge(ctx context.Context) (int64, error) {
	return s.store().Purge(ctx)
}
