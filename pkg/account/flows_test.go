package account

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"portail/pkg/auth"
)

func TestRequestActivationOutcomes(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "Test SISTEC560", "demo@demo.fr", StatusPending, "")
	e.newAccount(e.a, "R2", "Active", "active@demo.fr", StatusActive, goodPassword)
	e.newAccount(e.a, "R3", "Disabled", "off@demo.fr", StatusDisabled, "")

	for email, want := range map[string]ActivationOutcome{
		"nobody@demo.fr":  ActivationUnknown,
		"not an email":    ActivationUnknown,
		"active@demo.fr":  ActivationAlreadyActive,
		"off@demo.fr":     ActivationUnknown,
		" DEMO@Demo.FR  ": ActivationSent, // case-insensitive
		"demo@demo.fr":    ActivationSent,
		"demo@autre.fr":   ActivationUnknown,
	} {
		got, err := e.svc.RequestActivation(e.ctx, e.a, email)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", email, got, err, want)
		}
	}
	// Another tenant does not know this address.
	if got, _ := e.svc.RequestActivation(e.ctx, e.b, "demo@demo.fr"); got != ActivationUnknown {
		t.Fatalf("tenant B: %v", got)
	}
	ems := e.sentEmails()
	if len(ems) != 2 {
		t.Fatalf("%d emails, want 2", len(ems))
	}
	em := ems[1]
	if em.Template != "activation" || em.To != "demo@demo.fr" || em.TenantID != e.a.ID || em.Data["DisplayName"] != "Test SISTEC560" {
		t.Fatalf("email %+v", em)
	}
	if em.NotAfter.IsZero() || em.NotAfter.After(e.clock.Now().Add(72*time.Hour)) {
		t.Fatalf("NotAfter %v", em.NotAfter)
	}
	first := e.tokenFromLink(ems[0], e.a, "/activation/")
	second := e.tokenFromLink(em, e.a, "/activation/")
	// A new token invalidates the older unused one.
	if _, err := e.svc.PeekToken(e.ctx, e.a.ID, first, PurposeActivation); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("older token still valid: %v", err)
	}
	if _, err := e.svc.PeekToken(e.ctx, e.a.ID, second, PurposeActivation); err != nil {
		t.Fatal(err)
	}
	// Only the hash is stored.
	if n := e.count(`SELECT count(*) FROM account_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'`, second); n != 0 {
		t.Fatal("raw token stored")
	}
}

func TestActivationRateLimited(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "X", "x@demo.fr", StatusPending, "")
	for i := range 5 {
		if _, err := e.svc.RequestActivation(e.ctx, e.a, "x@demo.fr"); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if _, err := e.svc.RequestActivation(e.ctx, e.a, "X@demo.fr"); !errors.Is(err, ErrTooManyRequests) {
		t.Fatalf("6th request: %v", err)
	}
	// Unknown addresses are limited the same way (nothing told apart).
	for range 5 {
		e.svc.RequestActivation(e.ctx, e.a, "ghost@demo.fr")
	}
	if _, err := e.svc.RequestActivation(e.ctx, e.a, "ghost@demo.fr"); !errors.Is(err, ErrTooManyRequests) {
		t.Fatalf("unknown 6th: %v", err)
	}
	e.clock.Advance(time.Hour)
	if got, err := e.svc.RequestActivation(e.ctx, e.a, "x@demo.fr"); err != nil || got != ActivationSent {
		t.Fatalf("after the window: %v %v", got, err)
	}
}

