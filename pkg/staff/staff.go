// Package staff is the communes' staff: staff users (one per person, for
// the whole platform), their memberships (a role in a commune: the role
// assignments Casbin's policy is applied to), passwords, the TOTP second
// factor and its recovery codes, invitations, password resets and
// sessions. It is built on pkg/auth, as residents are, on tables of its
// own.
//
// Every operation takes the commune resolved from the request's host (or
// the command line's --tenant), never one from input. What a person may do
// in a commune is read from their membership at every request (see
// Sessions.Load): a role change or a deactivation takes effect at once.
package staff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// Roles, as in configs/rbac_policy.csv.
const (
	RoleAdmin  = "admin"
	RoleAgent  = "agent"
	RoleViewer = "viewer"
)

// Roles lists the roles a membership may hold.
func Roles() []string { return []string{RoleAdmin, RoleAgent, RoleViewer} }

// ValidRole tells whether r is a role.
func ValidRole(r string) bool { return slices.Contains(Roles(), r) }

// RoleLabel is the role as staff read it.
func RoleLabel(r string) string {
	switch r {
	case RoleAdmin:
		return "Administrateur"
	case RoleAgent:
		return "Agent"
	case RoleViewer:
		return "Lecteur"
	}
	return r
}

// Statuses of users and memberships.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// PasswordFloor is the staff's minimum password length; a commune's own
// minimum applies when higher.
const PasswordFloor = 12

// Errors of the package; handlers map them to French messages.
var (
	ErrNotFound           = errors.New("staff: not found")
	ErrInvalidCredentials = errors.New("staff: invalid email or password")
	ErrWrongPassword      = errors.New("staff: wrong current password")
	ErrInvalidCode        = errors.New("staff: invalid or already used second-factor code")
	ErrTokenInvalid       = errors.New("staff: link unknown, used or expired")
	ErrAlreadyMember      = errors.New("staff: already a member of this commune")
	ErrInvalidEmail       = errors.New("staff: invalid email address")
	ErrInvalidRole        = errors.New("staff: unknown role")
	ErrInvalidName        = errors.New("staff: a name of 1 to 200 characters is required")
	ErrAlreadyEnrolled    = errors.New("staff: a second factor is already enrolled")
	ErrNotEnrolled        = errors.New("staff: no second factor enrolled")
	ErrAdminNeedsTOTP     = errors.New("staff: an administrator must keep a second factor")
	ErrLastAdmin          = errors.New("staff: the commune's last active administrator")
	ErrTooManyRequests    = errors.New("staff: too many requests")
)

// User is a staff user (never their password hash or TOTP secret).
type User struct {
	ID           int64      `db:"id"`
	Email        string     `db:"email"`
	Name         string     `db:"name"`
	Status       string     `db:"status"`
	TOTPEnrolled bool       `db:"totp_enrolled"`
	CreatedAt    time.Time  `db:"created_at"`
	LastLoginAt  *time.Time `db:"last_login_at"`
}

const userColumns = `u.id, u.email, u.name, u.status, u.totp_enrolled_at IS NOT NULL AS totp_enrolled,
	u.created_at, u.last_login_at`

// Member is a staff user as a member of one commune.
type Member struct {
	User
	TenantID         int64     `db:"tenant_id"`
	Role             string    `db:"role"`
	MembershipStatus string    `db:"membership_status"`
	JoinedAt         time.Time `db:"joined_at"`
}

// Active tells whether the member may work in the commune now.
func (m *Member) Active() bool {
	return m.Status == StatusActive && m.MembershipStatus == StatusActive
}

const memberColumns = userColumns + `, m.tenant_id, m.role, m.status AS membership_status, m.created_at AS joined_at`

// Limits tunes lifetimes and rate limits; zero fields take the defaults.
type Limits struct {
	InvitationTTL     time.Duration // default and maximum 72h
	ResetTTL          time.Duration // default and maximum 1h
	ResetPerHour      int           // per email, default 5
	ResetPerHourPerIP int           // default 30
}

