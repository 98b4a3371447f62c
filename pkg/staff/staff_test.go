package staff

import (
	"errors"
	"strings"
	"testing"
	"time"

	"portail/pkg/auth"
)

func isThrottled(err error) bool {
	var te *auth.ThrottledError
	return errors.As(err, &te)
}

func TestLoginIsForActiveMembersOfTheCommuneOnly(t *testing.T) {
	e := newEnv(t)
	m := e.member(e.a, "agent@sistec.fr", RoleAgent)
	got, err := e.svc.Authenticate(e.ctx, e.a, " AGENT@sistec.fr ", goodPassword, "192.0.2.1")
	if err != nil || got.ID != m.ID || got.Role != RoleAgent || got.TenantID != e.a.ID {
		t.Fatalf("member's login: %+v %v", got, err)
	}
	// The right password on another commune's host, a disabled membership,
	// a disabled user: all the same refusal.
	if _, err := e.svc.Authenticate(e.ctx, e.b, m.Email, goodPassword, "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("on another commune: %v", err)
	}
	other := e.member(e.a, "autre@sistec.fr", RoleAdmin) // keeps an admin around
	_ = other
	e.must(e.svc.SetMembershipActive(e.ctx, e.a, m.ID, false))
	if _, err := e.svc.Authenticate(e.ctx, e.a, m.Email, goodPassword, "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("disabled membership: %v", err)
	}
	e.must(e.svc.SetMembershipActive(e.ctx, e.a, m.ID, true))
	e.must(e.svc.DisableUser(e.ctx, e.a, m.ID))
	if _, err := e.svc.Authenticate(e.ctx, e.a, m.Email, goodPassword, "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("disabled user: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'staff.login.failed' AND details::text LIKE '%' || $1 || '%'`, goodPassword); n != 0 {
		t.Fatal("a password in the audit log")
	}
}

// Staff are throttled as residents are, on counters of their own: a
// resident with the same address is not slowed by a staff member's
// failures.
func TestWrongPasswordsAreThrottled(t *testing.T) {
	e := newEnv(t)
	m := e.member(e.a, "agent@sistec.fr", RoleAgent)
	var throttled bool
	for i := range 10 {
		_, err := e.svc.Authenticate(e.ctx, e.a, m.Email, "mauvais mot de passe", "192.0.2.7")
		if isThrottled(err) {
			throttled = true
			if i < 3 {
				t.Fatalf("throttled after %d failures", i)
			}
			break
		}
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
	}
	if !throttled {
		t.Fatal("10 wrong passwords in a row, never throttled")
	}
	// Even the right password waits.
	if _, err := e.svc.Authenticate(e.ctx, e.a, m.Email, goodPassword, "192.0.2.8"); !isThrottled(err) {
		t.Fatalf("right password during the delay: %v", err)
	}
	residents := &auth.Throttle{DB: e.db, Kinds: auth.ThrottleKinds{Principal: "account", IP: "ip"}, Now: e.clock.Now}
	if wait, err := residents.Delay(e.ctx, e.a.ID, m.Email, "192.0.2.7"); err != nil || wait != 0 {
		t.Fatalf("a resident with the same address waits %v (%v)", wait, err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.svc.Authenticate(e.ctx, e.a, m.Email, goodPassword, "192.0.2.8"); err != nil {
		t.Fatalf("after the delay: %v", err)
	}
}

func TestTOTPCodeIsGoodOnce(t *testing.T) {
	e := newEnv(t)
	m := e.member(e.a, "agent@sistec.fr", RoleAgent)
	secret, err := NewTOTPSecret(m.Email)
	e.must(err)
	if _, err := e.svc.ConfirmTOTP(e.ctx, e.a, m.ID, secret, "000000"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	first := e.code(secret, 0)
	codes, err := e.svc.ConfirmTOTP(e.ctx, e.a, m.ID, secret, first)
	if err != nil || len(codes) != RecoveryCodes {
		t.Fatalf("enrolment: %v %v", codes, err)
	}
	// The confirmation's code cannot log in: its step is used.
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, first, "192.0.2.1"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("the enrolment's code replayed: %v", err)
	}
	e.clock.Advance(30 * time.Second)
	next := e.code(secret, 0)
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, next[:3]+" "+next[3:], "192.0.2.1"); err != nil {
		t.Fatalf("a fresh code: %v", err)
	}
	// The same code again within its window, and an older one still within
	// the skew: refused.
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, next, "192.0.2.1"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("code replayed within its window: %v", err)
	}
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, first, "192.0.2.1"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("an earlier code after a later one: %v", err)
	}
	// Codes two steps away are outside the window.
	e.clock.Advance(30 * time.Second)
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, e.code(secret, 90*time.Second), "192.0.2.1"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("a code from the future: %v", err)
	}
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, e.code(secret, 30*time.Second), "192.0.2.1"); err != nil {
		t.Fatalf("next step's code within the skew: %v", err)
	}
	if _, err := e.svc.ConfirmTOTP(e.ctx, e.a, m.ID, secret, e.code(secret, 0)); !errors.Is(err, ErrAlreadyEnrolled) {
		t.Fatalf("second enrolment: %v", err)
	}
}

func TestRecoveryCodesWorkOnceEach(t *testing.T) {
	e := newEnv(t)
	m := e.member(e.a, "agent@sistec.fr", RoleAgent)
	_, codes := e.enrol(e.a, m)
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 11 || c[5] != '-' || seen[c] {
			t.Fatalf("codes %v", codes)
		}
		seen[c] = true
	}
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, strings.ToUpper(codes[3]), ""); err != nil {
		t.Fatalf("recovery code: %v", err)
	}
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, codes[3], ""); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("recovery code used twice: %v", err)
	}
	if n, _ := e.svc.RecoveryCodesLeft(e.ctx, m.ID); n != RecoveryCodes-1 {
		t.Fatalf("%d codes left", n)
	}
	if _, err := e.svc.RegenerateRecoveryCodes(e.ctx, e.a, m.ID, "pas le bon"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("regenerate without the password: %v", err)
	}
	fresh, err := e.svc.RegenerateRecoveryCodes(e.ctx, e.a, m.ID, goodPassword)
	e.must(err)
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, codes[4], ""); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("an old code after regeneration: %v", err)
	}
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, fresh[0], ""); err != nil {
		t.Fatalf("a new code: %v", err)
	}
	// Someone else's code is not one's own.
	other := e.member(e.a, "autre@sistec.fr", RoleAgent)
	_, theirs := e.enrol(e.a, other)
	if err := e.svc.VerifySecondFactor(e.ctx, e.a, m.ID, theirs[0], ""); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("another user's code: %v", err)
	}
}

func TestAdministratorsKeepTheirSecondFactor(t *testing.T) {
	e := newEnv(t)
	admin := e.member(e.a, "admin@sistec.fr", RoleAdmin)
	e.enrol(e.a, admin)
	if err := e.svc.DisableTOTP(e.ctx, e.a, admin.ID, goodPassword); !errors.Is(err, ErrAdminNeedsTOTP) {
		t.Fatalf("admin disabling TOTP: %v", err)
	}
	agent := e.member(e.a, "agent@sistec.fr", RoleAgent)
	e.enrol(e.a, agent)
	if err := e.svc.DisableTOTP(e.ctx, e.a, agent.ID, goodPassword); err != nil {
		t.Fatalf("agent disabling TOTP: %v", err)
	}
	if n, _ := e.svc.RecoveryCodesLeft(e.ctx, agent.ID); n != 0 {
		t.Fatalf("%d recovery codes kept", n)
	}
}

func TestSessionStages(t *testing.T) {
	e := newEnv(t)
	admin := e.member(e.a, "admin@sistec.fr", RoleAdmin)
	agent := e.member(e.a, "agent@sistec.fr", RoleAgent)
	stage := func(m *Member, secondFactor bool) Stage {
		t.Helper()
		raw, err := e.sess.Create(e.ctx, e.a.ID, m.ID, secondFactor)
		e.must(err)
		s, err := e.sess.Load(e.ctx, e.a.ID, raw)
		e.must(err)
		return s.Stage()
	}
	if s := stage(admin, false); s != StageEnrol {
		t.Errorf("admin without TOTP: stage %d, want enrolment", s)
	}
	if s := stage(agent, false); s != StageReady {
		t.Errorf("agent without TOTP: stage %d", s)
	}
	e.enrol(e.a, agent)
	if s := stage(agent, false); s != StageSecondFactor {
		t.Errorf("enrolled agent after the password: stage %d", s)
	}
	if s := stage(agent, true); s != StageReady {
		t.Errorf("enrolled agent after the code: stage %d", s)
	}
}

// A role change or a deactivation is seen by the very next load of the
// session: nothing is cached.
func TestSessionReadsTheMembershipEveryTime(t *testing.T) {
	e := newEnv(t)
	e.member(e.a, "admin@sistec.fr", RoleAdmin)
	m := e.member(e.a, "agent@sistec.fr", RoleAgent)
	e.member(e.b, "ailleurs@autre.fr", RoleAdmin)
	raw, err := e.sess.Create(e.ctx, e.a.ID, m.ID, false)
	e.must(err)
	if s, err := e.sess.Load(e.ctx, e.a.ID, raw); err != nil || s.Role != RoleAgent || s.Name == "" {
		t.Fatalf("load: %+v %v", s, err)
	}
	if _, err := e.sess.Load(e.ctx, e.b.ID, raw); !errors.Is(err, auth.ErrSessionNotFound) {
		t.Fatalf("session of commune A on B: %v", err)
	}
	e.must(e.svc.SetRole(e.ctx, e.a, m.ID, RoleViewer))
	if s, err := e.sess.Load(e.ctx, e.a.ID, raw); err != nil || s.Role != RoleViewer {
		t.Fatalf("after the role change: %+v %v", s, err)
	}
	// A disabled membership: the open session is refused and ends.
	if _, err := e.db.Exec(`UPDATE staff_memberships SET status = 'disabled' WHERE staff_user_id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sess.Load(e.ctx, e.a.ID, raw); !errors.Is(err, auth.ErrSessionNotFound) {
		t.Fatalf("disabled membership: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM staff_sessions WHERE staff_user_id = $1`, m.ID); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

func TestSessionTimeouts(t *testing.T) {
	e := newEnv(t)
	m := e.member(e.a, "agent@sistec.fr", RoleAgent)
	raw, err := e.sess.Create(e.ctx, e.a.ID, m.ID, false)
	e.must(err)
	for range 3 {
		e.clock.Advance(14 * time.Minute)
		if _, err := e.sess.Load(e.ctx, e.a.ID, raw); err != nil {
			t.Fatalf("active session expired: %v", err)
		}
	}
	e.clock.Advance(DefaultSessionIdle + time.Second)
	if _, err := e.sess.Load(e.ctx, e.a.ID, raw); !errors.Is(err, auth.ErrSessionNotFound) {
		t.Fatalf("idle session: %v", err)
	}
	raw, err = e.sess.Create(e.ctx, e.a.ID, m.ID, false)
	e.must(err)
	for range 8*4 + 1 {
		e.clock.Advance(15*time.Minute - time.Second)
		if _, err := e.sess.Load(e.ctx, e.a.ID, raw); err != nil {
			if e.clock.Now().Sub(time.Date(2026, 11, 26, 10, 0, 15, 0, time.UTC)) < 8*time.Hour {
				t.Fatalf("active session ended early: %v", err)
			}
			return
		}
	}
	t.Fatal("session lived past its absolute timeout")
}

func TestLastAdministratorStays(t *testing.T) {
	e := newEnv(t)
	admin := e.member(e.a, "admin@sistec.fr", RoleAdmin)
	if err := e.svc.SetRole(e.ctx, e.a, admin.ID, RoleAgent); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("demoting the last admin: %v", err)
	}
	if err := e.svc.SetMembershipActive(e.ctx, e.a, admin.ID, false); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("disabling the last admin: %v", err)
	}
	second := e.member(e.a, "admin2@sistec.fr", RoleAdmin)
	e.must(e.svc.SetRole(e.ctx, e.a, admin.ID, RoleAgent))
	if err := e.svc.SetMembershipActive(e.ctx, e.a, second.ID, false); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("disabling the new last admin: %v", err)
	}
}

func TestInvitationOfANewUser(t *testing.T) {
	e := newEnv(t)
	e.member(e.a, "admin@sistec.fr", RoleAdmin)
	link, err := e.svc.Invite(e.ctx, e.a, "Nouvel.Agent@Sistec.fr", RoleAgent, "Nouvel Agent")
	e.must(err)
	raw := e.tokenIn(e.lastEmail("nouvel.agent@sistec.fr"), e.a, "/admin/invitation/")
	if link != "https://sistec.example.fr/admin/invitation/"+raw {
		t.Fatalf("link %q", link)
	}
	if _, err := e.svc.PeekInvitation(e.ctx, e.b, raw); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("invitation on another commune: %v", err)
	}
	inv, err := e.svc.PeekInvitation(e.ctx, e.a, raw)
	if err != nil || inv.Email != "nouvel.agent@sistec.fr" || inv.Role != RoleAgent || inv.ExistingUser {
		t.Fatalf("peek: %+v %v", inv, err)
	}
	// Peeking twice uses nothing; a password under the policy leaves the
	// link usable.
	var pe *auth.PolicyError
	if _, err := e.svc.AcceptInvitation(e.ctx, e.a, raw, "Nouvel Agent", "court-11car"); !errors.As(err, &pe) || pe.Reason != auth.PolicyTooShort {
		t.Fatalf("11 characters: %v", err)
	}
	m, err := e.svc.AcceptInvitation(e.ctx, e.a, raw, "  Nouvel   Agent ", goodPassword)
	if err != nil || m.Role != RoleAgent || m.Name != "Nouvel Agent" || !m.Active() {
		t.Fatalf("accept: %+v %v", m, err)
	}
	if _, err := e.svc.AcceptInvitation(e.ctx, e.a, raw, "X", goodPassword); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("invitation used twice: %v", err)
	}
	if _, err := e.svc.Invite(e.ctx, e.a, m.Email, RoleViewer, ""); !errors.Is(err, ErrAlreadyMember) {
		t.Fatalf("inviting a member: %v", err)
	}
}

