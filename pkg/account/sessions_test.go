package account

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"portail/pkg/auth"
)

func TestSessions(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	id, s, err := e.sess.Create(e.ctx, e.a.ID, acc.ID)
	e.must(err)
	if len(id) < 22 || s.AccountID != acc.ID {
		t.Fatalf("create: %q %+v", id, s)
	}
	id2, _, _ := e.sess.Create(e.ctx, e.a.ID, acc.ID)
	if id2 == id {
		t.Fatal("same id twice")
	}
	if n := e.count(`SELECT count(*) FROM sessions WHERE encode(id_hash, 'escape') LIKE '%' || $1 || '%'`, id); n != 0 {
		t.Fatal("raw session id stored")
	}
	got, err := e.sess.Load(e.ctx, e.a.ID, id)
	if err != nil || got.AccountID != acc.ID {
		t.Fatalf("load: %+v %v", got, err)
	}
	// A session of tenant A presented on tenant B is void.
	if _, err := e.sess.Load(e.ctx, e.b.ID, id); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("tenant B loaded tenant A's session: %v", err)
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 43), id + "A", "'; DROP TABLE sessions; --"} {
		if _, err := e.sess.Load(e.ctx, e.a.ID, bad); !errors.Is(err, ErrSessionNotFound) {
			t.Fatalf("%q: %v", bad, err)
		}
	}

	// Flags.
	e.must(e.sess.SetFlag(e.ctx, e.a.ID, id, "notice_closed", "1"))
	if err := e.sess.SetFlag(e.ctx, e.b.ID, id, "notice_closed", "1"); !errors.Is(err, ErrSessionNotFound) {
		t.Fatal("flag set through tenant B")
	}
	got, _ = e.sess.Load(e.ctx, e.a.ID, id)
	if got.Flags["notice_closed"] != "1" {
		t.Fatalf("flags %v", got.Flags)
	}

	// last_seen_at is written at most once a minute.
	seen := func() time.Time {
		var ts time.Time
		e.must(e.db.Get(&ts, `SELECT last_seen_at FROM sessions WHERE tenant_id = $1 AND id_hash = $2`, e.a.ID, auth.Hash(id)))
		return ts
	}
	before := seen()
	e.clock.Advance(30 * time.Second)
	e.sess.Load(e.ctx, e.a.ID, id)
	if !seen().Equal(before) {
		t.Fatal("touched within the minute")
	}
	e.clock.Advance(31 * time.Second)
	e.sess.Load(e.ctx, e.a.ID, id)
	if !seen().Equal(e.clock.Now()) {
		t.Fatal("not touched after a minute")
	}

	// Logout.
	e.must(e.sess.Delete(e.ctx, e.a.ID, id2))
	if _, err := e.sess.Load(e.ctx, e.a.ID, id2); !errors.Is(err, ErrSessionNotFound) {
		t.Fatal("deleted session loads")
	}
}

func TestSessionTimeouts(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)

	idle, _, _ := e.sess.Create(e.ctx, e.a.ID, acc.ID)
	e.clock.Advance(29 * time.Minute)
	if _, err := e.sess.Load(e.ctx, e.a.ID, idle); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Minute)
	if _, err := e.sess.Load(e.ctx, e.a.ID, idle); !errors.Is(err, ErrSessionNotFound) {
		t.Fatal("idle session still valid")
	}
	if n := e.count(`SELECT count(*) FROM sessions`); n != 0 {
		t.Fatal("expired session not deleted")
	}

	abs, _, _ := e.sess.Create(e.ctx, e.a.ID, acc.ID)
	for range 12 * 3 { // active every 20 minutes for 12 hours
		e.clock.Advance(20 * time.Minute)
		_, err := e.sess.Load(e.ctx, e.a.ID, abs)
		if e.clock.Now().Sub(time.Date(2026, 11, 26, 10, 59, 0, 0, time.UTC)) < 12*time.Hour {
			if err != nil {
				t.Fatalf("at %s: %v", e.clock.Now(), err)
			}
		} else if !errors.Is(err, ErrSessionNotFound) {
			t.Fatalf("session older than 12h still valid at %s", e.clock.Now())
		}
	}
}

