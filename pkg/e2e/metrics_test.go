package e2e

import (
	"testing"
	"time"

	"portail/pkg/apptest"
)

// mustHavePaymentMetrics scrapes the metrics listener after a browser
// journey that paid 2017-020-002059 (243,11 €) in mode: the pages visited
// are counted under their route templates, the payment under its mode and
// outcome with its amount, and the confirmation email as sent.
func mustHavePaymentMetrics(t *testing.T, e *apptest.Env, mode string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var s apptest.Scrape
	for {
		s = e.ScrapeMetrics()
		if v, _ := s.Value("portail_emails_total", "template", "payment_confirmation", "outcome", "sent"); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("metrics: the confirmation email was never counted as sent")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"portail_http_requests_total", []string{"route", "/factures/:id", "method", "GET", "class", "2xx"}, 1},
		{"portail_http_requests_total", []string{"route", "/paiement", "method", "POST", "class", "3xx"}, 1},
		{"portail_http_request_duration_seconds", []string{"route", "/factures", "method", "GET"}, 1},
		{"portail_http_requests_by_commune_total", []string{"commune", "sistec", "class", "2xx"}, 5},
		{"portail_payments_started_total", []string{"mode", mode}, 1},
		{"portail_payments_total", []string{"mode", mode, "outcome", "paid"}, 1},
		{"portail_payments_paid_cents_total", []string{"mode", mode}, 24311},
		{"portail_jobs_total", []string{"kind", "send_email", "outcome", "completed"}, 1},
	} {
		if v, _ := s.Value(want.name, want.labels...); v < want.min {
			t.Errorf("%s%v = %v, want at least %v", want.name, want.labels, v, want.min)
		}
	}
	if v, _ := s.Value("portail_payments_paid_cents_total", "mode", mode); v != 24311 {
		t.Errorf("cents paid in %s mode: %v, want 24311", mode, v)
	}
	source := "notification"
	if mode == "classic" {
		source = "callback"
	}
	if v, _ := s.Value("portail_payfip_results_received_total", "source", source); v < 1 {
		t.Errorf("no result counted from PayFiP's server (%s)", source)
	}
}
