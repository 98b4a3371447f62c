package metrics_test

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
	dto "github.com/prometheus/client_model/go"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"portail/pkg/dbtest"
	"portail/pkg/metrics"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// families gathers the registry by name.
func families(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value is the value of name's series with exactly these labels (-1: none).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && got[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// Grafana queries are PromQL; the names they use are the identifiers that
// start with the portal's or the pool collector's prefix.
var metricNameRe = regexp.MustCompile(`\b(portail_[a-z0-9_]+|go_sql_[a-z0-9_]+)`)

// The dashboard is valid JSON, every panel queries something, every metric
// it queries exists in the registry (a renamed metric breaks this test, not
// the operators' graphs), and every portal metric appears on it.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(repoFile(t, "configs/grafana-dashboard.json"), &dash); err != nil {
		t.Fatalf("configs/grafana-dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("not a dashboard: title %q uid %q, %d panels", dash.Title, dash.UID, len(dash.Panels))
	}
	// A pool that never connects: its collector reports from sql.DBStats.
	db, err := sql.Open("postgres", "host=/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := metrics.New(metrics.Options{DB: db, Queues: []string{"default"}})
	names := m.Names()
	exists := func(name string) bool {
		if slices.Contains(names, name) {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(names, base) {
				return true
			}
		}
		return false
	}
	used := map[string]bool{}
	check := func(where, expr string) {
		found := metricNameRe.FindAllString(expr, -1)
		if len(found) == 0 {
			t.Errorf("%s: query %q uses no portal metric", where, expr)
		}
		for _, name := range found {
			if !exists(name) {
				t.Errorf("%s: query uses %s, which the registry does not have", where, name)
			}
			used[strings.TrimSuffix(name, "_bucket")] = true
		}
	}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			check("variable "+v.Name, v.Definition)
		}
	}
	for _, name := range names {
		if strings.HasPrefix(name, "portail_") && !used[name] {
			t.Errorf("%s is on no panel of the dashboard", name)
		}
	}
	for _, name := range []string{"go_sql_in_use_connections", "go_sql_idle_connections", "go_sql_wait_count_total", "go_sql_wait_duration_seconds_total"} {
		if !used[name] {
			t.Errorf("the database pool's %s is on no panel", name)
		}
	}
}

// Every alert rule the README gives queries existing metrics too.
func TestREADMEAlertsQueryExistingMetrics(t *testing.T) {
	readme := string(repoFile(t, "README.md"))
	_, section, ok := strings.Cut(readme, "### Metrics and alerts")
	if !ok {
		t.Fatal("README has no \"Metrics and alerts\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	db, _ := sql.Open("postgres", "host=/nonexistent")
	defer db.Close()
	names := metrics.New(metrics.Options{DB: db}).Names()
	found := metricNameRe.FindAllString(section, -1)
	if len(found) < 10 {
		t.Fatalf("the section names only %d metrics", len(found))
	}
	for _, name := range found {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(names, b) {
				base = b
			}
		}
		if !slices.Contains(names, base) {
			t.Errorf("README names %s, which the registry does not have", name)
		}
	}
	for _, name := range names {
		if strings.HasPrefix(name, "portail_") && !strings.Contains(section, name) {
			t.Errorf("README does not document %s", name)
		}
	}
}

// Labels come from closed sets whatever the request: an unknown route, an
// invented method and a request without commune each add one series.
func TestHTTPLabelsAreBounded(t *testing.T) {
	m := metrics.New(metrics.Options{})
	for _, method := range []string{"GET", "PROPFIND", "X-ANY", "get"} {
		m.ObserveHTTP("", method, 404, "", time.Millisecond)
	}
	m.ObserveHTTP("/factures/:id", "GET", 200, "sistec", time.Millisecond)
	m.ObserveHTTP("/factures/:id", "GET", 503, "sistec", time.Millisecond)
	fams := families(t, m)
	if got := len(fams["portail_http_requests_total"].GetMetric()); got != 4 {
		t.Errorf("%d request series, want 4 (unmatched GET, unmatched other, 2xx, 5xx)", got)
	}
	if v := value(t, fams, "portail_http_requests_total", map[string]string{"route": "unmatched", "method": "other", "class": "4xx"}); v != 3 {
		t.Errorf("unknown methods: %v, want 3 under method=other", v)
	}
	if v := value(t, fams, "portail_http_requests_by_commune_total", map[string]string{"commune": "none", "class": "4xx"}); v != 4 {
		t.Errorf("requests without commune: %v", v)
	}
	if v := value(t, fams, "portail_http_request_duration_seconds", map[string]string{"route": "/factures/:id", "method": "GET", "class": "5xx"}); v != 1 {
		t.Errorf("5xx latency observations: %v", v)
	}
	for status, class := range map[int]string{101: "1xx", 204: "2xx", 304: "3xx", 429: "4xx", 599: "5xx", 0: "other", 999: "other"} {
		if got := metrics.StatusClass(status); got != class {
			t.Errorf("StatusClass(%d) = %q, want %q", status, got, class)
		}
	}
}

// Code that gets no *Metrics (tests, one-off commands) counts nothing and
// does not fail.
func TestNilMetricsCountsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.ObserveHTTP("/", "GET", 200, "sistec", time.Millisecond)
	m.PaymentStarted("ws")
	m.PaymentResolved("ws", "paid", 100)
	m.PayFiPCall("creerPaiementSecurise", metrics.PayFiPOK)
	m.PayFiPResultReceived("notification")
	m.ImportLines("payers", 1, 0, 0, 1)
	m.ImportFile("payers", "imported")
	m.Email("activation", metrics.EmailSent)
	m.LoginFailed(metrics.WhoResident)
	m.LoginThrottled(metrics.WhoStaff)
	if m.Names() != nil {
		t.Fatal("a nil Metrics has names")
	}
}