func TestInvitationExpiresAfter72Hours(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Invite(e.ctx, e.a, "tard@sistec.fr", RoleViewer, "")
	e.must(err)
	raw := e.tokenIn(e.lastEmail("tard@sistec.fr"), e.a, "/admin/invitation/")
	e.clock.Advance(72*time.Hour - time.Minute)
	if _, err := e.svc.PeekInvitation(e.ctx, e.a, raw); err != nil {
		t.Fatalf("before 72 h: %v", err)
	}
	e.clock.Advance(2 * time.Minute)
	if _, err := e.svc.AcceptInvitation(e.ctx, e.a, raw, "Tard", goodPassword); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("after 72 h: %v", err)
	}
	// A new invitation voids the previous one.
	_, err = e.svc.Invite(e.ctx, e.a, "tard@sistec.fr", RoleViewer, "")
	e.must(err)
	first := e.tokenIn(e.lastEmail("tard@sistec.fr"), e.a, "/admin/invitation/")
	_, err = e.svc.Invite(e.ctx, e.a, "tard@sistec.fr", RoleAgent, "")
	e.must(err)
	if _, err := e.svc.PeekInvitation(e.ctx, e.a, first); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("a replaced invitation: %v", err)
	}
}

func TestInvitationOfAnExistingUser(t *testing.T) {
	e := newEnv(t)
	m := e.member(e.b, "agent@autre.fr", RoleAdmin)
	secret, _ := e.enrol(e.b, m)
	_, err := e.svc.Invite(e.ctx, e.a, m.Email, RoleViewer, "")
	e.must(err)
	raw := e.tokenIn(e.lastEmail(m.Email), e.a, "/admin/invitation/")
	inv, err := e.svc.PeekInvitation(e.ctx, e.a, raw)
	if err != nil || !inv.ExistingUser || !inv.TOTPEnrolled {
		t.Fatalf("peek: %+v %v", inv, err)
	}
	if _, err := e.svc.AcceptInvitation(e.ctx, e.a, raw, "X", goodPassword); !errors.Is(err, ErrAlreadyMember) {
		t.Fatalf("choosing a password over an existing user: %v", err)
	}
	if _, _, err := e.svc.AcceptInvitationAsUser(e.ctx, e.a, raw, "faux", "", ""); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	e.clock.Advance(30 * time.Second)
	if _, _, err := e.svc.AcceptInvitationAsUser(e.ctx, e.a, raw, goodPassword, "123456", ""); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("wrong code: %v", err)
	}
	got, second, err := e.svc.AcceptInvitationAsUser(e.ctx, e.a, raw, goodPassword, e.code(secret, 0), "")
	if err != nil || !second || got.Role != RoleViewer || got.TenantID != e.a.ID {
		t.Fatalf("accept: %+v %v", got, err)
	}
	if b, _ := e.svc.Member(e.ctx, e.b.ID, m.ID); b.Role != RoleAdmin {
		t.Fatal("the other commune's membership changed")
	}
}