func TestSessionsOfDisabledAccountAndBulkDelete(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	other := e.newAccount(e.a, "R2", "Other", "other@demo.fr", StatusActive, goodPassword)
	ids := make([]string, 3)
	for i := range ids {
		ids[i], _, _ = e.sess.Create(e.ctx, e.a.ID, acc.ID)
	}
	otherID, _, _ := e.sess.Create(e.ctx, e.a.ID, other.ID)
	e.must(e.sess.DeleteAllForAccount(e.ctx, e.a.ID, acc.ID, ids[0]))
	if _, err := e.sess.Load(e.ctx, e.a.ID, ids[0]); err != nil {
		t.Fatal("kept session deleted")
	}
	for _, id := range ids[1:] {
		if _, err := e.sess.Load(e.ctx, e.a.ID, id); !errors.Is(err, ErrSessionNotFound) {
			t.Fatal("session not deleted")
		}
	}
	if _, err := e.sess.Load(e.ctx, e.a.ID, otherID); err != nil {
		t.Fatal("another account's session deleted")
	}
	e.db.MustExec(`UPDATE accounts SET status = 'disabled' WHERE tenant_id = $1 AND id = $2`, e.a.ID, acc.ID)
	if _, err := e.sess.Load(e.ctx, e.a.ID, ids[0]); !errors.Is(err, ErrSessionNotFound) {
		t.Fatal("disabled account's session still valid")
	}
}

