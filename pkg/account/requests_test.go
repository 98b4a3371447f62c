package account

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// requestJobs returns the kind and argument names of every job but emails,
// oldest first.
func (e *env) requestJobs() []string {
	e.t.Helper()
	var rows []struct {
		Kind string `db:"kind"`
		Args []byte `db:"args"`
	}
	e.must(e.db.Select(&rows, `SELECT kind, args FROM river_job WHERE kind <> 'send_email' ORDER BY id`))
	out := make([]string, len(rows))
	for i, r := range rows {
		var args map[string]any
		e.must(json.Unmarshal(r.Args, &args))
		out[i] = fmt.Sprintf("%s %v", r.Kind, slices.Sorted(maps.Keys(args)))
	}
	return out
}

// checkSameWrites makes one request per address (each from its own IP) in
// two rounds and checks that each round's requests wrote exactly the same
// rows: what an attacker times is the same work whatever the address.
func (e *env) checkSameWrites(addrs []string, request func(email, ip string) error) {
	e.t.Helper()
	w := e.recordWrites()
	for round := range 2 { // new rate-limit rows, then updated ones
		var first map[string]int
		for i, addr := range addrs {
			if err := request(addr, fmt.Sprintf("192.0.2.%d", i+1)); err != nil {
				e.t.Fatalf("%s: %v", addr, err)
			}
			got := w.take()
			if i == 0 {
				first = got
				if got["river_job INSERT"] != 1 {
					e.t.Fatalf("round %d, %s wrote %s: want one job", round, addr, formatWrites(got))
				}
			} else if !maps.Equal(got, first) {
				e.t.Errorf("round %d: %s wrote %s; %s wrote %s", round, addrs[0], formatWrites(first), addr, formatWrites(got))
			}
		}
	}
	jobs := e.requestJobs()
	if len(jobs) != 2*len(addrs) {
		e.t.Fatalf("jobs %v", jobs)
	}
	for _, j := range jobs {
		if j != jobs[0] || !strings.HasPrefix(j, "account_address_request [email ") {
			e.t.Fatalf("jobs differ in kind or arguments: %v", jobs)
		}
	}
}

func TestResetRequestWritesAlikeForAnyAddress(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	e.newAccount(e.a, "R2", "Pending", "pending@demo.fr", StatusPending, "")
	e.newAccount(e.a, "R3", "Off", "off@demo.fr", StatusDisabled, goodPassword)
	e.newAccount(e.b, "R1", "Other commune", "elsewhere@demo.fr", StatusActive, goodPassword)
	e.checkSameWrites([]string{"demo@demo.fr", "ghost@demo.fr", "pending@demo.fr", "off@demo.fr", "elsewhere@demo.fr"},
		func(email, ip string) error { return e.svc.RequestReset(e.ctx, e.a, email, ip) })

	// The jobs then email a link to the active account only.
	if n := len(e.sentEmails()); n != 0 {
		t.Fatalf("%d emails enqueued by the requests themselves", n)
	}
	e.workRequests()
	ems := e.sentEmails()
	if len(ems) != 2 {
		t.Fatalf("%d emails, want one per round to the active account: %+v", len(ems), ems)
	}
	for _, em := range ems {
		if em.Template != "reset" || em.To != "demo@demo.fr" {
			t.Fatalf("email %+v", em)
		}
	}
	e.tokenFromLink(ems[1], e.a, "/mot-de-passe/")
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'password.reset_requested' AND ip = '192.0.2.1'`); n != 2 {
		t.Fatalf("%d audit rows for the reset requests", n)
	}
	if n := e.count(`SELECT count(*) FROM account_tokens`); n != 2 {
		t.Fatalf("%d tokens", n)
	}
}

func TestNeutralActivationWritesAlikeForAnyAddress(t *testing.T) {
	e := newEnv(t)
	e.a.ActivationMessages = "neutral"
	e.newAccount(e.a, "R1", "Test SISTEC560", "demo@demo.fr", StatusPending, "")
	e.newAccount(e.a, "R2", "Active", "active@demo.fr", StatusActive, goodPassword)
	e.newAccount(e.a, "R3", "Off", "off@demo.fr", StatusDisabled, "")
	e.checkSameWrites([]string{"demo@demo.fr", "ghost@demo.fr", "active@demo.fr", "off@demo.fr"},
		func(email, _ string) error {
			got, err := e.svc.RequestActivation(e.ctx, e.a, email)
			if err == nil && got != ActivationRequested {
				return fmt.Errorf("outcome %v, want %v", got, ActivationRequested)
			}
			return err
		})
	e.workRequests()
	ems := e.sentEmails()
	if len(ems) != 2 {
		t.Fatalf("%d emails, want one per round to the pending account: %+v", len(ems), ems)
	}
	for _, em := range ems {
		if em.Template != "activation" || em.To != "demo@demo.fr" || em.Data["DisplayName"] != "Test SISTEC560" {
			t.Fatalf("email %+v", em)
		}
	}
	tok := e.tokenFromLink(ems[1], e.a, "/activation/")
	e.must(e.svc.SetPasswordWithToken(e.ctx, e.a, tok, PurposeActivation, goodPassword))

	// Bad input is still told (its syntax is no secret), and the limit per
	// address holds for known and unknown ones alike.
	if _, err := e.svc.RequestActivation(e.ctx, e.a, "not an email"); !errors.Is(err, ErrInvalidEmail) {
		t.Fatalf("invalid address: %v", err)
	}
	for _, addr := range []string{"demo@demo.fr", "ghost@demo.fr"} {
		for range 3 { // 2 already made above
			if _, err := e.svc.RequestActivation(e.ctx, e.a, addr); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.svc.RequestActivation(e.ctx, e.a, addr); !errors.Is(err, ErrTooManyRequests) {
			t.Fatalf("%s, 6th request: %v", addr, err)
		}
	}
}

// A request is done at most once: its effects commit with the job's
// completion, so a job retried after a failure never sends a second link.
func TestAddressRequestEffectsCommitWithCompletion(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	args := AddressRequestArgs{TenantID: e.a.ID, Purpose: PurposeReset, Email: "demo@demo.fr", RequestedAt: e.clock.Now()}
	failed := errors.New("completion failed")
	if err := e.svc.handleAddressRequest(e.ctx, e.a, args, func(*sqlx.Tx) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("got %v", err)
	}
	if n := len(e.sentEmails()) + e.count(`SELECT count(*) FROM account_tokens`) + e.count(`SELECT count(*) FROM audit_log`); n != 0 {
		t.Fatal("a failed attempt left an email, a token or an audit row")
	}
	e.must(e.svc.handleAddressRequest(e.ctx, e.a, args, func(*sqlx.Tx) error { return nil }))
	if n := len(e.sentEmails()); n != 1 {
		t.Fatalf("%d emails after the retry", n)
	}
}

// A request worked later than its link's lifetime sends nothing.
func TestStaleResetRequestIsDropped(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "R1", "Test", "demo@demo.fr", StatusActive, goodPassword)
	e.must(e.svc.RequestReset(e.ctx, e.a, "demo@demo.fr", ""))
	e.clock.Advance(time.Hour)
	e.workRequests()
	if n := len(e.sentEmails()); n != 0 {
		t.Fatalf("%d emails for a request an hour old", n)
	}
}
