// Package metrics is the portal's Prometheus instrumentation: one registry
// per process (never the client library's global one), the collectors that
// read PostgreSQL at scrape time, and the listener that serves /metrics on
// its own address, apart from the communes' hosts.
//
// Domain packages receive a *Metrics where their events happen; every
// method is safe on a nil *Metrics, so code and tests that do not care
// pass nothing.
//
// Label values are always from closed sets (route templates, status
// classes, job kinds, modes, outcomes, commune slugs of known communes),
// never from request input, so the number of series stays bounded.
package metrics

import (
	"database/sql"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values shared with the domain packages.
const (
	// UnmatchedRoute is the route label of every request that matched no
	// route (404 of an unknown path, 405): one series, whatever the path.
	UnmatchedRoute = "unmatched"
	// NoCommune is the commune label of requests without a resolved
	// commune (unknown host, platform probes).
	NoCommune = "none"

	WhoResident = "resident"
	WhoStaff    = "staff"

	EmailSent   = "sent"
	EmailFailed = "failed"

	// PayFiP call outcomes: PayFiP answered (ok), the payment is still
	// on PayFiP's page (pending, P5), the idOp is unknown (P1), a
	// functional fault (fault), or no usable answer: timeout, transport,
	// technical fault, not SOAP (unavailable).
	PayFiPOK          = "ok"
	PayFiPPending     = "pending"
	PayFiPUnknownIdOp = "unknown_idop"
	PayFiPFault       = "fault"
	PayFiPUnavailable = "unavailable"

	// Import line results.
	LinesInserted  = "inserted"
	LinesUpdated   = "updated"
	LinesUnchanged = "unchanged"
	LinesRejected  = "rejected"
)

// Job outcomes (portail_jobs_total).
const (
	JobCompleted = "completed"
	JobRetried   = "retried"
	JobDiscarded = "discarded"
	JobCancelled = "cancelled"
	JobSnoozed   = "snoozed"
)

// Metrics holds the registry and every series the portal updates.
type Metrics struct {
	registry *prometheus.Registry
	names    []string // every metric family name this registry can expose

	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	httpByCommune *prometheus.CounterVec

	jobs        *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec

	paymentsStarted *prometheus.CounterVec
	payments        *prometheus.CounterVec
	paidCents       *prometheus.CounterVec
	payfipCalls     *prometheus.CounterVec
	payfipResults   *prometheus.CounterVec

	importLines *prometheus.CounterVec
	importFiles *prometheus.CounterVec

	emails *prometheus.CounterVec

	loginFailures  *prometheus.CounterVec
	loginThrottled *prometheus.CounterVec
}

// Options say what the registry watches besides the events it is told of.
type Options struct {
	// DB is the application's pool: its sql.DBStats (go_sql_*) and River's
	// queues (portail_jobs_queued, portail_jobs_oldest_available_age_seconds)
	// are read at scrape time. nil: neither.
	DB *sql.DB
	// Queues are River's configured queues, reported at 0 when empty so
	// that alerts and graphs always have a series.
	Queues []string
	// QueueQueryTimeout bounds the queue query of one scrape (default 2 s).
	QueueQueryTimeout time.Duration
	// Log receives the failures of scrape-time queries (nil: discarded).
	Log *slog.Logger
}

// durationBuckets suit pages and API calls: 5 ms to 30 s (uploads).
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// jobBuckets suit jobs: an email in milliseconds, an import in minutes.
var jobBuckets = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 1800}