func TestPasswordReset(t *testing.T) {
	e := newEnv(t)
	m := e.member(e.a, "agent@sistec.fr", RoleAgent)
	other, err := e.sess.Create(e.ctx, e.a.ID, m.ID, false)
	e.must(err)
	e.must(e.svc.RequestReset(e.ctx, e.a, "inconnu@sistec.fr", "192.0.2.1"))
	e.must(e.svc.RequestReset(e.ctx, e.b, m.Email, "192.0.2.1")) // not a member there
	if n := e.count(`SELECT count(*) FROM staff_tokens`); n != 0 {
		t.Fatalf("%d tokens for addresses that are no member here", n)
	}
	e.must(e.svc.RequestReset(e.ctx, e.a, m.Email, "192.0.2.1"))
	raw := e.tokenIn(e.lastEmail(m.Email), e.a, "/admin/mot-de-passe/")
	e.clock.Advance(59 * time.Minute)
	if email, err := e.svc.PeekReset(e.ctx, e.a, raw); err != nil || email != m.Email {
		t.Fatalf("peek: %q %v", email, err)
	}
	const newPassword = "Un autre velo sous la neige"
	e.must(e.svc.ResetPassword(e.ctx, e.a, raw, newPassword))
	if _, err := e.sess.Load(e.ctx, e.a.ID, other); !errors.Is(err, auth.ErrSessionNotFound) {
		t.Fatalf("a session survived the reset: %v", err)
	}
	if err := e.svc.ResetPassword(e.ctx, e.a, raw, newPassword+"!"); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("link used twice: %v", err)
	}
	if _, err := e.svc.Authenticate(e.ctx, e.a, m.Email, newPassword, ""); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	e.must(e.svc.RequestReset(e.ctx, e.a, m.Email, "192.0.2.1"))
	late := e.tokenIn(e.lastEmail(m.Email), e.a, "/admin/mot-de-passe/")
	e.clock.Advance(61 * time.Minute)
	if _, err := e.svc.PeekReset(e.ctx, e.a, late); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("reset link after an hour: %v", err)
	}
}