func (l Limits) withDefaults() Limits {
	capDur := func(v, def time.Duration) time.Duration {
		if v <= 0 {
			return def
		}
		return min(v, def)
	}
	orInt := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	l.InvitationTTL = capDur(l.InvitationTTL, 72*time.Hour)
	l.ResetTTL = capDur(l.ResetTTL, time.Hour)
	l.ResetPerHour = orInt(l.ResetPerHour, 5)
	l.ResetPerHourPerIP = orInt(l.ResetPerHourPerIP, 30)
	return l
}

// Service runs the staff's operations. The screens and the command line
// use the same one.
type Service struct {
	DB     *sqlx.DB
	Hasher *auth.Hasher
	Outbox *mail.Outbox
	// Links builds an absolute URL on the commune's primary host (never
	// from the request's Host header).
	Links  func(t *tenant.Tenant, path string) string
	Now    func() time.Time // nil: time.Now
	Limits Limits
}

// now is truncated to PostgreSQL's precision (see auth.Clock).
func (s *Service) now() time.Time { return auth.Clock(s.Now) }

func (s *Service) limits() Limits { return s.Limits.withDefaults() }

// staffThrottle is where staff count their login and second-factor
// failures, apart from residents.
var staffThrottle = auth.ThrottleKinds{Principal: "staff", IP: "staff_ip"}

func (s *Service) throttle() *auth.Throttle {
	return &auth.Throttle{DB: s.DB, Kinds: staffThrottle, Now: s.Now}
}

func (s *Service) link(t *tenant.Tenant, path string) (string, error) {
	if s.Links == nil {
		return "", errors.New("staff: Service.Links is not set")
	}
	return s.Links(t, path), nil
}

// minPasswordLength is the staff's minimum in commune t.
func minPasswordLength(t *tenant.Tenant) int { return max(PasswordFloor, t.PasswordMinLength) }

// CheckPassword applies the staff's password policy in commune t: at least
// 12 characters (or the commune's minimum), not common, not containing the
// commune's name, the email or the name. The error is an
// *auth.PolicyError with a French message.
func CheckPassword(t *tenant.Tenant, password, email, name string) error {
	return auth.CheckPassword(password, minPasswordLength(t), t.Name, email, name)
}

// asStaff is ctx with the user as the actor, keeping the client IP: a
// staff member's own operations are theirs whoever set ctx.
func asStaff(ctx context.Context, userID int64) context.Context {
	return audit.As(ctx, audit.KindStaff, userID)
}

func userObject(id int64) audit.Object {
	if id == 0 {
		return audit.Object{}
	}
	return audit.Of(audit.ObjectStaffUser, id)
}

// Member returns the member of the commune with this user id (any status),
// or ErrNotFound.
func (s *Service) Member(ctx context.Context, tenantID, userID int64) (*Member, error) {
	return getMember(ctx, s.DB, `m.tenant_id = $1 AND m.staff_user_id = $2`, tenantID, userID)
}

// MemberByEmail returns the member of the commune with this email (any
// status), or ErrNotFound.
func (s *Service) MemberByEmail(ctx context.Context, tenantID int64, email string) (*Member, error) {
	return getMember(ctx, s.DB, `m.tenant_id = $1 AND u.email = $2`, tenantID, auth.NormalizeEmail(email))
}

func getMember(ctx context.Context, q sqlx.QueryerContext, where string, args ...any) (*Member, error) {
	var m Member
	err := sqlx.GetContext(ctx, q, &m, `SELECT `+memberColumns+`
		FROM staff_memberships m JOIN staff_users u ON u.id = m.staff_user_id WHERE `+where, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("staff: member: %w", err)
	}
	return &m, nil
}

// Members lists the commune's members, active ones first, by name.
func (s *Service) Members(ctx context.Context, tenantID int64) ([]Member, error) {
	ms := []Member{}
	if err := s.DB.SelectContext(ctx, &ms, `SELECT `+memberColumns+`
		FROM staff_memberships m JOIN staff_users u ON u.id = m.staff_user_id
		WHERE m.tenant_id = $1
		ORDER BY (m.status = 'active' AND u.status = 'active') DESC, u.name, u.id`, tenantID); err != nil {
		return nil, fmt.Errorf("staff: members: %w", err)
	}
	return ms, nil
}