// New builds a registry with the process's and Go runtime's collectors and
// every portal series.
func New(o Options) *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}
	m.register(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.httpRequests = m.counter("portail_http_requests_total",
		"HTTP requests answered, by route template (gin's; unmatched for every unknown path), method and status class.",
		"route", "method", "class")
	m.httpDuration = m.histogram("portail_http_request_duration_seconds",
		"Time to answer an HTTP request, by route template, method and status class.", durationBuckets,
		"route", "method", "class")
	m.httpByCommune = m.counter("portail_http_requests_by_commune_total",
		"HTTP requests answered, by commune (slug of the resolved host; none when unresolved) and status class.",
		"commune", "class")

	m.jobs = m.counter("portail_jobs_total",
		"River jobs worked, by kind and outcome (completed, retried, discarded, cancelled, snoozed).", "kind", "outcome")
	m.jobDuration = m.histogram("portail_job_duration_seconds",
		"Time a River job ran, by kind.", jobBuckets, "kind")

	m.paymentsStarted = m.counter("portail_payments_started_total",
		"Payment attempts stored and sent to PayFiP, by mode (ws, classic).", "mode")
	m.payments = m.counter("portail_payments_total",
		"Payment attempts resolved, by PayFiP mode (ws, classic) and outcome (paid, refused, cancelled, expired, error).",
		"mode", "outcome")
	m.paidCents = m.counter("portail_payments_paid_cents_total",
		"Amount of the payments resolved as paid, in euro cents, by PayFiP mode.", "mode")
	m.payfipCalls = m.counter("portail_payfip_calls_total",
		"Calls to PayFiP's web service, by operation and outcome (ok, pending, unknown_idop, fault, unavailable).",
		"operation", "outcome")
	m.payfipResults = m.counter("portail_payfip_results_received_total",
		"Payment results received, by source: notification (PayFiP's server, web-service mode), callback "+
			"(PayFiP's server, classic mode), return (a browser), reconciliation (the periodic job), unverified "+
			"(a classic result from outside PayFiP's networks: the payer's browser coming back, or a forgery; "+
			"it changes nothing).", "source")

	m.importLines = m.counter("portail_import_lines_total",
		"Import lines applied or refused, by kind (payers, invoices) and result (inserted, updated, unchanged, rejected).",
		"kind", "result")
	m.importFiles = m.counter("portail_import_files_total",
		"Imported files by kind and outcome (imported, rejected, duplicate, failed).", "kind", "outcome")

	m.emails = m.counter("portail_emails_total",
		"Email deliveries attempted, by template and outcome (sent, failed: each failed attempt, retried by the job).",
		"template", "outcome")

	m.loginFailures = m.counter("portail_login_failures_total",
		"Refused logins (wrong password, unknown address, wrong second factor), by who (resident, staff).", "who")
	m.loginThrottled = m.counter("portail_login_throttled_total",
		"Login attempts refused by the throttling before any password check, by who (resident, staff).", "who")

	// Series whose absence would hide a problem start at 0.
	for _, who := range []string{WhoResident, WhoStaff} {
		m.loginFailures.WithLabelValues(who)
		m.loginThrottled.WithLabelValues(who)
	}
	for _, source := range []string{"notification", "callback", "return", "reconciliation", "unverified"} {
		m.payfipResults.WithLabelValues(source)
	}

	if o.DB != nil {
		m.register(collectors.NewDBStatsCollector(o.DB, "portail"))
		timeout := o.QueueQueryTimeout
		if timeout <= 0 {
			timeout = 2 * time.Second
		}
		log := o.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		q := newQueueCollector(log, o.DB, o.Queues, timeout)
		m.registry.MustRegister(q)
		m.names = append(m.names, q.names()...)
	}
	return m
}

// register adds collectors and records the names of their metrics.
func (m *Metrics) register(cs ...prometheus.Collector) {
	for _, c := range cs {
		m.registry.MustRegister(c)
	}
	// The names of these collectors' metrics are known once gathered
	// (they always report, unlike vectors without children).
	if mfs, err := m.registry.Gather(); err == nil {
		for _, mf := range mfs {
			if !slices.Contains(m.names, mf.GetName()) {
				m.names = append(m.names, mf.GetName())
			}
		}
	}
}

func (m *Metrics) counter(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.registry.MustRegister(v)
	m.names = append(m.names, name)
	return v
}

