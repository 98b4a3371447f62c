package metrics

import (
	"context"
	"database/sql"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// queueStates are the states of jobs not yet finished. Finished jobs
// (completed, cancelled, discarded) are kept by River for a while and are
// counted by portail_jobs_total instead.
var queueStates = []string{"available", "running", "retryable", "scheduled"}

// queueCollector reads River's table at scrape time: how many jobs wait in
// each queue and state, and how long the oldest available job has been
// waiting (jobs piling up: workers stuck, too few, or an instance down).
// One grouped query on River's (state, queue, …) index, bounded by a
// timeout: a slow or absent database makes portail_jobs_queue_up 0, never a
// stuck scrape.
type queueCollector struct {
	log     *slog.Logger
	db      *sql.DB
	queues  []string
	timeout time.Duration

	queued *prometheus.Desc
	oldest *prometheus.Desc
	up     *prometheus.Desc
}

func newQueueCollector(log *slog.Logger, db *sql.DB, queues []string, timeout time.Duration) *queueCollector {
	return &queueCollector{log: log, db: db, queues: queues, timeout: timeout,
		queued: prometheus.NewDesc("portail_jobs_queued",
			"River jobs not finished, by queue and state (available, running, retryable, scheduled), read at scrape time.",
			[]string{"queue", "state"}, nil),
		oldest: prometheus.NewDesc("portail_jobs_oldest_available_age_seconds",
			"Age of the oldest available River job of each queue (0 when none waits), read at scrape time.",
			[]string{"queue"}, nil),
		up: prometheus.NewDesc("portail_jobs_queue_up",
			"1 when River's queues could be read at this scrape, 0 when the query failed or timed out.", nil, nil),
	}
}

func (q *queueCollector) names() []string {
	return []string{"portail_jobs_queued", "portail_jobs_oldest_available_age_seconds", "portail_jobs_queue_up"}
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.queued
	ch <- q.oldest
	ch <- q.up
}

type queueKey struct{ queue, state string }

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	counts, oldest, err := q.read(ctx)
	if err != nil {
		q.log.Warn("metrics: River queues not read", "error", err)
		ch <- prometheus.MustNewConstMetric(q.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(q.up, prometheus.GaugeValue, 1)
	queues := slices.Clone(q.queues)
	for k := range counts {
		if !slices.Contains(queues, k.queue) {
			queues = append(queues, k.queue)
		}
	}
	for _, queue := range queues {
		for _, state := range queueStates {
			ch <- prometheus.MustNewConstMetric(q.queued, prometheus.GaugeValue, counts[queueKey{queue, state}], queue, state)
		}
		ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, oldest[queue], queue)
	}
}

func (q *queueCollector) read(ctx context.Context) (map[queueKey]float64, map[string]float64, error) {
	rows, err := q.db.QueryContext(ctx, `
		SELECT queue, state::text, count(*),
			coalesce(extract(epoch FROM now() - min(scheduled_at) FILTER (WHERE state = 'available')), 0)
		FROM river_job
		WHERE state IN ('available', 'running', 'retryable', 'scheduled')
		GROUP BY queue, state`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	counts, oldest := map[queueKey]float64{}, map[string]float64{}
	for rows.Next() {
		var queue, state string
		var n, age float64
		if err := rows.Scan(&queue, &state, &n, &age); err != nil {
			return nil, nil, err
		}
		counts[queueKey{queue, state}] = n
		if state == "available" {
			oldest[queue] = max(age, 0) // a job scheduled a hair ahead of this clock
		}
	}
	return counts, oldest, rows.Err()
}
