package metrics

import (
	"context"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// JobEvents are the River events WatchJobs needs.
var JobEvents = []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed,
	river.EventKindJobCancelled, river.EventKindJobSnoozed}

// JobEventBuffer is the subscription's buffer: River drops events a slow
// reader leaves behind, and counting one is a few map lookups, so a large
// buffer loses nothing short of a pathological burst.
const JobEventBuffer = 10_000

// WatchJobs counts each job run reported on events (a River subscription
// to JobEvents) until ctx ends or events is closed.
func (m *Metrics) WatchJobs(ctx context.Context, events <-chan *river.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			if e == nil || e.Job == nil {
				continue
			}
			var ran float64
			if e.JobStats != nil {
				ran = e.JobStats.RunDuration.Seconds()
			}
			m.jobFinished(e.Job.Kind, JobOutcome(e.Kind, e.Job.State), ran)
		}
	}
}

func (m *Metrics) jobFinished(kind, outcome string, seconds float64) {
	if m == nil {
		return
	}
	m.jobs.WithLabelValues(kind, outcome).Inc()
	m.jobDuration.WithLabelValues(kind).Observe(seconds)
}

// JobOutcome names what became of a job after a run: a failure is retried
// unless River discarded it (its last attempt, or cancelled by the worker).
func JobOutcome(kind river.EventKind, state rivertype.JobState) string {
	switch kind {
	case river.EventKindJobCompleted:
		return JobCompleted
	case river.EventKindJobCancelled:
		return JobCancelled
	case river.EventKindJobSnoozed:
		return JobSnoozed
	}
	switch state {
	case rivertype.JobStateDiscarded:
		return JobDiscarded
	case rivertype.JobStateCancelled:
		return JobCancelled
	}
	return JobRetried
}
