package staff

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/tenant"
)

// The team's management: what the "Équipe" screen and `portail staff` do,
// audited as the actor of ctx. A change takes effect at the member's next
// request (their session reads the membership every time).

// lockMember reads the membership under a lock, and refuses to leave the
// commune without an active administrator when it would stop being one.
func lockMember(ctx context.Context, tx *sqlx.Tx, tenantID, userID int64, staysAdmin bool) (*Member, error) {
	m, err := getMember(ctx, tx, `m.tenant_id = $1 AND m.staff_user_id = $2 FOR UPDATE OF m`, tenantID, userID)
	if err != nil {
		return nil, err
	}
	if m.Active() && m.Role == RoleAdmin && !staysAdmin {
		// Lock the commune's admin rows so that two admins cannot demote
		// each other at once.
		var others int
		if err := tx.GetContext(ctx, &others, `SELECT count(*) FROM (SELECT 1 FROM staff_memberships m
			JOIN staff_users u ON u.id = m.staff_user_id
			WHERE m.tenant_id = $1 AND m.staff_user_id <> $2 AND m.role = 'admin' AND m.status = 'active'
			  AND u.status = 'active' FOR UPDATE OF m) a`, tenantID, userID); err != nil {
			return nil, fmt.Errorf("staff: admins: %w", err)
		}
		if others == 0 {
			return nil, ErrLastAdmin
		}
	}
	return m, nil
}

// SetRole changes a member's role in commune t.
func (s *Service) SetRole(ctx context.Context, t *tenant.Tenant, userID int64, role string) error {
	if !ValidRole(role) {
		return ErrInvalidRole
	}
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		m, err := lockMember(ctx, tx, t.ID, userID, role == RoleAdmin)
		if err != nil {
			return err
		}
		if m.Role == role {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE staff_memberships SET role = $3, updated_at = $4
			WHERE tenant_id = $1 AND staff_user_id = $2`, t.ID, userID, role, s.now()); err != nil {
			return fmt.Errorf("staff: set role: %w", err)
		}
		return audit.Record(ctx, tx, t.ID, "staff.role.changed", userObject(userID), map[string]any{"from": m.Role, "to": role})
	})
}

// SetMembershipActive disables (active false) or enables a member in
// commune t. A disabled member's sessions there end; they keep their user
// and their other communes.
func (s *Service) SetMembershipActive(ctx context.Context, t *tenant.Tenant, userID int64, active bool) error {
	status, action := StatusDisabled, "staff.membership.disabled"
	if active {
		status, action = StatusActive, "staff.membership.enabled"
	}
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		m, err := lockMember(ctx, tx, t.ID, userID, active)
		if err != nil {
			return err
		}
		if m.MembershipStatus == status {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE staff_memberships SET status = $3, updated_at = $4
			WHERE tenant_id = $1 AND staff_user_id = $2`, t.ID, userID, status, s.now()); err != nil {
			return fmt.Errorf("staff: membership: %w", err)
		}
		if !active {
			if _, err := tx.ExecContext(ctx, `DELETE FROM staff_sessions WHERE tenant_id = $1 AND staff_user_id = $2`, t.ID, userID); err != nil {
				return fmt.Errorf("staff: end sessions: %w", err)
			}
		}
		return audit.Record(ctx, tx, t.ID, action, userObject(userID), nil)
	})
}

// DisableUser disables a staff user everywhere (they may no longer log in
// to any commune) and ends all their sessions; recorded in commune t.
func (s *Service) DisableUser(ctx context.Context, t *tenant.Tenant, userID int64) error {
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if _, err := lockMember(ctx, tx, t.ID, userID, false); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE staff_users SET status = 'disabled', updated_at = $2 WHERE id = $1`, userID, s.now()); err != nil {
			return fmt.Errorf("staff: disable user: %w", err)
		}
		if err := endSessions(ctx, tx, userID, ""); err != nil {
			return err
		}
		return audit.Record(ctx, tx, t.ID, "staff.user.disabled", userObject(userID), nil)
	})
}

// CreateMember creates a staff user with this password and makes them a
// member of t with role, without an invitation: the development data of
// `make run` and tests. The staff's password policy applies; an address
// that already has a user is ErrAlreadyMember.
func (s *Service) CreateMember(ctx context.Context, t *tenant.Tenant, email, name, password, role string) (*Member, error) {
	email = auth.NormalizeEmail(email)
	if !auth.ValidEmail(email) {
		return nil, ErrInvalidEmail
	}
	if !ValidRole(role) {
		return nil, ErrInvalidRole
	}
	name, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	if err := CheckPassword(t, password, email, name); err != nil {
		return nil, err
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return nil, err
	}
	var userID int64
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &userID, `INSERT INTO staff_users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id`,
			email, name, hash)
		if db.IsUniqueViolation(err) {
			return ErrAlreadyMember
		}
		if err != nil {
			return fmt.Errorf("staff: create user: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO staff_memberships (tenant_id, staff_user_id, role) VALUES ($1, $2, $3)`,
			t.ID, userID, role); err != nil {
			return fmt.Errorf("staff: membership: %w", err)
		}
		return audit.Record(ctx, tx, t.ID, "staff.created", userObject(userID), map[string]any{"email": email, "role": role})
	})
	if err != nil {
		return nil, err
	}
	return s.Member(ctx, t.ID, userID)
}
