package staff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/metrics"
	"portail/pkg/tenant"
)

// credentials is a user's row with what checks need.
type credentials struct {
	User
	PasswordHash string `db:"password_hash"`
	// The membership in the commune of the request, if any.
	Role             sql.NullString `db:"role"`
	MembershipStatus sql.NullString `db:"membership_status"`
}

func (c *credentials) member(tenantID int64) *Member {
	return &Member{User: c.User, TenantID: tenantID, Role: c.Role.String, MembershipStatus: c.MembershipStatus.String}
}

// activeMember tells whether the user may work in the commune.
func (c *credentials) activeMember() bool {
	return c.Status == StatusActive && c.MembershipStatus.String == StatusActive
}

// loadCredentials reads the user matching where ($2 its argument) and
// their membership in tenantID ($1), if any.
func loadCredentials(ctx context.Context, q sqlx.QueryerContext, tenantID int64, where string, arg any) (*credentials, error) {
	var c credentials
	err := sqlx.GetContext(ctx, q, &c, `SELECT `+userColumns+`, u.password_hash, m.role, m.status AS membership_status
		FROM staff_users u
		LEFT JOIN staff_memberships m ON m.tenant_id = $1 AND m.staff_user_id = u.id
		WHERE `+where, tenantID, arg)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("staff: load user: %w", err)
	}
	return &c, nil
}

// checkPassword verifies password for principalKey (the normalized email)
// under the staff's throttling, and returns the user's row when it is
// right and the user may log in here (member requires an active
// membership in t; otherwise any active user). Unknown users, users of no
// membership here and wrong passwords are all ErrInvalidCredentials after
// one argon2 computation: only a member's password is ever checked on a
// commune's host, so a host where one is not a member is no oracle.
func (s *Service) checkPassword(ctx context.Context, t *tenant.Tenant, email, password, ip string, member bool) (*credentials, error) {
	wait, err := s.throttle().Reserve(ctx, t.ID, email, ip)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		return nil, &auth.ThrottledError{RetryAfter: wait}
	}
	c, err := loadCredentials(ctx, s.DB, t.ID, `u.email = $2`, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	eligible := c != nil && c.Status == StatusActive && (!member || c.activeMember())
	ok, rehash := false, false
	if eligible {
		if ok, rehash, err = s.Hasher.Verify(ctx, password, c.PasswordHash); err != nil {
			return nil, err
		}
	} else if err := s.Hasher.DummyVerify(ctx, password); err != nil {
		return nil, err
	}
	if !ok {
		var id int64
		if eligible {
			id = c.ID
		}
		if err := audit.Record(ctx, s.DB, t.ID, "staff.login.failed", userObject(id), map[string]any{"email": email}); err != nil {
			return nil, err
		}
		s.Metrics.LoginFailed(metrics.WhoStaff)
		return nil, ErrInvalidCredentials
	}
	if rehash {
		// Best effort, only if unchanged meanwhile: a failed rehash only
		// delays the upgrade.
		if h, err := s.Hasher.Hash(ctx, password); err == nil {
			s.DB.ExecContext(ctx, `UPDATE staff_users SET password_hash = $3 WHERE id = $1 AND password_hash = $2`, c.ID, c.PasswordHash, h)
		}
	}
	return c, nil
}

// Authenticate checks the email and password of a member of commune t.
// Unknown emails, wrong passwords, disabled users and people who are not
// active members of t all give ErrInvalidCredentials; too many failures
// give *auth.ThrottledError. The caller then opens a session: its Stage
// says whether the second factor is due, or its enrolment.
func (s *Service) Authenticate(ctx context.Context, t *tenant.Tenant, email, password, ip string) (*Member, error) {
	email = auth.NormalizeEmail(email)
	ctx = audit.WithActor(ctx, audit.Actor{Kind: audit.KindAnonymous, IP: ipOr(ctx, ip)})
	c, err := s.checkPassword(ctx, t, email, password, ip, true)
	if err != nil {
		return nil, err
	}
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := s.passwordRight(ctx, tx, t, c, ip); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE staff_users SET last_login_at = $2 WHERE id = $1`, c.ID, s.now()); err != nil {
			return fmt.Errorf("staff: last login: %w", err)
		}
		return audit.Record(asStaff(ctx, c.ID), tx, t.ID, "staff.login.password_ok", userObject(c.ID),
			map[string]any{"second_factor_due": c.TOTPEnrolled})
	})
	if err != nil {
		return nil, err
	}
	return c.member(t.ID), nil
}

// passwordRight settles the throttling of a right password: without a
// second factor the login is done and the counters start afresh; with one,
// only this attempt is taken back, and the failures of earlier codes stay
// counted until a right code clears them.
func (s *Service) passwordRight(ctx context.Context, x sqlx.ExecerContext, t *tenant.Tenant, c *credentials, ip string) error {
	if c.TOTPEnrolled {
		return s.throttle().Release(ctx, x, t.ID, c.Email, ip)
	}
	return s.throttle().Succeeded(ctx, x, t.ID, c.Email, ip)
}

// ipOr is ip, or the client IP of ctx when ip is empty.
func ipOr(ctx context.Context, ip string) string {
	if ip != "" {
		return ip
	}
	return audit.ActorFrom(ctx).IP
}

// ChangePassword replaces a member's password ("Mon profil"); the current
// one is required (throttled like a login). Every other session of the
// user, in every commune, ends; keepSessionID (raw) stays.
func (s *Service) ChangePassword(ctx context.Context, t *tenant.Tenant, userID int64, current, newPassword, keepSessionID string) error {
	ctx = asStaff(ctx, userID)
	c, err := loadCredentials(ctx, s.DB, t.ID, `u.id = $2`, userID)
	if err != nil {
		return err
	}
	if err := CheckPassword(t, newPassword, c.Email, c.Name); err != nil {
		return err
	}
	if err := s.confirmPassword(ctx, t, c, current); err != nil {
		return err
	}
	hash, err := s.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE staff_users SET password_hash = $2, updated_at = $3 WHERE id = $1`,
			userID, hash, s.now()); err != nil {
			return fmt.Errorf("staff: change password: %w", err)
		}
		if err := endSessions(ctx, tx, userID, keepSessionID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, t.ID, "staff.password.changed", userObject(userID), nil)
	})
}

// confirmPassword checks a logged-in member's current password before a
// sensitive change, throttled like a login on their email (a stolen
// session must not become a password oracle).
func (s *Service) confirmPassword(ctx context.Context, t *tenant.Tenant, c *credentials, password string) error {
	wait, err := s.throttle().Reserve(ctx, t.ID, c.Email, "")
	if err != nil {
		return err
	}
	if wait > 0 {
		return &auth.ThrottledError{RetryAfter: wait}
	}
	ok, _, err := s.Hasher.Verify(ctx, password, c.PasswordHash)
	if err != nil {
		return err
	}
	if !ok {
		if err := audit.Record(ctx, s.DB, t.ID, "staff.password.wrong", userObject(c.ID), nil); err != nil {
			return err
		}
		return ErrWrongPassword
	}
	return s.throttle().Clear(ctx, s.DB, t.ID, c.Email)
}