func (m *Metrics) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	m.registry.MustRegister(v)
	m.names = append(m.names, name)
	return v
}

// Names are the metric family names this registry can expose (histograms
// by their family name: their series add _bucket, _sum and _count).
func (m *Metrics) Names() []string {
	if m == nil {
		return nil
	}
	out := slices.Clone(m.names)
	slices.Sort(out)
	return out
}

// Registry is the registry, for tests that gather it directly.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in Prometheus's text format. A collector
// that fails (PostgreSQL out of reach) leaves the others served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.registry,
		Timeout:           10 * time.Second,
		EnableOpenMetrics: false,
	})
}

// StatusClass is 1xx…5xx for an HTTP status.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// knownMethods bounds the method label: a client may send any token.
var knownMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// ObserveHTTP counts one answered request. route is the matched route
// template ("" for none: UnmatchedRoute), commune the resolved commune's
// slug ("" for none).
func (m *Metrics) ObserveHTTP(route, method string, status int, commune string, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = UnmatchedRoute
	}
	if !slices.Contains(knownMethods, method) {
		method = "other"
	}
	if commune == "" {
		commune = NoCommune
	}
	class := StatusClass(status)
	m.httpRequests.WithLabelValues(route, method, class).Inc()
	m.httpDuration.WithLabelValues(route, method, class).Observe(d.Seconds())
	m.httpByCommune.WithLabelValues(commune, class).Inc()
}

// PaymentStarted counts an attempt stored, before the payer leaves for
// PayFiP.
func (m *Metrics) PaymentStarted(mode string) {
	if m == nil {
		return
	}
	m.paymentsStarted.WithLabelValues(mode).Inc()
}

// PaymentResolved counts an attempt leaving 'pending' (outcome: its new
// status), and the amount when paid.
func (m *Metrics) PaymentResolved(mode, outcome string, amountCents int64) {
	if m == nil {
		return
	}
	m.payments.WithLabelValues(mode, outcome).Inc()
	if outcome == "paid" {
		m.paidCents.WithLabelValues(mode).Add(float64(amountCents))
	}
}

// PayFiPCall counts one call to PayFiP's web service.
func (m *Metrics) PayFiPCall(operation, outcome string) {
	if m == nil {
		return
	}
	m.payfipCalls.WithLabelValues(operation, outcome).Inc()
}

// PayFiPResultReceived counts a payment result received from source.
func (m *Metrics) PayFiPResultReceived(source string) {
	if m == nil {
		return
	}
	m.payfipResults.WithLabelValues(source).Inc()
}

// ImportLines counts the lines of one applied import (file or API write).
func (m *Metrics) ImportLines(kind string, inserted, updated, unchanged, rejected int) {
	if m == nil {
		return
	}
	for result, n := range map[string]int{LinesInserted: inserted, LinesUpdated: updated,
		LinesUnchanged: unchanged, LinesRejected: rejected} {
		m.importLines.WithLabelValues(kind, result).Add(float64(max(n, 0)))
	}
}

// ImportFile counts one imported file by its outcome.
func (m *Metrics) ImportFile(kind, outcome string) {
	if m == nil {
		return
	}
	m.importFiles.WithLabelValues(kind, outcome).Inc()
}

// Email counts one delivery attempt (EmailSent or EmailFailed).
func (m *Metrics) Email(template, outcome string) {
	if m == nil {
		return
	}
	m.emails.WithLabelValues(template, outcome).Inc()
}

// LoginFailed counts a refused login of who (WhoResident, WhoStaff).
func (m *Metrics) LoginFailed(who string) {
	if m == nil {
		return
	}
	m.loginFailures.WithLabelValues(who).Inc()
}

// LoginThrottled counts a login attempt refused by the throttling.
func (m *Metrics) LoginThrottled(who string) {
	if m == nil {
		return
	}
	m.loginThrottled.WithLabelValues(who).Inc()
}
