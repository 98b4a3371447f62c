package staff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// Token purposes (staff_tokens.purpose).
const (
	purposeInvitation = "invitation"
	purposeReset      = "reset"
)

// token is a valid staff_tokens row.
type token struct {
	ID        int64     `db:"id"`
	Email     string    `db:"email"`
	Role      *string   `db:"role"`
	Name      string    `db:"name"`
	ExpiresAt time.Time `db:"expires_at"`
}

// peekToken finds a valid unused token of this purpose in the commune
// without using it: the GET of a link shows the form (mail scanners
// prefetch links), the POST uses the token.
func (s *Service) peekToken(ctx context.Context, q sqlx.QueryerContext, tenantID int64, raw, purpose string, lock bool) (*token, error) {
	if !auth.WellFormed(raw, auth.TokenBytes) {
		return nil, ErrTokenInvalid
	}
	forUpdate := ""
	if lock {
		forUpdate = " FOR UPDATE"
	}
	var tok token
	err := sqlx.GetContext(ctx, q, &tok, `SELECT id, email, role, name, expires_at FROM staff_tokens
		WHERE tenant_id = $1 AND token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $4`+forUpdate,
		tenantID, auth.Hash(raw), purpose, s.now())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrTokenInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("staff: token: %w", err)
	}
	return &tok, nil
}

func useToken(ctx context.Context, tx *sqlx.Tx, tenantID, id int64, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE staff_tokens SET used_at = $3 WHERE tenant_id = $1 AND id = $2`, tenantID, id, now); err != nil {
		return fmt.Errorf("staff: use token: %w", err)
	}
	return nil
}

// issueToken voids the address's unused tokens of this purpose in the
// commune and stores a new one; it returns the raw token (for the email
// only) and its expiry.
func (s *Service) issueToken(ctx context.Context, tx *sqlx.Tx, tenantID int64, purpose, email, role, name string, ttl time.Duration) (string, time.Time, error) {
	raw, hash, err := auth.NewToken()
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `UPDATE staff_tokens SET used_at = $4
		WHERE tenant_id = $1 AND email = $2 AND purpose = $3 AND used_at IS NULL`, tenantID, email, purpose, now); err != nil {
		return "", time.Time{}, fmt.Errorf("staff: void tokens: %w", err)
	}
	var roleArg any
	if purpose == purposeInvitation {
		roleArg = role
	}
	var invitedBy any
	if a := audit.ActorFrom(ctx); a.Kind == audit.KindStaff && a.ID != 0 {
		invitedBy = a.ID
	}
	exp := now.Add(ttl)
	if _, err := tx.ExecContext(ctx, `INSERT INTO staff_tokens
		(tenant_id, purpose, token_hash, email, role, name, invited_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		tenantID, purpose, hash, email, roleArg, name, invitedBy, now, exp); err != nil {
		return "", time.Time{}, fmt.Errorf("staff: store token: %w", err)
	}
	return raw, exp, nil
}

// cleanName normalizes a person's name: one line, trimmed, 1 to 200
// characters.
func cleanName(name string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > 200 || strings.ContainsRune(name, 0) {
		return "", ErrInvalidName
	}
	return name, nil
}

// Invite invites email to work in commune t with role: an email with a
// link valid 72 hours on the commune's primary host, which returns. name
// is a suggestion the invitee may change. Inviting again voids the earlier
// link; an active member cannot be invited (ErrAlreadyMember). Audited as
// the actor of ctx (an administrator, or the system for the command line).
func (s *Service) Invite(ctx context.Context, t *tenant.Tenant, email, role, name string) (string, error) {
	email = auth.NormalizeEmail(email)
	if !auth.ValidEmail(email) {
		return "", ErrInvalidEmail
	}
	if !ValidRole(role) {
		return "", ErrInvalidRole
	}
	name = strings.Join(strings.Fields(name), " ")
	if utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) {
		return "", ErrInvalidName
	}
	var link string
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		m, err := getMember(ctx, tx, `m.tenant_id = $1 AND u.email = $2`, t.ID, email)
		switch {
		case err == nil && m.Active():
			return ErrAlreadyMember
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		raw, exp, err := s.issueToken(ctx, tx, t.ID, purposeInvitation, email, role, name, s.limits().InvitationTTL)
		if err != nil {
			return err
		}
		if link, err = s.link(t, "/admin/invitation/"+raw); err != nil {
			return err
		}
		if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
			TenantID: t.ID, To: email, Template: "staff_invitation", NotAfter: exp,
			Data: map[string]any{"Link": link, "Role": RoleLabel(role), "Name": name},
		}); err != nil {
			return fmt.Errorf("staff: invitation email: %w", err)
		}
		var obj audit.Object
		if m != nil {
			obj = userObject(m.ID)
		}
		return audit.Record(ctx, tx, t.ID, "staff.invited", obj, map[string]any{"email": email, "role": role})
	})
	if err != nil {
		return "", err
	}
	return link, nil
}

