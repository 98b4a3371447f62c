package reminder

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"portail/pkg/paris"
)

// SendHour is when, in Paris, the daily run sends the reminders: in the
// morning, not at midnight when the window moves. A run missed then (no
// instance up) is made when an instance starts, until LastHour.
const (
	SendHour = 8
	LastHour = 20
)

// InSendingHours tells whether t is between SendHour and LastHour in
// Paris: residents are not emailed at night.
func InSendingHours(t time.Time) bool {
	h := t.In(paris.Location).Hour()
	return h >= SendHour && h < LastHour
}

// Args is the River job running Run.
type Args struct{}

// Kind names the job in River's table.
func (Args) Kind() string { return "due_reminders" }

// InsertOpts: a failed run is retried a few times; reruns are harmless.
func (Args) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 5} }

// Worker runs Run.
type Worker struct {
	river.WorkerDefaults[Args]
	Service *Service
}

// Work sends the reminders due now.
func (w *Worker) Work(ctx context.Context, _ *river.Job[Args]) error {
	r, err := w.Service.Run(ctx)
	if w.Service.Log != nil {
		w.Service.Log.Info("due reminders", "emails", r.Emails, "invoices", r.Invoices, "error", err)
	}
	return err
}

// Timeout bounds a run over every commune; what it committed before stays
// done, and the next run goes on from there.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return 30 * time.Minute }

// NewPeriodicJob schedules Args every day at SendHour, Paris time, and once
// when an instance becomes River's leader in sending hours: a run missed
// while no instance was up is caught up then (a rerun sends nothing
// twice). now is the portal's clock (nil: the system's). Register Worker
// with river.AddWorker as well.
func NewPeriodicJob(now func() time.Time) *river.PeriodicJob {
	if now == nil {
		now = time.Now
	}
	return river.NewPeriodicJob(Daily(SendHour),
		func() (river.JobArgs, *river.InsertOpts) {
			if !InSendingHours(now()) {
				return nil, nil // a start at night: the 08:00 run will do
			}
			return Args{}, nil
		},
		&river.PeriodicJobOpts{ID: "due_reminders", RunOnStart: true})
}

// Daily is the River schedule of every day at hour o'clock in Paris.
func Daily(hour int) river.PeriodicSchedule { return daily{hour: hour} }

type daily struct{ hour int }

// Next is the first hour o'clock in Paris after t.
func (d daily) Next(t time.Time) time.Time {
	p := t.In(paris.Location)
	next := time.Date(p.Year(), p.Month(), p.Day(), d.hour, 0, 0, 0, paris.Location)
	if !next.After(t) {
		next = time.Date(p.Year(), p.Month(), p.Day()+1, d.hour, 0, 0, 0, paris.Location)
	}
	return next
}
