package app_test

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/devenv"
)

// The mail server refuses connections for many hours of River's retry
// schedule (the test moves each retry's time forward instead of waiting):
// no email is lost, and each is sent exactly once when the server is back.
func TestEmailsSurviveALongSMTPOutage(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	smtpAddr := e.Mail.SMTPAddr
	if err := e.Mail.Close(); err != nil {
		t.Fatal(err)
	}

	recipients := map[string]string{ // address: commune's host
		"demo@demo.fr":             "sistec.localhost",
		"marie.durand@demo.fr":     "sistec.localhost",
		"jean.martin@demo.fr":      "sistec.localhost",
		"famille.lefebvre@demo.fr": "sistec.localhost",
		"paul.roux@demo.fr":        "belcastel.localhost",
		"lucie.fabre@demo.fr":      "belcastel.localhost",
	}
	for to, host := range recipients {
		res, body, err := apptest.PostForm(e.Client(), e.URL(host, "/activation"), url.Values{"email": {to}})
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("activation of %s: %v %s", to, err, body)
		}
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := e.App.DB.Get(&n, q, args...); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM river_job WHERE kind = 'send_email'`); n != len(recipients) {
		t.Fatalf("%d emails enqueued, want %d", n, len(recipients))
	}

	// Each round: every email has failed one more time and waits for its
	// retry; the outage lasts at least as long as the shortest wait. Then
	// the retries are moved to now.
	const rounds = 12
	var outage time.Duration
	for attempt := 1; attempt <= rounds; attempt++ {
		deadline := time.Now().Add(30 * time.Second)
		for count(`SELECT count(*) FROM river_job WHERE kind = 'send_email' AND state = 'retryable' AND attempt >= $1`, attempt) < len(recipients) {
			if n := count(`SELECT count(*) FROM river_job WHERE kind = 'send_email' AND state IN ('completed', 'cancelled', 'discarded')`); n > 0 {
				t.Fatalf("attempt %d: %d emails sent, cancelled or given up on while the server was down", attempt, n)
			}
			if time.Now().After(deadline) {
				t.Fatalf("attempt %d: emails not all waiting for a retry", attempt)
			}
			time.Sleep(20 * time.Millisecond)
		}
		var wait float64
		if err := e.App.DB.Get(&wait, `SELECT min(extract(epoch FROM scheduled_at - attempted_at))
			FROM river_job WHERE kind = 'send_email' AND state = 'retryable'`); err != nil {
			t.Fatal(err)
		}
		outage += time.Duration(wait * float64(time.Second))
		if attempt == rounds {
			break // the server comes back before this last retry
		}
		if _, err := e.App.DB.Exec(`UPDATE river_job SET state = 'available', scheduled_at = now()
			WHERE kind = 'send_email' AND state = 'retryable'`); err != nil {
			t.Fatal(err)
		}
	}
	if outage < 12*time.Hour {
		t.Fatalf("River's schedule covered only %v of outage in %d attempts", outage, rounds)
	}
	t.Logf("%d failed attempts per email cover %v of SMTP outage", rounds, outage.Round(time.Minute))

	mc, err := devenv.StartMailCatcher(filepath.Join(t.TempDir(), "mail"), smtpAddr, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	if _, err := e.App.DB.Exec(`UPDATE river_job SET state = 'available', scheduled_at = now()
		WHERE kind = 'send_email' AND state = 'retryable'`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for count(`SELECT count(*) FROM river_job WHERE kind = 'send_email' AND state = 'completed'`) < len(recipients) {
		if time.Now().After(deadline) {
			t.Fatalf("emails not all sent once the server is back: %d caught", len(mc.Messages()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every job is completed: no later send can come; count what arrived.
	got := map[string]int{}
	for _, m := range mc.Messages() {
		if !strings.Contains(m.Subject, "Accès au portail des factures") {
			t.Errorf("unexpected email %q to %v", m.Subject, m.To)
		}
		for _, to := range m.To {
			got[to]++
		}
	}
	for to := range recipients {
		if got[to] != 1 {
			t.Errorf("%s received %d activation emails, want 1", to, got[to])
		}
	}
	if len(got) != len(recipients) {
		t.Errorf("emails to %d addresses, want %d: %v", len(got), len(recipients), got)
	}
}
