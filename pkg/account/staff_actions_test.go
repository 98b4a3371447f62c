package account

import (
	"errors"
	"testing"
	"time"
)

// Disabling ends what the account had open (sessions, remember-me,
// links) and enabling gives back the state it had earned: activated with
// a password, not activated without.
func TestStaffDisableAndEnable(t *testing.T) {
	e := newEnv(t)
	active := e.newAccount(e.a, "R1", "Actif", "actif@example.fr", StatusActive, goodPassword)
	pending := e.newAccount(e.a, "R2", "En attente", "attente@example.fr", StatusPending, "")
	raw, _, err := e.sess.Create(e.ctx, e.a.ID, active.ID)
	e.must(err)
	_, _, err = e.svc.IssueRemember(e.ctx, e.a.ID, active.ID)
	e.must(err)
	_, err = e.svc.RequestActivation(e.ctx, e.a, pending.Email)
	e.must(err)

	before, after, err := e.svc.SetDisabled(e.ctx, e.a, active.ID, true)
	if err != nil || before != StatusActive || after != StatusDisabled {
		t.Fatalf("disable: %s → %s, %v", before, after, err)
	}
	if _, err := e.sess.Load(e.ctx, e.a.ID, raw); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("the disabled account's session: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM remember_tokens WHERE account_id = $1`, active.ID); n != 0 {
		t.Fatalf("%d remember-me tokens left", n)
	}
	if _, _, err := e.svc.SetDisabled(e.ctx, e.a, active.ID, true); !errors.Is(err, ErrStatusUnchanged) {
		t.Fatalf("disable twice: %v", err)
	}
	// A closed account (its resident's choice) is neither disabled nor
	// enabled by staff: enabling would make it a pending account again.
	closed := e.newAccount(e.a, "R3", "Fermé", "ferme@example.fr", StatusPending, "")
	if _, err := e.db.Exec(`UPDATE accounts SET status = 'closed', closed_at = now() WHERE id = $1`, closed.ID); err != nil {
		t.Fatal(err)
	}
	for _, disable := range []bool{true, false} {
		if _, _, err := e.svc.SetDisabled(e.ctx, e.a, closed.ID, disable); !errors.Is(err, ErrAccountClosed) {
			t.Fatalf("closed account, disable=%v: %v", disable, err)
		}
	}
	if n := e.count(`SELECT count(*) FROM accounts WHERE id = $1 AND status = 'closed'`, closed.ID); n != 1 {
		t.Fatal("the closed account's status changed")
	}
	if _, _, err := e.svc.SetDisabled(e.ctx, e.b, pending.ID, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another commune's account: %v", err)
	}
	if _, err := e.svc.Authenticate(e.ctx, e.a, active.Email, goodPassword, "192.0.2.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("a disabled account logs in: %v", err)
	}
	if _, after, err := e.svc.SetDisabled(e.ctx, e.a, active.ID, false); err != nil || after != StatusActive {
		t.Fatalf("enable the activated one: %s %v", after, err)
	}
	if _, err := e.svc.Authenticate(e.ctx, e.a, active.Email, goodPassword, "192.0.2.1"); err != nil {
		t.Fatalf("enabled account: %v", err)
	}

	// The pending account's activation link dies with the disabling.
	e.must(e.svc.ResendActivation(e.ctx, e.a, pending.ID))
	tok := e.tokenFromLink(e.lastEmail(), e.a, "/activation/")
	if _, _, err := e.svc.SetDisabled(e.ctx, e.a, pending.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ResendActivation(e.ctx, e.a, pending.ID); !errors.Is(err, ErrAccountInactive) {
		t.Fatalf("resend to a disabled account: %v", err)
	}
	if _, after, err := e.svc.SetDisabled(e.ctx, e.a, pending.ID, false); err != nil || after != StatusPending {
		t.Fatalf("enable the never activated one: %s %v", after, err)
	}
	if err := e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeActivation, goodPassword); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("a link sent before the disabling still works: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action IN ('account.disabled', 'account.enabled')`); n != 4 {
		t.Fatalf("%d status changes journaled, want 4", n)
	}
}

// Resending the activation email shares the activation page's limit per
// address, and is refused for an activated account.
func TestStaffResendActivationIsThrottled(t *testing.T) {
	e := newEnv(t)
	pending := e.newAccount(e.a, "R2", "En attente", "attente@example.fr", StatusPending, "")
	active := e.newAccount(e.a, "R1", "Actif", "actif@example.fr", StatusActive, goodPassword)
	if err := e.svc.ResendActivation(e.ctx, e.a, active.ID); !errors.Is(err, ErrAlreadyActive) {
		t.Fatalf("resend to an activated account: %v", err)
	}
	sent := 0
	for range 10 {
		err := e.svc.ResendActivation(e.ctx, e.a, pending.ID)
		if errors.Is(err, ErrTooManyRequests) {
			break
		}
		e.must(err)
		sent++
	}
	if sent != 5 {
		t.Fatalf("%d activation emails resent in an hour, want the limit of 5", sent)
	}
	if n := len(e.sentEmails()); n != 5 {
		t.Fatalf("%d emails enqueued", n)
	}
	if em := e.lastEmail(); em.Template != "activation" || em.To != pending.Email {
		t.Fatalf("email %+v", em)
	}
	e.clock.Advance(61 * time.Minute)
	e.must(e.svc.ResendActivation(e.ctx, e.a, pending.ID))
}