func TestJobOutcome(t *testing.T) {
	for _, tc := range []struct {
		kind  river.EventKind
		state rivertype.JobState
		want  string
	}{
		{river.EventKindJobCompleted, rivertype.JobStateCompleted, metrics.JobCompleted},
		{river.EventKindJobFailed, rivertype.JobStateRetryable, metrics.JobRetried},
		{river.EventKindJobFailed, rivertype.JobStateAvailable, metrics.JobRetried},
		{river.EventKindJobFailed, rivertype.JobStateDiscarded, metrics.JobDiscarded},
		{river.EventKindJobCancelled, rivertype.JobStateCancelled, metrics.JobCancelled},
		{river.EventKindJobSnoozed, rivertype.JobStateScheduled, metrics.JobSnoozed},
	} {
		if got := metrics.JobOutcome(tc.kind, tc.state); got != tc.want {
			t.Errorf("%s in %s: %q, want %q", tc.kind, tc.state, got, tc.want)
		}
	}
}

// The queue collector reads River's table at each scrape: depth by queue
// and state, the age of the oldest available job, every configured queue
// even when empty; with the database gone the scrape still answers, with
// portail_jobs_queue_up 0.
func TestQueueCollectorReadsRiversTable(t *testing.T) {
	d := dbtest.New(t)
	for _, row := range []struct {
		queue, state string
		age          string
	}{
		{"imports", "available", "10 minutes"},
		{"imports", "available", "1 minute"},
		{"imports", "running", "2 minutes"},
		{"default", "retryable", "-5 minutes"},
		{"default", "completed", "1 hour"}, // finished: not counted
	} {
		if _, err := d.Exec(`INSERT INTO river_job (kind, args, queue, state, scheduled_at, max_attempts, priority, attempted_at, finalized_at)
			VALUES ('test', '{}', $1, $2::river_job_state, now() - $3::interval, 25, 1,
				CASE WHEN $2::text = 'running' THEN now() END, CASE WHEN $2::text = 'completed' THEN now() END)`,
			row.queue, row.state, row.age); err != nil {
			t.Fatal(err)
		}
	}
	m := metrics.New(metrics.Options{DB: d.DB, Queues: []string{"default", "imports", "account_requests"}})
	fams := families(t, m)
	for _, want := range []struct {
		queue, state string
		n            float64
	}{
		{"imports", "available", 2}, {"imports", "running", 1}, {"imports", "retryable", 0},
		{"default", "retryable", 1}, {"default", "available", 0},
		{"account_requests", "available", 0},
	} {
		if v := value(t, fams, "portail_jobs_queued", map[string]string{"queue": want.queue, "state": want.state}); v != want.n {
			t.Errorf("portail_jobs_queued{queue=%q,state=%q} = %v, want %v", want.queue, want.state, v, want.n)
		}
	}
	if v := value(t, fams, "portail_jobs_oldest_available_age_seconds", map[string]string{"queue": "imports"}); v < 600 || v > 900 {
		t.Errorf("oldest available imports job: %v s, want about 600", v)
	}
	if v := value(t, fams, "portail_jobs_oldest_available_age_seconds", map[string]string{"queue": "default"}); v != 0 {
		t.Errorf("oldest available default job: %v s, want 0 (none available)", v)
	}
	if v := value(t, fams, "portail_jobs_queue_up", map[string]string{}); v != 1 {
		t.Errorf("portail_jobs_queue_up = %v", v)
	}

	d.Close()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "portail_jobs_queue_up 0") ||
		!strings.Contains(string(body), `go_sql_max_open_connections{db_name="portail"}`) {
		t.Fatalf("scrape with the database closed: %d\n%s", res.StatusCode, body)
	}
}
