package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/demo"
)

// waitMetric scrapes until cond holds on a scrape (jobs and their events
// finish a moment after the request that caused them).
func waitMetric(t *testing.T, e *apptest.Env, what string, cond func(apptest.Scrape) bool) apptest.Scrape {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := e.ScrapeMetrics()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: %s never seen", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// value is a series' value, 0 when absent.
func value(s apptest.Scrape, name string, labels ...string) float64 {
	v, _ := s.Value(name, labels...)
	return v
}

// A resident's journey, unknown paths and a payment through the PayFiP
// simulator, then a scrape of the metrics listener: every counter moved
// under its route template, status class, commune, mode and outcome; the
// unknown paths share one series; the amount paid is counted in cents.
func TestMetricsAfterAResidentJourneyAndAPayment(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/factures")); res.StatusCode != http.StatusOK {
		t.Fatalf("/factures: %d", res.StatusCode)
	}
	id := invoiceIDByNumber(t, e, "2017-020-002059")
	if res, _ := fetch(t, c, e.URL("sistec.localhost", fmt.Sprintf("/factures/%d", id))); res.StatusCode != http.StatusOK {
		t.Fatalf("invoice page: %d", res.StatusCode)
	}
	// A scanner's unknown paths, on a commune and on an unknown host.
	for i := range 5 {
		res, _ := fetch(t, e.Client(), e.URL("sistec.localhost", fmt.Sprintf("/wp-admin-%d/setup.php", i)))
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown path: %d", res.StatusCode)
		}
	}
	if res, _ := fetch(t, e.Client(), e.URL("inconnu.localhost", "/factures")); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown host: %d", res.StatusCode)
	}

	before := e.ScrapeMetrics()
	payfipURL := startPayment(t, e, c, "sistec.localhost", "2017-020-002059")
	back := payOnSimulator(t, e, payfipURL.String(), "P")
	fetch(t, c, back) // the browser's return: the result is asked to PayFiP
	var paidCents float64
	if err := e.App.DB.QueryRow(`SELECT amount_cents FROM payments WHERE status = 'paid'`).Scan(&paidCents); err != nil {
		t.Fatal(err)
	}

	s := waitMetric(t, e, "the confirmation email's job", func(s apptest.Scrape) bool {
		return value(s, "portail_emails_total", "template", "payment_confirmation", "outcome", "sent") == 1 &&
			value(s, "portail_jobs_total", "kind", "send_email", "outcome", "completed") >= 2
	})

	// Requests by route template, method and status class.
	for _, want := range []struct{ route, method, class string }{
		{"/connexion", "POST", "3xx"},
		{"/factures", "GET", "2xx"},
		{"/factures/:id", "GET", "2xx"},
		{"/paiement", "POST", "3xx"},
		{"/paiement/retour", "GET", "2xx"},
		{"unmatched", "GET", "4xx"},
	} {
		if v := value(s, "portail_http_requests_total", "route", want.route, "method", want.method, "class", want.class); v < 1 {
			t.Errorf("portail_http_requests_total{route=%q,method=%q,class=%q} = %v", want.route, want.method, want.class, v)
		}
		if v := value(s, "portail_http_request_duration_seconds", "route", want.route, "method", want.method); v < 1 {
			t.Errorf("no latency observed for %s %s", want.method, want.route)
		}
	}
	if v := value(s, "portail_http_requests_total", "route", "unmatched", "method", "GET", "class", "4xx"); v != 5 {
		t.Errorf("unknown paths counted %v times under route=unmatched, want 5", v)
	}
	// No path, query or id ever becomes a label value.
	for name, mf := range s {
		if !strings.HasPrefix(name, "portail_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "wp-admin") || strings.Contains(l.GetValue(), "inconnu") {
					t.Errorf("%s has a label from the request: %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, ls := range s.Series("portail_http_requests_total") {
		if !strings.HasPrefix(ls["route"], "/") && ls["route"] != "unmatched" {
			t.Errorf("route label %q is not a route template", ls["route"])
		}
	}
	// By commune: sistec's requests, and the unknown host under none.
	if v := value(s, "portail_http_requests_by_commune_total", "commune", "sistec", "class", "2xx"); v < 3 {
		t.Errorf("sistec 2xx = %v", v)
	}
	if v := value(s, "portail_http_requests_by_commune_total", "commune", "none", "class", "4xx"); v < 1 {
		t.Errorf("unknown host's 404 not counted under commune=none: %v", v)
	}
	for _, ls := range s.Series("portail_http_requests_by_commune_total") {
		if c := ls["commune"]; c != "sistec" && c != "belcastel" && c != "none" {
			t.Errorf("commune label %q is not a known commune", c)
		}
	}

	// The payment: mode, outcome and amount; PayFiP's answers.
	if v := value(s, "portail_payments_total", "mode", "ws", "outcome", "paid") - value(before, "portail_payments_total", "mode", "ws", "outcome", "paid"); v != 1 {
		t.Errorf("paid ws payments moved by %v, want 1", v)
	}
	if v := value(s, "portail_payments_paid_cents_total", "mode", "ws"); v != paidCents || v == 0 {
		t.Errorf("cents paid %v, want %v", v, paidCents)
	}
	if v := value(s, "portail_payments_started_total", "mode", "ws"); v != 1 {
		t.Errorf("ws payments started: %v, want 1", v)
	}
	if v := value(s, "portail_payfip_calls_total", "operation", "creerPaiementSecurise", "outcome", "ok"); v != 1 {
		t.Errorf("creerPaiementSecurise ok = %v, want 1", v)
	}
	if v := value(s, "portail_payfip_calls_total", "operation", "recupererDetailPaiementSecurise", "outcome", "ok"); v < 1 {
		t.Errorf("recupererDetailPaiementSecurise ok = %v", v)
	}
	if v := value(s, "portail_payfip_results_received_total", "source", "notification") +
		value(s, "portail_payfip_results_received_total", "source", "return"); v < 1 {
		t.Errorf("no payment result received counted: %v", v)
	}

	// Jobs, queues and the database pool, read at scrape time.
	if v := value(s, "portail_job_duration_seconds", "kind", "send_email"); v < 2 {
		t.Errorf("send_email run durations observed: %v", v)
	}
	if v, ok := s.Value("portail_jobs_queue_up"); !ok || v != 1 {
		t.Errorf("portail_jobs_queue_up = %v (%v)", v, ok)
	}
	for _, q := range []string{"default", "imports"} {
		if _, ok := s.Value("portail_jobs_queued", "queue", q, "state", "available"); !ok {
			t.Errorf("no portail_jobs_queued series for queue %s", q)
		}
		if _, ok := s.Value("portail_jobs_oldest_available_age_seconds", "queue", q); !ok {
			t.Errorf("no oldest-job age for queue %s", q)
		}
	}
	if v, ok := s.Value("go_sql_max_open_connections", "db_name", "portail"); !ok || v != float64(e.App.DB.Stats().MaxOpenConnections) {
		t.Errorf("go_sql_max_open_connections = %v (%v), want %d", v, ok, e.App.DB.Stats().MaxOpenConnections)
	}
	for _, name := range []string{"go_sql_in_use_connections", "go_sql_idle_connections", "go_sql_wait_count_total", "go_sql_wait_duration_seconds_total"} {
		if _, ok := s.Value(name, "db_name", "portail"); !ok {
			t.Errorf("no %s", name)
		}
	}
}

// /metrics is served by the metrics listener only: on the portal's
// listener it is an ordinary unknown path, on a commune's host, the
// operator's host or a bare address alike.
func TestMetricsNeverOnThePortalsListener(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	for _, host := range []string{"sistec.localhost", "belcastel.localhost", e.App.Config.Operator.Host, "127.0.0.1", "localhost"} {
		for _, path := range []string{"/metrics", "/metrics/", "/api/v1/metrics"} {
			res, body := fetch(t, e.Client(), e.URL(host, path))
			if res.StatusCode != http.StatusNotFound || strings.Contains(body, "portail_http_requests_total") || strings.Contains(body, "go_sql_") {
				t.Errorf("%s%s on the portal's listener: %d\n%.300s", host, path, res.StatusCode, body)
			}
		}
	}
	// The metrics listener serves /metrics and nothing else.
	s := e.ScrapeMetrics()
	if _, ok := s.Value("portail_http_requests_total", "route", "unmatched"); !ok {
		t.Error("the portal's 404s on /metrics were not counted")
	}
	other := strings.TrimSuffix(e.MetricsURL, "/metrics")
	for _, path := range []string{"/", "/factures", "/debug/pprof/"} {
		res, err := http.Get(other + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("metrics listener %s: %d", path, res.StatusCode)
		}
	}
}

// Refused logins and throttled attempts are counted per kind of user.
func TestMetricsCountLoginFailuresAndThrottles(t *testing.T) {
	// The clock stands still: the wait after the free failures never
	// elapses, whatever the machine's speed.
	frozen := time.Now()
	e := apptest.Start(t, apptest.Options{Demo: true, DemoStaff: true, Now: func() time.Time { return frozen }})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	staffEmail := demo.StaffOf("sistec")[1].Email
	for range 6 {
		post(t, e.Client(), e.URL("sistec.localhost", "/connexion"), url.Values{"email": {"demo@demo.fr"}, "password": {"pas le bon"}})
		post(t, e.Client(), e.URL("sistec.localhost", "/admin/connexion"), url.Values{"email": {staffEmail}, "password": {"pas le bon"}})
	}
	s := e.ScrapeMetrics()
	for _, who := range []string{"resident", "staff"} {
		failed, throttled := value(s, "portail_login_failures_total", "who", who), value(s, "portail_login_throttled_total", "who", who)
		// Three failures are free, then each imposes a wait: the next
		// attempts are refused before any password check.
		if failed < 3 || throttled < 1 || failed+throttled != 6 {
			t.Errorf("%s: %v failures and %v throttled of 6 wrong attempts", who, failed, throttled)
		}
	}
	if v := value(s, "portail_http_requests_total", "route", "/connexion", "method", "POST", "class", "4xx"); v < 6 {
		t.Errorf("refused resident logins counted %v times as 4xx", v)
	}
}

// The SMTP server is down: the send fails, is counted as failed, and the
// job as retried.
func TestMetricsCountAFailedSMTPSend(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	if err := e.Mail.Close(); err != nil {
		t.Fatal(err)
	}
	res, _ := post(t, e.Client(), e.URL("sistec.localhost", "/activation"), url.Values{"email": {"demo@demo.fr"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("activation: %d", res.StatusCode)
	}
	s := waitMetric(t, e, "the failed send", func(s apptest.Scrape) bool {
		return value(s, "portail_emails_total", "template", "activation", "outcome", "failed") >= 1 &&
			value(s, "portail_jobs_total", "kind", "send_email", "outcome", "retried") >= 1
	})
	if v := value(s, "portail_emails_total", "outcome", "sent"); v != 0 {
		t.Errorf("%v emails counted as sent while the SMTP server is down", v)
	}
	if v := value(s, "portail_jobs_queued", "queue", "default"); v < 1 {
		t.Errorf("the failed email is not counted among the jobs to do: %v", v)
	}
}

// Imports through the API, applied by their job: lines by result, files
// by outcome.
func TestMetricsCountImports(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	api := sistecAPI(t, e)
	before := e.ScrapeMetrics() // the demo data was imported too
	rep := api.importFile("payers", "Référence;Nom;Email\nMET1;Payeur Un;met1@demo.fr\nMET2;Payeur Deux;pas-une-adresse\n", nil)
	if rep["status"] != "imported" {
		t.Fatalf("payers: %v", rep)
	}
	rep = api.importFile("invoices", "Numéro;Référence redevable;Objet;Date;Echéance;Montant\nMET-1;NOBODY;x;10/11/2017;21/11/2017;1,00\n", nil)
	if rep["status"] != "rejected" {
		t.Fatalf("invoices: %v", rep)
	}
	res, _ := api.upload("invoices", strings.NewReader("numero;reference\n"+strings.Repeat("x", 70_000)+"\n"), nil)
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("long line: %d", res.StatusCode)
	}
	s := waitMetric(t, e, "the import jobs", func(s apptest.Scrape) bool {
		return value(s, "portail_jobs_total", "kind", "import_batch", "outcome", "completed")-
			value(before, "portail_jobs_total", "kind", "import_batch", "outcome", "completed") >= 2
	})
	for _, want := range []struct {
		name  string
		pairs []string
		v     float64
	}{
		{"portail_import_lines_total", []string{"kind", "payers", "result", "inserted"}, 1},
		{"portail_import_lines_total", []string{"kind", "payers", "result", "rejected"}, 1},
		{"portail_import_lines_total", []string{"kind", "invoices", "result", "rejected"}, 1},
		{"portail_import_lines_total", []string{"kind", "invoices", "result", "inserted"}, 0},
		{"portail_import_files_total", []string{"kind", "payers", "outcome", "imported"}, 1},
		{"portail_import_files_total", []string{"kind", "invoices", "outcome", "rejected"}, 2},
	} {
		if v := value(s, want.name, want.pairs...) - value(before, want.name, want.pairs...); v != want.v {
			t.Errorf("%s%v = %v, want %v", want.name, want.pairs, v, want.v)
		}
	}
}