func TestRememberMe(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	c1, exp, err := e.svc.IssueRemember(e.ctx, e.a.ID, acc.ID)
	e.must(err)
	if exp.After(e.clock.Now().Add(30*24*time.Hour)) || !strings.Contains(c1, ":") {
		t.Fatalf("cookie %q expires %v", c1, exp)
	}
	sel, val, _ := strings.Cut(c1, ":")
	if n := e.count(`SELECT count(*) FROM remember_tokens WHERE encode(validator_hash, 'escape') LIKE '%' || $1 || '%'`, val); n != 0 {
		t.Fatal("validator stored in clear")
	}
	// Another tenant does not know it.
	if _, _, err := e.svc.UseRemember(e.ctx, e.b, c1); !errors.Is(err, ErrRememberInvalid) {
		t.Fatalf("tenant B: %v", err)
	}
	id, c2, err := e.svc.UseRemember(e.ctx, e.a, c1)
	if err != nil || id != acc.ID || c2 == c1 || !strings.HasPrefix(c2, sel+":") {
		t.Fatalf("use: %d %q %v", id, c2, err)
	}
	id, c3, err := e.svc.UseRemember(e.ctx, e.a, c2)
	if err != nil || id != acc.ID {
		t.Fatalf("second use: %v", err)
	}
	for _, bad := range []string{"", "nocolon", "a:b", sel + ":", ":" + val} {
		if _, _, err := e.svc.UseRemember(e.ctx, e.a, bad); !errors.Is(err, ErrRememberInvalid) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if n := e.count(`SELECT count(*) FROM remember_tokens`); n != 1 {
		t.Fatal("garbage cookies revoked tokens")
	}
	_ = c3
}

func TestRememberMeReplayRevokesAll(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	other := e.newAccount(e.a, "R2", "Other", "other@demo.fr", StatusActive, goodPassword)
	laptop, _, _ := e.svc.IssueRemember(e.ctx, e.a.ID, acc.ID)
	phone, _, _ := e.svc.IssueRemember(e.ctx, e.a.ID, acc.ID)
	otherCookie, _, _ := e.svc.IssueRemember(e.ctx, e.a.ID, other.ID)
	victimSession, _, err := e.sess.Create(e.ctx, e.a.ID, acc.ID)
	e.must(err)
	otherSession, _, err := e.sess.Create(e.ctx, e.a.ID, other.ID)
	e.must(err)

	// The thief uses the copied cookie first and gets a session from it.
	_, rotated, err := e.svc.UseRemember(e.ctx, e.a, laptop)
	e.must(err)
	thiefSession, _, err := e.sess.Create(e.ctx, e.a.ID, acc.ID)
	e.must(err)
	// The old cookie value comes back (the victim's browser): everything is revoked.
	if _, _, err := e.svc.UseRemember(e.ctx, e.a, laptop); !errors.Is(err, ErrRememberReplayed) {
		t.Fatalf("replay: %v", err)
	}
	for name, sid := range map[string]string{"thief's": thiefSession, "victim's": victimSession} {
		if _, err := e.sess.Load(e.ctx, e.a.ID, sid); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("the %s session survived the replay: %v", name, err)
		}
	}
	if _, err := e.sess.Load(e.ctx, e.a.ID, otherSession); err != nil {
		t.Errorf("another account's session ended: %v", err)
	}
	ems := e.sentEmails()
	if len(ems) != 1 || ems[0].Template != "sessions_closed" || ems[0].To != "demo@demo.fr" ||
		ems[0].Data["Link"] != "https://sistec.example.fr/" || ems[0].Data["DisplayName"] != "Test" {
		t.Fatalf("emails after the replay: %+v", ems)
	}
	for _, c := range []string{rotated, phone} {
		if _, _, err := e.svc.UseRemember(e.ctx, e.a, c); err == nil {
			t.Fatalf("token %q survived the replay", c)
		}
	}
	if n := e.count(`SELECT count(*) FROM remember_tokens WHERE tenant_id = $1 AND account_id = $2`, e.a.ID, acc.ID); n != 0 {
		t.Fatalf("%d tokens left", n)
	}
	if _, _, err := e.svc.UseRemember(e.ctx, e.a, otherCookie); err != nil {
		t.Fatalf("another account's token revoked: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'remember.replayed'`); n != 1 {
		t.Fatal("replay not audited")
	}
}

func TestRememberMeExpiresAndRevokes(t *testing.T) {
	e := newEnv(t)
	acc := e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	c, _, _ := e.svc.IssueRemember(e.ctx, e.a.ID, acc.ID)
	e.clock.Advance(29 * 24 * time.Hour)
	_, c, err := e.svc.UseRemember(e.ctx, e.a, c)
	e.must(err)
	e.clock.Advance(24*time.Hour + time.Second) // 30 days from issue, rotation does not extend
	if _, _, err := e.svc.UseRemember(e.ctx, e.a, c); !errors.Is(err, ErrRememberInvalid) {
		t.Fatalf("after 30 days: %v", err)
	}
	c, _, _ = e.svc.IssueRemember(e.ctx, e.a.ID, acc.ID)
	e.must(e.svc.RevokeRemember(e.ctx, e.a.ID, acc.ID))
	if _, _, err := e.svc.UseRemember(e.ctx, e.a, c); !errors.Is(err, ErrRememberInvalid) {
		t.Fatalf("revoked: %v", err)
	}
	c, _, _ = e.svc.IssueRemember(e.ctx, e.a.ID, acc.ID)
	e.must(e.svc.ForgetRemember(e.ctx, e.a.ID, c))
	if _, _, err := e.svc.UseRemember(e.ctx, e.a, c); !errors.Is(err, ErrRememberInvalid) {
		t.Fatalf("forgotten: %v", err)
	}
	c, _, _ = e.svc.IssueRemember(e.ctx, e.a.ID, acc.ID)
	e.db.MustExec(`UPDATE accounts SET status = 'disabled' WHERE tenant_id = $1 AND id = $2`, e.a.ID, acc.ID)
	if _, _, err := e.svc.UseRemember(e.ctx, e.a, c); !errors.Is(err, ErrRememberInvalid) {
		t.Fatalf("disabled account: %v", err)
	}
}

func TestLoginThrottling(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	start := e.clock.Now()
	ip := func(i int) string { return fmt.Sprintf("198.51.%d.%d", i/250, i%250+1) } // rotating X-Forwarded-For

	var delays []time.Duration
	for i := range 101 {
		d, err := e.svc.LoginDelay(e.ctx, e.a.ID, "demo@demo.fr", ip(i))
		e.must(err)
		delays = append(delays, d)
		if i < 100 {
			// A client that does not wait is refused, and that refusal is not a counted failure.
			if d > 0 {
				if _, err := e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", "guess", ip(i)); !isThrottled(err) {
					t.Fatalf("attempt %d before the delay: %v", i+1, err)
				}
			}
			e.clock.Advance(d)
			if _, err := e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", fmt.Sprintf("guess-%d", i), ip(i)); err != ErrInvalidCredentials {
				t.Fatalf("failure %d: %v", i+1, err)
			}
			continue
		}
		// 101st attempt: the account's hourly budget is spent.
		e.clock.Advance(30 * time.Second)
		if _, err := e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", "guess", ip(i)); !isThrottled(err) {
			t.Fatalf("101st attempt: %v", err)
		}
	}
	for i, want := range []time.Duration{0, 0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		if delays[i] != want {
			t.Fatalf("delay before attempt %d = %s, want %s (all: %v)", i+1, delays[i], want, delays[:12])
		}
	}
	// 102nd attempt, right password, new IP, still within the hour: refused.
	if e.clock.Now().Sub(start) >= time.Hour {
		t.Fatalf("test took %s of clock: not within the hour", e.clock.Now().Sub(start))
	}
	_, err := e.svc.Authenticate(e.ctx, e.a, "DEMO@demo.fr", goodPassword, "203.0.113.77")
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryAfter <= 0 || te.RetryAfter > time.Hour {
		t.Fatalf("102nd attempt with the right password: %v", err)
	}
	// Hammering during the block does not extend it.
	for range 20 {
		e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", "guess", "203.0.113.78")
	}
	e.clock.Advance(te.RetryAfter)
	if _, err := e.svc.Authenticate(e.ctx, e.a, "demo@demo.fr", goodPassword, "203.0.113.77"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// Success cleared the account's counter.
	if d, _ := e.svc.LoginDelay(e.ctx, e.a.ID, "demo@demo.fr", ""); d != 0 {
		t.Fatalf("delay after success: %s", d)
	}
	if n := e.count(`SELECT count(*) FROM login_throttle WHERE kind = 'account'`); n != 0 {
		t.Fatal("account counter not cleared")
	}
}

