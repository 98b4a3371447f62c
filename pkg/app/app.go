// Package app wires the portal together: stores, services, job workers and
// the web server, from a configuration and an open database. The binary and
// the end-to-end tests build the same App.
package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"portail/pkg/account"
	"portail/pkg/announce"
	"portail/pkg/apikey"
	"portail/pkg/auth"
	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/imports"
	"portail/pkg/invoice"
	"portail/pkg/jobs"
	"portail/pkg/mail"
	"portail/pkg/message"
	"portail/pkg/metrics"
	"portail/pkg/payfip"
	"portail/pkg/payment"
	"portail/pkg/privacy"
	"portail/pkg/rbac"
	"portail/pkg/reminder"
	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web"
	"portail/templates"
)

// Options tunes an App for tests.
type Options struct {
	JobPollInterval time.Duration // default: River's (1 s)
	Now             func() time.Time
	ImportWorkers   int // import jobs at once in this instance (default 2)
	// NoPeriodicJobs schedules no periodic job (reconciliation, purge,
	// reminders): for tests that count the statements a page runs.
	NoPeriodicJobs bool
}

// announcementWorkers is how many announcement emails an instance sends at
// once: fewer than the default queue's workers, which keep sending the
// transactional emails (activation, passwords) meanwhile.
const announcementWorkers = 4

// App is the whole portal.
type App struct {
	Config  config.Config
	DB      *sqlx.DB
	Log     *slog.Logger
	Tenants *tenant.Store
	// TenantService is the one writer of communes' settings.
	TenantService *tenant.Service
	Blobs         *blob.Store
	Accounts      *account.Service
	Sessions      *account.Sessions
	Invoices      *invoice.Store
	Imports       *imports.Service
	Payments      *payment.Service
	Staff         *staff.Service
	// StaffSessions are the commune staff's sessions (/admin).
	StaffSessions *staff.Sessions
	Policy        *rbac.Policy
	// Reminders sends the reminders before the due date (a daily job).
	Reminders *reminder.Service
	// Privacy warns and closes inactive accounts and applies the
	// retention periods (a daily job).
	Privacy *privacy.Service
	// Messages are the residents' "Contact" threads and the staff's replies.
	Messages *message.Service
	// Announcements are the commune's information emails.
	Announcements *announce.Service
	Jobs          *jobs.Client
	Web           *web.Server
	// Metrics is this process's Prometheus registry, served by
	// ServeMetrics on its own listener (metrics.addr).
	Metrics *metrics.Metrics
}