// Invitation is what an invitation link offers.
type Invitation struct {
	Email     string
	Role      string
	Name      string // suggested
	ExpiresAt time.Time
	// ExistingUser: the address already has a staff user (of another
	// commune, or a disabled membership here), who accepts with their own
	// password (and second factor) instead of choosing one.
	ExistingUser bool
	TOTPEnrolled bool
}

// PeekInvitation tells what a valid invitation link of commune t offers,
// without using it; ErrTokenInvalid when unknown, used or expired.
func (s *Service) PeekInvitation(ctx context.Context, t *tenant.Tenant, raw string) (*Invitation, error) {
	tok, err := s.peekToken(ctx, s.DB, t.ID, raw, purposeInvitation, false)
	if err != nil {
		return nil, err
	}
	inv := &Invitation{Email: tok.Email, Role: *tok.Role, Name: tok.Name, ExpiresAt: tok.ExpiresAt}
	c, err := loadCredentials(ctx, s.DB, t.ID, `u.email = $2`, tok.Email)
	switch {
	case err == nil:
		inv.ExistingUser, inv.TOTPEnrolled = true, c.TOTPEnrolled
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	return inv, nil
}

// AcceptInvitation uses an invitation of commune t by someone without a
// staff user: it creates the user with name and password (the staff's
// policy) and their membership with the invited role. The caller then
// opens a session (an administrator enrols a second factor first).
func (s *Service) AcceptInvitation(ctx context.Context, t *tenant.Tenant, raw, name, password string) (*Member, error) {
	inv, err := s.PeekInvitation(ctx, t, raw)
	if err != nil {
		return nil, err
	}
	if inv.ExistingUser {
		return nil, ErrAlreadyMember
	}
	if name, err = cleanName(name); err != nil {
		return nil, err
	}
	if err := CheckPassword(t, password, inv.Email, name); err != nil {
		return nil, err
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return nil, err
	}
	var userID int64
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		// Used here, under its row's lock: a concurrent POST loses.
		tok, err := s.peekToken(ctx, tx, t.ID, raw, purposeInvitation, true)
		if err != nil {
			return err
		}
		if err := useToken(ctx, tx, t.ID, tok.ID, s.now()); err != nil {
			return err
		}
		err = tx.GetContext(ctx, &userID, `INSERT INTO staff_users (email, name, password_hash) VALUES ($1, $2, $3)
			RETURNING id`, tok.Email, name, hash)
		if db.IsUniqueViolation(err) {
			return ErrAlreadyMember // a user was created meanwhile: accept as one
		}
		if err != nil {
			return fmt.Errorf("staff: create user: %w", err)
		}
		return s.join(asStaff(ctx, userID), tx, t, userID, *tok.Role)
	})
	if err != nil {
		return nil, err
	}
	return s.Member(ctx, t.ID, userID)
}

// AcceptInvitationAsUser uses an invitation of commune t by the staff user
// who already has its address: they prove it with their password and,
// when enrolled, their second factor (code), throttled like a login. It
// returns the member and whether the second factor was given.
func (s *Service) AcceptInvitationAsUser(ctx context.Context, t *tenant.Tenant, raw, password, code, ip string) (*Member, bool, error) {
	inv, err := s.PeekInvitation(ctx, t, raw)
	if err != nil {
		return nil, false, err
	}
	if !inv.ExistingUser {
		return nil, false, ErrNotFound
	}
	ctx = audit.WithActor(ctx, audit.Actor{Kind: audit.KindAnonymous, IP: ipOr(ctx, ip)})
	c, err := s.checkPassword(ctx, t, inv.Email, password, ip, false)
	if err != nil {
		return nil, false, err
	}
	if err := s.passwordRight(ctx, s.DB, t, c, ip); err != nil {
		return nil, false, err
	}
	if c.TOTPEnrolled {
		if err := s.VerifySecondFactor(ctx, t, c.ID, code, ip); err != nil {
			return nil, false, err
		}
	}
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		tok, err := s.peekToken(ctx, tx, t.ID, raw, purposeInvitation, true)
		if err != nil {
			return err
		}
		if err := useToken(ctx, tx, t.ID, tok.ID, s.now()); err != nil {
			return err
		}
		return s.join(asStaff(ctx, c.ID), tx, t, c.ID, *tok.Role)
	})
	if err != nil {
		return nil, false, err
	}
	m, err := s.Member(ctx, t.ID, c.ID)
	return m, c.TOTPEnrolled, err
}