func TestActivationSetsPasswordOnce(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "jean.dupont@demo.fr", StatusPending, "")
	e.svc.RequestActivation(e.ctx, e.a, "jean.dupont@demo.fr")
	tok := e.tokenFromLink(e.lastEmail(), e.a, "/activation/")

	// Prefetch (GET) does not consume.
	for range 3 {
		if got, err := e.svc.PeekToken(e.ctx, e.a.ID, tok, PurposeActivation); err != nil || got.AccountID != acc.ID {
			t.Fatalf("peek: %+v %v", got, err)
		}
	}
	// Wrong purpose, other tenant, garbage: invalid.
	if _, err := e.svc.PeekToken(e.ctx, e.a.ID, tok, PurposeReset); !errors.Is(err, ErrTokenInvalid) {
		t.Fatal("token valid for another purpose")
	}
	if err := e.svc.SetPasswordWithToken(e.ctx, e.b, tok, PurposeActivation, goodPassword); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("token of tenant A accepted by tenant B: %v", err)
	}
	if _, err := e.svc.PeekToken(e.ctx, e.a.ID, "short", PurposeActivation); !errors.Is(err, ErrTokenInvalid) {
		t.Fatal("garbage token")
	}
	// A refused password leaves the token usable.
	var pe *PolicyError
	if err := e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeActivation, "dupont-2026-xyz"); !errors.As(err, &pe) || pe.Reason != auth.PolicyContext {
		t.Fatalf("context password: %v", err)
	}
	if err := e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeActivation, "1234567"); !errors.As(err, &pe) || pe.Reason != auth.PolicyTooShort {
		t.Fatalf("short password: %v", err)
	}
	if err := e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeActivation, goodPassword); err != nil {
		t.Fatal(err)
	}
	got, _ := e.svc.Get(e.ctx, e.a.ID, acc.ID)
	if got.Status != StatusActive || got.PasswordChangedAt == nil {
		t.Fatalf("after activation: %+v", got)
	}
	// Reused link.
	if err := e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeActivation, "Un-Autre-Mot-De-Passe"); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("reused token: %v", err)
	}
	if _, err := e.svc.Authenticate(e.ctx, e.a, "jean.dupont@demo.fr", goodPassword, "192.0.2.1"); err != nil {
		t.Fatalf("login after activation: %v", err)
	}
	if o, _ := e.svc.RequestActivation(e.ctx, e.a, "jean.dupont@demo.fr"); o != ActivationAlreadyActive {
		t.Fatalf("second activation: %v", o)
	}
	var n int
	e.db.Get(&n, `SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'account.activated' AND actor_id = $2`, e.a.ID, acc.ID)
	if n != 1 {
		t.Fatal("activation not audited")
	}
}

func TestActivationTokenExpires(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "Test", "x@demo.fr", StatusPending, "")
	e.svc.RequestActivation(e.ctx, e.a, "x@demo.fr")
	tok := e.tokenFromLink(e.lastEmail(), e.a, "/activation/")
	e.clock.Advance(72*time.Hour - time.Second)
	if _, err := e.svc.PeekToken(e.ctx, e.a.ID, tok, PurposeActivation); err != nil {
		t.Fatalf("valid before 72h: %v", err)
	}
	e.clock.Advance(2 * time.Second)
	if err := e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeActivation, goodPassword); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestResetFlow(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	e.newAccount(e.a, "R2", "Pending", "pending@demo.fr", StatusPending, "")

	// Unknown, pending, invalid, other tenant: nil and no email.
	for _, em := range []string{"ghost@demo.fr", "pending@demo.fr", "@@", ""} {
		if err := e.svc.RequestReset(e.ctx, e.a, em, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	e.must(e.svc.RequestReset(e.ctx, e.b, "demo@demo.fr", "192.0.2.1"))
	e.workRequests()
	if n := len(e.sentEmails()); n != 0 {
		t.Fatalf("%d emails for unknown/pending addresses", n)
	}

	// Sessions and remember-me tokens exist before the reset.
	sid, _, err := e.sess.Create(e.ctx, e.a.ID, acc.ID)
	e.must(err)
	rem, _, err := e.svc.IssueRemember(e.ctx, e.a.ID, acc.ID)
	e.must(err)

	e.must(e.svc.RequestReset(e.ctx, e.a, "Demo@demo.fr", "192.0.2.1"))
	e.workRequests()
	em := e.lastEmail()
	if em.Template != "reset" || em.To != "demo@demo.fr" || em.TenantID != e.a.ID {
		t.Fatalf("email %+v", em)
	}
	tok := e.tokenFromLink(em, e.a, "/mot-de-passe/")
	if em.NotAfter.After(e.clock.Now().Add(time.Hour)) {
		t.Fatal("reset link lives more than 1h")
	}
	const newPw = "Nouveau-Mot-De-Passe-42"
	e.must(e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeReset, newPw))
	if _, err := e.sess.Load(e.ctx, e.a.ID, sid); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("session survived the reset: %v", err)
	}
	if _, _, err := e.svc.UseRemember(e.ctx, e.a, rem); err == nil {
		t.Fatal("remember-me survived the reset")
	}
	if err := e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeReset, "Encore-Un-Autre-42"); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("reset link reused: %v", err)
	}
	if _, err := e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", goodPassword, ""); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal("old password still works")
	}
	if _, err := e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", newPw, ""); err != nil {
		t.Fatal(err)
	}
}

