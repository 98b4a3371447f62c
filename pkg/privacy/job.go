package privacy

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"portail/pkg/reminder"
)

// RunHour is when, in Paris, the daily run happens: its warnings are
// emails, sent in the morning (after the reminders).
const RunHour = 9

// Args is the River job running Service.Run.
type Args struct{}

// Kind names the job in River's table.
func (Args) Kind() string { return "privacy_daily" }

// InsertOpts: a failed run is retried a few times; reruns are harmless.
func (Args) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 5} }

// Worker runs Service.Run.
type Worker struct {
	river.WorkerDefaults[Args]
	Service *Service
}

// Work does the day's privacy work.
func (w *Worker) Work(ctx context.Context, _ *river.Job[Args]) error {
	r, err := w.Service.Run(ctx)
	if w.Service.Log != nil {
		w.Service.Log.Info("privacy", "warned", r.Warned, "closed", r.Closed,
			"threads_deleted", r.Threads, "audit_deleted", r.AuditEntries, "error", err)
	}
	return err
}

// Timeout bounds a run; what it committed stays done and the next run
// goes on from there.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return time.Hour }

// NewPeriodicJob schedules Args every day at RunHour, Paris time, and once
// when an instance becomes River's leader during the day (a day missed
// while no instance was up is caught up then, without emailing anyone at
// night). now is the portal's clock (nil: the system's).
func NewPeriodicJob(now func() time.Time) *river.PeriodicJob {
	if now == nil {
		now = time.Now
	}
	return river.NewPeriodicJob(reminder.Daily(RunHour),
		func() (river.JobArgs, *river.InsertOpts) {
			if !reminder.InSendingHours(now()) {
				return nil, nil
			}
			return Args{}, nil
		},
		&river.PeriodicJobOpts{ID: "privacy_daily", RunOnStart: true})
}
