package app

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"portail/pkg/account"
	"portail/pkg/staff"
)

// PurgeArgs is the hourly clean-up of expired sessions, tokens and
// throttling rows, residents' and staff's: they are useless once expired and hold personal data.
type PurgeArgs struct{}

// Kind names the job.
func (PurgeArgs) Kind() string { return "account_purge" }

// PurgeWorker runs the clean-up.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	Accounts      *account.Service
	Sessions      *account.Sessions
	Staff         *staff.Service
	StaffSessions *staff.Sessions
}

// Work deletes what has expired.
func (w *PurgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	if _, err := w.Sessions.Purge(ctx); err != nil {
		return err
	}
	if _, err := w.StaffSessions.Purge(ctx); err != nil {
		return err
	}
	if err := w.Staff.Purge(ctx); err != nil {
		return err
	}
	return w.Accounts.Purge(ctx)
}

func purgePeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return PurgeArgs{}, nil },
		&river.PeriodicJobOpts{ID: "account_purge"})
}