func TestResetTokenExpiresAfterOneHour(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	e.must(e.svc.RequestReset(e.ctx, e.a, "demo@demo.fr", ""))
	e.workRequests()
	tok := e.tokenFromLink(e.lastEmail(), e.a, "/mot-de-passe/")
	e.clock.Advance(time.Hour + time.Second)
	if _, err := e.svc.PeekToken(e.ctx, e.a.ID, tok, PurposeReset); !errors.Is(err, ErrTokenInvalid) {
		t.Fatal("peek of an expired token")
	}
	if err := e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeReset, "Nouveau-Mot-De-Passe-42"); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("expired reset link: %v", err)
	}
}

func TestResetTokenDiesWithPasswordChange(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	e.must(e.svc.RequestReset(e.ctx, e.a, "demo@demo.fr", ""))
	e.workRequests()
	tok := e.tokenFromLink(e.lastEmail(), e.a, "/mot-de-passe/")
	e.must(e.svc.ChangePassword(e.ctx, e.a, acc.ID, goodPassword, "Nouveau-Mot-De-Passe-42", ""))
	if err := e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeReset, "Encore-Un-Autre-42"); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("reset link after a password change: %v", err)
	}
}

func TestResetRateLimitedSilently(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	for range 8 {
		if err := e.svc.RequestReset(e.ctx, e.a, "demo@demo.fr", "192.0.2.9"); err != nil {
			t.Fatal(err)
		}
	}
	e.workRequests()
	if n := len(e.sentEmails()); n != 5 {
		t.Fatalf("%d reset emails, want 5 (per-email limit)", n)
	}
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	e.newAccount(e.a, "R2", "Pending", "pending@demo.fr", StatusPending, "")
	e.newAccount(e.a, "R3", "Off", "off@demo.fr", StatusDisabled, goodPassword)

	got, err := e.svc.Authenticate(e.ctx, e.a, "  DEMO@demo.fr ", goodPassword, "192.0.2.1")
	if err != nil || got.ID != acc.ID {
		t.Fatalf("login: %v %v", got, err)
	}
	var errs []error
	for _, c := range []struct{ email, pw string }{
		{"ghost@demo.fr", goodPassword},    // unknown email
		{"demo@demo.fr", "wrong password"}, // wrong password
		{"pending@demo.fr", goodPassword},  // pending
		{"off@demo.fr", goodPassword},      // disabled
		{"", ""},
	} {
		e.clock.Advance(time.Hour) // no throttling here
		_, err := e.svc.Authenticate(e.ctx, e.a, c.email, c.pw, "192.0.2.1")
		errs = append(errs, err)
	}
	for i, err := range errs {
		if err != ErrInvalidCredentials || err.Error() != errs[0].Error() {
			t.Fatalf("case %d: %v (must be identical to %v)", i, err, errs[0])
		}
	}
	// The account of tenant A does not exist on tenant B.
	if _, err := e.svc.Authenticate(e.ctx, e.b, "demo@demo.fr", goodPassword, ""); err != ErrInvalidCredentials {
		t.Fatalf("tenant B: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'login.failed'`, e.a.ID); n != 5 {
		t.Fatalf("%d login.failed audit rows", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE details::text LIKE '%' || $1 || '%'`, goodPassword); n != 0 {
		t.Fatal("a password reached the audit log")
	}
}

// A wrong password and an unknown email (or an account without a password)
// must do the same work: the same database writes and one argon2
// verification each, with the current parameters (see
// TestDummyVerifyUsesTheParametersOfARealHash). make bench times them.
func TestLoginWritesAlikeForUnknownAndWrongPassword(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	e.newAccount(e.a, "R2", "Pending", "pending@demo.fr", StatusPending, "")
	w := e.recordWrites()
	cases := []struct{ what, email, pw string }{
		{"wrong password", "demo@demo.fr", "wrong password"},
		{"unknown email", "ghost@demo.fr", "wrong password"},
		{"account without password", "pending@demo.fr", goodPassword},
	}
	for round := range 2 { // first failure (rows created), then a second one
		var first map[string]int
		for i, c := range cases {
			n := e.svc.Hasher.Verifications()
			_, err := e.svc.Authenticate(e.ctx, e.a, c.email, c.pw, fmt.Sprintf("192.0.2.%d", i+1))
			if err != ErrInvalidCredentials {
				t.Fatalf("%s: %v", c.what, err)
			}
			if v := e.svc.Hasher.Verifications() - n; v != 1 {
				t.Errorf("round %d, %s: %d argon2 verifications, want 1", round, c.what, v)
			}
			got := w.take()
			if i == 0 {
				first = got
				if got["audit_log INSERT"] != 1 || got["login_throttle UPDATE"] != 2 {
					t.Fatalf("round %d, %s wrote %s", round, c.what, formatWrites(got))
				}
			} else if !maps.Equal(got, first) {
				t.Errorf("round %d: %s wrote %s; %s wrote %s", round, cases[0].what, formatWrites(first), c.what, formatWrites(got))
			}
		}
	}
}

func TestAuthenticateRehashes(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword) // cheap params
	e.svc.Hasher = auth.NewHasher(2)                                                   // parameters changed
	if _, err := e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", goodPassword, ""); err != nil {
		t.Fatal(err)
	}
	var hash string
	e.must(e.db.Get(&hash, `SELECT password_hash FROM accounts WHERE tenant_id = $1 AND id = $2`, e.a.ID, acc.ID))
	if !strings.Contains(hash, "m=19456,t=2,p=1") {
		t.Fatalf("not rehashed: %s", hash)
	}
	if _, err := e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", goodPassword, ""); err != nil {
		t.Fatal(err)
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	keep, _, _ := e.sess.Create(e.ctx, e.a.ID, acc.ID)
	other, _, _ := e.sess.Create(e.ctx, e.a.ID, acc.ID)
	rem, _, _ := e.svc.IssueRemember(e.ctx, e.a.ID, acc.ID)

	if err := e.svc.ChangePassword(e.ctx, e.a, acc.ID, "", "Nouveau-Mot-De-Passe-42", keep); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("empty current: %v", err)
	}
	if err := e.svc.ChangePassword(e.ctx, e.a, acc.ID, "wrong", "Nouveau-Mot-De-Passe-42", keep); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong current: %v", err)
	}
	var pe *PolicyError
	if err := e.svc.ChangePassword(e.ctx, e.a, acc.ID, goodPassword, "password1", keep); !errors.As(err, &pe) {
		t.Fatalf("weak new password: %v", err)
	}
	e.must(e.svc.ChangePassword(e.ctx, e.a, acc.ID, goodPassword, "Nouveau-Mot-De-Passe-42", keep))
	if _, err := e.sess.Load(e.ctx, e.a.ID, keep); err != nil {
		t.Fatalf("current session revoked: %v", err)
	}
	if _, err := e.sess.Load(e.ctx, e.a.ID, other); !errors.Is(err, ErrSessionNotFound) {
		t.Fatal("other session survived")
	}
	if _, _, err := e.svc.UseRemember(e.ctx, e.a, rem); err == nil {
		t.Fatal("remember-me survived")
	}
	if _, err := e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", "Nouveau-Mot-De-Passe-42", ""); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'password.changed'`, e.a.ID); n != 1 {
		t.Fatal("not audited")
	}
}

func TestEmailChange(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "old@demo.fr", StatusActive, goodPassword)
	e.newAccount(e.a, "R2", "Other", "taken@demo.fr", StatusPending, "")
	e.newAccount(e.b, "R1", "Other tenant", "new@demo.fr", StatusActive, goodPassword)

	if err := e.svc.RequestEmailChange(e.ctx, e.a, acc.ID, goodPassword, "not-an-email"); !errors.Is(err, ErrInvalidEmail) {
		t.Fatalf("invalid: %v", err)
	}
	if err := e.svc.RequestEmailChange(e.ctx, e.a, acc.ID, "wrong", "new@demo.fr"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := e.svc.RequestEmailChange(e.ctx, e.a, acc.ID, goodPassword, "Taken@demo.fr"); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("taken: %v", err)
	}
	if err := e.svc.RequestEmailChange(e.ctx, e.a, acc.ID, goodPassword, "OLD@demo.fr"); !errors.Is(err, ErrEmailUnchanged) {
		t.Fatalf("same: %v", err)
	}
	if len(e.sentEmails()) != 0 {
		t.Fatal("email sent for a refused change")
	}
	// new@demo.fr is used in tenant B only: free here.
	e.must(e.svc.RequestEmailChange(e.ctx, e.a, acc.ID, goodPassword, "New@Demo.fr"))
	ems := e.sentEmails()
	if len(ems) != 2 {
		t.Fatalf("%d emails", len(ems))
	}
	verify, notice := ems[0], ems[1]
	if verify.Template != "email_change_verify" || verify.To != "new@demo.fr" {
		t.Fatalf("verify %+v", verify)
	}
	if notice.Template != "email_change_notice" || notice.To != "old@demo.fr" || notice.Data["Link"] != nil {
		t.Fatalf("notice %+v", notice)
	}
	tok := e.tokenFromLink(verify, e.a, "/adresse/")
	pk, err := e.svc.PeekToken(e.ctx, e.a.ID, tok, PurposeEmailChange)
	if err != nil || pk.NewEmail != "new@demo.fr" || pk.AccountID != acc.ID {
		t.Fatalf("peek %+v %v", pk, err)
	}
	if err := e.svc.ConfirmEmailChange(e.ctx, e.b, tok); !errors.Is(err, ErrTokenInvalid) {
		t.Fatal("confirmed on another tenant")
	}
	e.must(e.svc.ConfirmEmailChange(e.ctx, e.a, tok))
	if got, _ := e.svc.FindByEmail(e.ctx, e.a.ID, "NEW@demo.fr"); got == nil || got.ID != acc.ID {
		t.Fatal("new address is not the login")
	}
	if _, err := e.svc.FindByEmail(e.ctx, e.a.ID, "old@demo.fr"); !errors.Is(err, ErrNotFound) {
		t.Fatal("old address still known")
	}
	if _, err := e.svc.Authenticate(e.ctx, e.a, "new@demo.fr", goodPassword, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ConfirmEmailChange(e.ctx, e.a, tok); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("reused: %v", err)
	}
}

func TestEmailChangeLosesRace(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "old@demo.fr", StatusActive, goodPassword)
	e.must(e.svc.RequestEmailChange(e.ctx, e.a, acc.ID, goodPassword, "new@demo.fr"))
	tok := e.tokenFromLink(e.sentEmails()[0], e.a, "/adresse/")
	// Meanwhile another payer gets that address.
	e.newAccount(e.a, "R2", "Other", "new@demo.fr", StatusPending, "")
	if err := e.svc.ConfirmEmailChange(e.ctx, e.a, tok); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("got %v", err)
	}
	if got, _ := e.svc.Get(e.ctx, e.a.ID, acc.ID); got.Email != "old@demo.fr" {
		t.Fatal("email changed anyway")
	}
}