// join makes the user an active member of t with role (a disabled
// membership is enabled again with it).
func (s *Service) join(ctx context.Context, tx *sqlx.Tx, t *tenant.Tenant, userID int64, role string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO staff_memberships (tenant_id, staff_user_id, role, status, created_at, updated_at)
		VALUES ($1, $2, $3, 'active', $4, $4)
		ON CONFLICT (tenant_id, staff_user_id) DO UPDATE SET role = EXCLUDED.role, status = 'active', updated_at = EXCLUDED.updated_at`,
		t.ID, userID, role, s.now()); err != nil {
		return fmt.Errorf("staff: membership: %w", err)
	}
	return audit.Record(ctx, tx, t.ID, "staff.invitation.accepted", userObject(userID), map[string]any{"role": role})
}

// RequestReset asks for a password-reset link for email on commune t: it
// is emailed (valid one hour) when email is an active member's. The answer
// is nil whatever the address, and also when rate-limited (per address and
// per IP); only infrastructure errors are returned.
func (s *Service) RequestReset(ctx context.Context, t *tenant.Tenant, email, ip string) error {
	email = auth.NormalizeEmail(email)
	if !auth.ValidEmail(email) {
		return nil
	}
	lim := s.limits()
	now := s.now()
	ctx = audit.WithActor(ctx, audit.Actor{Kind: audit.KindAnonymous, IP: ipOr(ctx, ip)})
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		okEmail, err := auth.Allow(ctx, tx, now, t.ID, "staff_reset", email, lim.ResetPerHour, time.Hour)
		if err != nil {
			return err
		}
		okIP := true
		if ip != "" {
			if okIP, err = auth.Allow(ctx, tx, now, t.ID, "staff_reset_ip", auth.IPKey(ip), lim.ResetPerHourPerIP, time.Hour); err != nil {
				return err
			}
		}
		if !okEmail || !okIP {
			return nil
		}
		m, err := getMember(ctx, tx, `m.tenant_id = $1 AND u.email = $2`, t.ID, email)
		if errors.Is(err, ErrNotFound) || (err == nil && !m.Active()) {
			return nil
		}
		if err != nil {
			return err
		}
		raw, exp, err := s.issueToken(ctx, tx, t.ID, purposeReset, email, "", "", lim.ResetTTL)
		if err != nil {
			return err
		}
		link, err := s.link(t, "/admin/mot-de-passe/"+raw)
		if err != nil {
			return err
		}
		if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
			TenantID: t.ID, To: email, Template: "staff_reset", NotAfter: exp,
			Data: map[string]any{"Link": link, "Name": m.Name},
		}); err != nil {
			return fmt.Errorf("staff: reset email: %w", err)
		}
		return audit.Record(ctx, tx, t.ID, "staff.password.reset_requested", userObject(m.ID), nil)
	})
}

// PeekReset tells whether a reset link of commune t is valid and for
// which address, without using it.
func (s *Service) PeekReset(ctx context.Context, t *tenant.Tenant, raw string) (string, error) {
	tok, err := s.peekToken(ctx, s.DB, t.ID, raw, purposeReset, false)
	if err != nil {
		return "", err
	}
	return tok.Email, nil
}

// ResetPassword sets the password chosen on a reset link's form and uses
// the link. Every session of the user, in every commune, ends; the login
// counter is cleared. The second factor stays: it is still asked at the
// next login. A *auth.PolicyError leaves the link usable.
func (s *Service) ResetPassword(ctx context.Context, t *tenant.Tenant, raw, password string) error {
	email, err := s.PeekReset(ctx, t, raw)
	if err != nil {
		return err
	}
	m, err := s.MemberByEmail(ctx, t.ID, email)
	if err != nil || !m.Active() {
		return ErrTokenInvalid
	}
	if err := CheckPassword(t, password, m.Email, m.Name); err != nil {
		return err
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	ctx = asStaff(ctx, m.ID)
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		tok, err := s.peekToken(ctx, tx, t.ID, raw, purposeReset, true)
		if err != nil {
			return err
		}
		if err := useToken(ctx, tx, t.ID, tok.ID, s.now()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE staff_users SET password_hash = $2, updated_at = $3 WHERE id = $1`,
			m.ID, hash, s.now()); err != nil {
			return fmt.Errorf("staff: reset password: %w", err)
		}
		if err := endSessions(ctx, tx, m.ID, ""); err != nil {
			return err
		}
		if err := s.throttle().Clear(ctx, tx, t.ID, m.Email); err != nil {
			return err
		}
		return audit.Record(ctx, tx, t.ID, "staff.password.reset", userObject(m.ID), nil)
	})
}

// Purge deletes tokens expired for a week (run it periodically).
func (s *Service) Purge(ctx context.Context) error {
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM staff_tokens WHERE expires_at < $1`, s.now().Add(-7*24*time.Hour)); err != nil {
		return fmt.Errorf("staff: purge: %w", err)
	}
	return nil
}