func isThrottled(err error) bool {
	var te *ThrottledError
	return errors.As(err, &te)
}

func TestThrottlingUnknownEmailsAndIP(t *testing.T) {
	e := newEnv(t)
	// An unknown email is throttled exactly like a known one.
	for range 4 {
		e.svc.Authenticate(e.ctx, e.a, "ghost@demo.fr", "x", "")
	}
	if d, _ := e.svc.LoginDelay(e.ctx, e.a.ID, "ghost@demo.fr", ""); d != time.Second {
		t.Fatalf("unknown email delay %s", d)
	}
	// One IP spraying many emails: delayed after 10 failures.
	for i := range 10 {
		e.svc.Authenticate(e.ctx, e.a, fmt.Sprintf("u%d@demo.fr", i), "x", "2001:db8:1:2::1")
	}
	// Another address of the same /64 shares the counter.
	if d, _ := e.svc.LoginDelay(e.ctx, e.a.ID, "fresh@demo.fr", "2001:db8:1:2::ffff"); d != 0 {
		t.Fatalf("delay after 10 IP failures: %s", d)
	}
	e.svc.Authenticate(e.ctx, e.a, "u10@demo.fr", "x", "2001:db8:1:2::1")
	if d, _ := e.svc.LoginDelay(e.ctx, e.a.ID, "fresh@demo.fr", "2001:db8:1:2::ffff"); d != time.Second {
		t.Fatalf("delay after 11 IP failures: %s", d)
	}
	// Counters are per tenant.
	if d, _ := e.svc.LoginDelay(e.ctx, e.b.ID, "ghost@demo.fr", "2001:db8:1:2::1"); d != 0 {
		t.Fatalf("tenant B delayed: %s", d)
	}
}

func TestAllow(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		if ok, err := e.svc.Allow(e.ctx, e.a.ID, "forgot", "k", 3, time.Minute); !ok || err != nil {
			t.Fatalf("hit %d: %v %v", i+1, ok, err)
		}
	}
	if ok, _ := e.svc.Allow(e.ctx, e.a.ID, "forgot", "k", 3, time.Minute); ok {
		t.Fatal("4th hit allowed")
	}
	if ok, _ := e.svc.Allow(e.ctx, e.b.ID, "forgot", "k", 3, time.Minute); !ok {
		t.Fatal("tenant B shares the counter")
	}
	if ok, _ := e.svc.Allow(e.ctx, e.a.ID, "other", "k", 3, time.Minute); !ok {
		t.Fatal("buckets share the counter")
	}
	e.clock.Advance(time.Minute)
	if ok, _ := e.svc.Allow(e.ctx, e.a.ID, "forgot", "k", 3, time.Minute); !ok {
		t.Fatal("new window refused")
	}
	e.must(e.svc.Purge(e.ctx))
}