func TestSetPaperless(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "REF-42", "Test SISTEC560", "demo@demo.fr", StatusActive, goodPassword)
	e.must(e.svc.SetPaperless(e.ctx, e.a, acc.ID, true))
	em := e.lastEmail()
	if em.Template != "paperless" || em.To != e.a.ContactEmail || em.ReplyTo != "demo@demo.fr" ||
		em.Data["Reference"] != "REF-42" || em.Data["DisplayName"] != "Test SISTEC560" ||
		em.Data["Email"] != "demo@demo.fr" || em.Data["Paperless"] != true {
		t.Fatalf("email %+v", em)
	}
	got, _ := e.svc.Get(e.ctx, e.a.ID, acc.ID)
	if !got.Paperless || got.PaperlessAt == nil || !got.PaperlessAt.Equal(e.clock.Now()) {
		t.Fatalf("account %+v", got)
	}
	e.must(e.svc.SetPaperless(e.ctx, e.a, acc.ID, true)) // unchanged
	if n := len(e.sentEmails()); n != 1 {
		t.Fatalf("%d emails after a no-op", n)
	}
	e.must(e.svc.SetPaperless(e.ctx, e.a, acc.ID, false))
	if em := e.lastEmail(); em.Data["Paperless"] != false {
		t.Fatalf("off email %+v", em)
	}
	e.a.PaperlessEnabled = false
	if err := e.svc.SetPaperless(e.ctx, e.a, acc.ID, true); !errors.Is(err, ErrPaperlessDisabled) {
		t.Fatal(err)
	}
	// Another tenant's account is not reachable.
	if err := e.svc.SetPaperless(e.ctx, e.b, acc.ID, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tenant B: %v", err)
	}
}

