package staff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/auth"
)

// staffSessions is where staff sessions live, apart from residents'.
var staffSessions = auth.SessionTable{Table: "staff_sessions", Principal: "staff_user_id"}

// Default session lifetimes: shorter than residents' (an agent's screen
// left open at the town hall).
const (
	DefaultSessionIdle     = 15 * time.Minute
	DefaultSessionAbsolute = 8 * time.Hour
)

// Sessions stores staff sessions, each bound to the commune of the host it
// was opened on.
type Sessions struct {
	DB              *sqlx.DB
	IdleTimeout     time.Duration    // default DefaultSessionIdle
	AbsoluteTimeout time.Duration    // default DefaultSessionAbsolute
	Now             func() time.Time // nil: time.Now
}

func (s *Sessions) store() *auth.SessionStore {
	idle, absolute := s.IdleTimeout, s.AbsoluteTimeout
	if idle <= 0 {
		idle = DefaultSessionIdle
	}
	if absolute <= 0 {
		absolute = DefaultSessionAbsolute
	}
	return &auth.SessionStore{DB: s.DB, Table: staffSessions, IdleTimeout: idle, AbsoluteTimeout: absolute, Now: s.Now}
}

// Stage is how far a session got through the login.
type Stage int

// Stages of a session.
const (
	// StageSecondFactor: the password was right, the TOTP (or a recovery
	// code) is still due; nothing else may be done.
	StageSecondFactor Stage = iota + 1
	// StageEnrol: an administrator without a second factor must enrol
	// one before anything else.
	StageEnrol
	// StageReady: the member may use what their role allows.
	StageReady
)

// Session is a staff member's session with what every request needs: the
// user, and their role and membership in this commune, as read in the
// same query.
type Session struct {
	Member
	OpenedAt       time.Time
	LastSeenAt     time.Time
	SecondFactorAt *time.Time
	Flags          map[string]string
}

// Stage tells what the session may do now.
func (s *Session) Stage() Stage { return s.Member.stage(s.SecondFactorAt != nil) }

// StageAfterLogin is the stage of a session the member opens now, having
// given their second factor or not.
func (m *Member) StageAfterLogin(secondFactor bool) Stage { return m.stage(secondFactor) }

func (m *Member) stage(secondFactor bool) Stage {
	switch {
	case m.TOTPEnrolled && !secondFactor:
		return StageSecondFactor
	case m.Role == RoleAdmin && !m.TOTPEnrolled:
		return StageEnrol
	}
	return StageReady
}

// Create opens a session of the member in the commune (call it at every
// login: a new id each time); secondFactor says the second factor was
// given. It returns the raw id for the cookie.
func (s *Sessions) Create(ctx context.Context, tenantID, userID int64, secondFactor bool) (string, error) {
	raw, sess, err := s.store().Create(ctx, tenantID, userID)
	if err != nil {
		return "", err
	}
	if secondFactor {
		h, _ := auth.IDHash(raw)
		if _, err := s.DB.ExecContext(ctx, `UPDATE staff_sessions SET second_factor_at = $3
			WHERE tenant_id = $1 AND id_hash = $2`, tenantID, h, sess.CreatedAt); err != nil {
			return "", fmt.Errorf("staff: session second factor: %w", err)
		}
	}
	return raw, nil
}

// Elevate replaces a session whose member just gave their second factor
// by a new one (a new id, as at any change of privilege) marked with it,
// and returns the new raw id.
func (s *Sessions) Elevate(ctx context.Context, tenantID, userID int64, oldRawID string) (string, error) {
	raw, err := s.Create(ctx, tenantID, userID, true)
	if err != nil {
		return "", err
	}
	if err := s.store().Delete(ctx, tenantID, oldRawID); err != nil {
		return "", err
	}
	return raw, nil
}

// Load returns the session of this commune with this raw id, with its
// member as they are now, or auth.ErrSessionNotFound when unknown, of
// another commune, idle or too old, or when the user or their membership
// here is disabled (the session is then deleted). One query reads the
// session, the user and the membership: no cache, so that a role change
// or a deactivation is seen by the very next request on every instance.
func (s *Sessions) Load(ctx context.Context, tenantID int64, rawID string) (*Session, error) {
	h, ok := auth.IDHash(rawID)
	if !ok {
		return nil, auth.ErrSessionNotFound
	}
	var row struct {
		Member
		SessionCreatedAt time.Time  `db:"session_created_at"`
		LastSeenAt       time.Time  `db:"last_seen_at"`
		SecondFactorAt   *time.Time `db:"second_factor_at"`
		Flags            []byte     `db:"flags"`
	}
	err := s.DB.GetContext(ctx, &row, `SELECT s.created_at AS session_created_at, s.last_seen_at, s.second_factor_at, s.flags,
		`+memberColumns+`
		FROM staff_sessions s
		JOIN staff_memberships m ON m.tenant_id = s.tenant_id AND m.staff_user_id = s.staff_user_id
		JOIN staff_users u ON u.id = s.staff_user_id
		WHERE s.tenant_id = $1 AND s.id_hash = $2`, tenantID, h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrSessionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("staff: load session: %w", err)
	}
	common := &auth.Session{TenantID: tenantID, PrincipalID: row.ID, CreatedAt: row.SessionCreatedAt, LastSeenAt: row.LastSeenAt}
	if err := s.store().Admit(ctx, h, common, row.Flags, row.Member.Active()); err != nil {
		return nil, err
	}
	return &Session{Member: row.Member, OpenedAt: common.CreatedAt, LastSeenAt: common.LastSeenAt,
		SecondFactorAt: row.SecondFactorAt, Flags: common.Flags}, nil
}

// Delete ends a session (logout). Unknown ids are not an error.
func (s *Sessions) Delete(ctx context.Context, tenantID int64, rawID string) error {
	return s.store().Delete(ctx, tenantID, rawID)
}

// SetFlag stores a small per-session value (a one-shot message, the
// secret of an enrolment in progress).
func (s *Sessions) SetFlag(ctx context.Context, tenantID int64, rawID, key, value string) error {
	return s.store().SetFlag(ctx, tenantID, rawID, key, value)
}

// Purge deletes idle and too old sessions (run it periodically).
func (s *Sessions) Purge(ctx context.Context) (int64, error) {
	return s.store().Purge(ctx)
}

// endSessions ends the user's sessions in every commune but exceptRawID
// (empty: all), through x: after a password change or reset, or when the
// user is disabled.
func endSessions(ctx context.Context, x sqlx.ExecerContext, userID int64, exceptRawID string) error {
	var except []byte
	if exceptRawID != "" {
		except = auth.Hash(exceptRawID)
	}
	if _, err := x.ExecContext(ctx, `DELETE FROM staff_sessions WHERE staff_user_id = $1
		AND ($2::bytea IS NULL OR id_hash <> $2)`, userID, except); err != nil {
		return fmt.Errorf("staff: end sessions: %w", err)
	}
	return nil
}
