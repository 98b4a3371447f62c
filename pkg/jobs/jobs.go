// Package jobs sets up River, the durable job queue kept in PostgreSQL.
// Jobs are enqueued in the same transaction as the change that causes them.
package jobs

import (
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
)

// Client is River's client over database/sql (lib/pq).
type Client = river.Client[*sql.Tx]

// Options tunes the client. A nil Workers gives an insert-only client.
type Options struct {
	Workers      *river.Workers
	Concurrency  int            // workers of the default queue (default 10)
	Queues       map[string]int // other queues and their workers, besides the default one
	PollInterval time.Duration  // how often to look for new jobs (default 1s; tests use less)
	Periodic     []*river.PeriodicJob
	Logger       *slog.Logger
	// FinishedJobRetention is how long completed, cancelled and discarded
	// jobs are kept (0: River's defaults). Their arguments hold personal
	// data (an email's address and names).
	FinishedJobRetention time.Duration
	// OnlyQueues works Queues alone, not the default queue (a one-off
	// command that works its own job).
	OnlyQueues bool
}

// New builds a River client on d. Start it with client.Start(ctx) to work jobs.
func New(d *sqlx.DB, o Options) (*Client, error) {
	cfg := &river.Config{
		Logger:       o.Logger,
		PeriodicJobs: o.Periodic,
	}
	if o.FinishedJobRetention > 0 {
		cfg.CompletedJobRetentionPeriod = o.FinishedJobRetention
		cfg.CancelledJobRetentionPeriod = o.FinishedJobRetention
		cfg.DiscardedJobRetentionPeriod = o.FinishedJobRetention
	}
	if o.Workers != nil {
		conc := o.Concurrency
		if conc <= 0 {
			conc = 10
		}
		cfg.Workers = o.Workers
		cfg.Queues = map[string]river.QueueConfig{}
		if !o.OnlyQueues {
			cfg.Queues[river.QueueDefault] = river.QueueConfig{MaxWorkers: conc}
		}
		for name, n := range o.Queues {
			cfg.Queues[name] = river.QueueConfig{MaxWorkers: max(n, 1)}
		}
		cfg.FetchPollInterval = o.PollInterval
		if o.PollInterval > 0 && o.PollInterval < river.FetchPollIntervalDefault {
			cfg.FetchCooldown = o.PollInterval
		}
	}
	c, err := river.NewClient(riverdatabasesql.New(d.DB), cfg)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return c, nil
}