func TestSendContactMessage(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "REF-42", "Test", "demo@demo.fr", StatusActive, goodPassword)
	var ie *InputError
	for _, c := range []struct{ subject, body, field string }{
		{"Objet", "", "body"},
		{"Objet", "   \n ", "body"},
		{"Objet", rep("é", 5001), "body"},
		{rep("a", 201), "Bonjour", "subject"},
		{"Objet", "nul\x00byte", "body"},
	} {
		if _, err := e.svc.SendContactMessage(e.ctx, e.a, acc.ID, c.subject, c.body); !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%q/%d runes: %v", c.subject, len(c.body), err)
		}
	}
	if len(e.sentEmails()) != 0 {
		t.Fatal("email for an invalid message")
	}
	id, err := e.svc.SendContactMessage(e.ctx, e.a, acc.ID, "Question\r\nBcc: x@evil", rep("é", 5000))
	e.must(err)
	em := e.lastEmail()
	if em.Template != "contact_message" || em.To != e.a.ContactEmail || em.ReplyTo != "demo@demo.fr" ||
		em.Data["Subject"] != "Question Bcc: x@evil" || em.Data["Reference"] != "REF-42" {
		t.Fatalf("email %+v", em)
	}
	ms, err := e.svc.ListMessages(e.ctx, e.a.ID, acc.ID)
	e.must(err)
	if len(ms) != 1 || ms[0].ID != id || ms[0].Direction != FromResident || len([]rune(ms[0].Body)) != 5000 {
		t.Fatalf("messages %+v", ms)
	}
	if ms, _ := e.svc.ListMessages(e.ctx, e.b.ID, acc.ID); len(ms) != 0 {
		t.Fatal("messages visible from tenant B")
	}
}