// New builds the portal on an open, migrated database.
func New(ctx context.Context, cfg config.Config, d *sqlx.DB, log *slog.Logger, o Options) (*App, error) {
	a := &App{Config: cfg, DB: d, Log: log, Tenants: tenant.NewStore(d)}
	a.TenantService = tenant.NewService(d, a.Tenants)
	queues := map[string]int{account.RequestQueue: 2, imports.Queue: cmp.Or(o.ImportWorkers, 2),
		announce.Queue: announcementWorkers}
	a.Metrics = metrics.New(metrics.Options{DB: d.DB, Log: log,
		Queues: append(slices.Sorted(maps.Keys(queues)), river.QueueDefault)})
	var err error
	if a.Policy, err = rbac.Load(); err != nil {
		return nil, err
	}
	if a.Blobs, err = blob.New(ctx, cfg.S3); err != nil {
		return nil, err
	}

	links := func(t *tenant.Tenant, path string) string { return cfg.HTTP.PublicBaseURL(t.PrimaryHost) + path }
	workers := river.NewWorkers()
	renderer, sender := mail.NewRenderer(templates.FS), mail.NewSender(cfg.SMTP)
	river.AddWorker(workers, &mail.Worker{
		Tenants:  a.Tenants,
		Renderer: renderer,
		Sender:   sender,
		Logger:   log,
		Now:      o.Now,
		Decorate: decorateEmail(d, links),
		Metrics:  a.Metrics,
	})
	a.Payments = &payment.Service{
		DB:      d,
		PayFiP:  payfip.NewClient(cfg.PayFiP.SOAPURL, &http.Client{Timeout: cfg.PayFiP.Timeout}),
		Config:  cfg.PayFiP,
		Links:   links,
		Now:     o.Now,
		Log:     log,
		Metrics: a.Metrics,
	}
	river.AddWorker(workers, &payment.ReconcileWorker{Service: a.Payments})
	purge := &PurgeWorker{}
	river.AddWorker(workers, purge)
	addressRequests := &account.AddressRequestWorker{Tenants: a.Tenants}
	river.AddWorker(workers, addressRequests)
	importer := &imports.Worker{}
	river.AddWorker(workers, importer)
	a.Reminders = &reminder.Service{DB: d, Tenants: a.Tenants, Links: links, Now: o.Now, Log: log}
	river.AddWorker(workers, &reminder.Worker{Service: a.Reminders})
	a.Announcements = &announce.Service{DB: d, Now: o.Now}
	river.AddWorker(workers, &announce.FanOutWorker{Service: a.Announcements})
	river.AddWorker(workers, &announce.DeliverWorker{Service: a.Announcements, Tenants: a.Tenants,
		Renderer: renderer, Sender: sender, Links: links})
	a.Privacy = &privacy.Service{DB: d, Tenants: a.Tenants, Links: links, Settings: cfg.Privacy, Now: o.Now, Log: log}
	river.AddWorker(workers, &privacy.Worker{Service: a.Privacy})
	periodic := []*river.PeriodicJob{payment.NewReconcilePeriodicJob(), purgePeriodicJob(), reminder.NewPeriodicJob(o.Now),
		privacy.NewPeriodicJob(o.Now)}
	if o.NoPeriodicJobs {
		periodic = nil
	}
	if a.Jobs, err = jobs.New(d, jobs.Options{Workers: workers, Logger: log, PollInterval: o.JobPollInterval,
		Queues:   queues,
		Periodic: periodic, FinishedJobRetention: cfg.Privacy.FinishedJobs}); err != nil {
		return nil, err
	}
	outbox := mail.NewOutbox(a.Jobs)
	a.Announcements.Jobs = a.Jobs
	a.Messages = &message.Service{DB: d, Outbox: outbox, Links: links, Now: o.Now}
	a.Payments.Outbox = outbox
	a.Reminders.Outbox = outbox
	a.Privacy.Outbox = outbox

	// One hasher, one semaphore: residents and staff share the bound on
	// concurrent argon2 computations.
	hasher := auth.NewHasher(cmp.Or(cfg.Security.Argon2MaxConcurrent, runtime.GOMAXPROCS(0)))
	a.Accounts = &account.Service{
		DB:      d,
		Hasher:  hasher,
		Outbox:  outbox,
		Jobs:    a.Jobs,
		Links:   links,
		Now:     o.Now,
		Limits:  account.Limits{RememberTTL: cfg.Security.RememberMe},
		Metrics: a.Metrics,
	}
	addressRequests.Service = a.Accounts
	a.Sessions = &account.Sessions{DB: d, IdleTimeout: cfg.Security.SessionIdle,
		AbsoluteTimeout: cfg.Security.SessionAbsolute, Now: o.Now}
	a.Staff = &staff.Service{DB: d, Hasher: hasher, Outbox: outbox, Links: links, Now: o.Now, Metrics: a.Metrics}
	a.StaffSessions = &staff.Sessions{DB: d, IdleTimeout: cfg.Security.StaffSessionIdle,
		AbsoluteTimeout: cfg.Security.StaffSessionAbsolute, Now: o.Now}
	purge.Accounts, purge.Sessions, purge.Staff, purge.StaffSessions = a.Accounts, a.Sessions, a.Staff, a.StaffSessions
	a.Privacy.Accounts, a.Privacy.Sessions = a.Accounts, a.Sessions

	a.Invoices = &invoice.Store{DB: d}
	a.Imports = &imports.Service{DB: d, Blobs: a.Blobs, Jobs: a.Jobs, Outbox: outbox, Now: o.Now, Log: log, Metrics: a.Metrics}
	importer.Service = a.Imports

	a.Web, err = web.New(web.Deps{
		Config:        cfg,
		DB:            d,
		Tenants:       a.Tenants,
		TenantService: a.TenantService,
		Accounts:      a.Accounts,
		Sessions:      a.Sessions,
		Invoices:      a.Invoices,
		Blobs:         a.Blobs,
		Imports:       a.Imports,
		Payments:      a.Payments,
		Messages:      a.Messages,
		Announcements: a.Announcements,
		Staff:         a.Staff,
		StaffSessions: a.StaffSessions,
		Policy:        a.Policy,
		APIKeys:       &apikey.Store{DB: d},
		Templates:     templates.FS,
		Logger:        log,
		Ready:         a.Blobs.SelfCheck,
		Metrics:       a.Metrics,
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Run works jobs and serves HTTP on l until ctx is cancelled, then stops
// gracefully: requests in flight finish, jobs in flight finish or are
// released for another instance.
func (a *App) Run(ctx context.Context, l net.Listener) error {
	events, unsubscribe := a.Jobs.SubscribeConfig(&river.SubscribeConfig{Kinds: metrics.JobEvents, ChanSize: metrics.JobEventBuffer})
	defer unsubscribe()
	watchCtx, stopWatching := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatching()
	go a.Metrics.WatchJobs(watchCtx, events)
	if err := a.Jobs.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	serveErr := web.Serve(ctx, l, a.Web.Handler(), a.Config.HTTP, a.Log)
	stopCtx, cancel := context.WithTimeout(context.Background(), a.Config.HTTP.ShutdownTimeout)
	defer cancel()
	if err := a.Jobs.Stop(stopCtx); err != nil {
		a.Log.Warn("jobs: stop", "error", err)
	}
	return serveErr
}

// ServeMetrics serves /metrics on l (metrics.addr) until ctx is cancelled:
// a listener of its own, so that no commune's host ever answers it.
func (a *App) ServeMetrics(ctx context.Context, l net.Listener) error {
	return a.Metrics.Serve(ctx, l, a.Log)
}
