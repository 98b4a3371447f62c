package payment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"portail/pkg/payfip"
	"portail/pkg/tenant"
)

// reconcileBatch bounds one run; the next run (a minute later) takes the rest.
const reconcileBatch = 500

// Reconcile resolves, for every tenant, the attempts still pending after
// ReconcileAfter (notifications may never arrive):
//   - WS with an idOp: ResolveWS (the trusted answer; P5 keeps it pending
//     until PayFiP knows, P1 expires it);
//   - WS without idOp: creerPaiementSecurise never completed (crash between
//     commit and answer), the payer never reached PayFiP: 'error', no retry
//     delay;
//   - classic: PayFiP offers no query, and it calls urlcl as soon as the
//     payer presses a button; after ClassicExpiry without a result the
//     attempt is 'expired' (retry delay applies, since it may have been paid
//     with a lost callback; a late paid callback is put on record).
//
// It returns how many attempts it resolved. One failing attempt does not
// stop the others; the errors are joined.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	now := s.now()
	var due []Attempt
	err := s.DB.SelectContext(ctx, &due, `
		SELECT `+attemptColumns+` FROM payments p
		WHERE p.status = 'pending' AND p.created_at <= $1
		ORDER BY p.created_at
		LIMIT $2`, now.Add(-s.reconcileAfter()), reconcileBatch)
	if err != nil {
		return 0, fmt.Errorf("payment: reconcile: %w", err)
	}
	tenants := tenant.NewStore(s.DB)
	byID := map[int64]*tenant.Tenant{}
	resolved := 0
	var errs []error
	for i := range due {
		a := &due[i]
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("payment: reconcile: %w", err))
			break
		}
		t, ok := byID[a.TenantID]
		if !ok {
			t, err = tenants.ByID(ctx, a.TenantID)
			if err != nil {
				errs = append(errs, fmt.Errorf("payment: reconcile: tenant %d: %w", a.TenantID, err))
				continue
			}
			byID[a.TenantID] = t
		}
		age := now.Sub(a.CreatedAt)
		var changed bool
		switch {
		case a.Mode == payfip.ModeWS && a.IdOp != "":
			_, changed, err = s.ResolveWS(ctx, t, a.IdOp, SourceReconciliation)
		case a.Mode == payfip.ModeWS:
			if age < s.Config.Timeout+time.Minute { // creerPaiementSecurise may still be running
				continue
			}
			_, changed, err = s.transition(ctx, t, a, change{status: StatusError, source: SourceReconciliation,
				errMsg: "création du paiement PayFiP jamais terminée (pas d'idOp)"})
		default:
			if age < s.classicExpiry() {
				continue
			}
			_, changed, err = s.transition(ctx, t, a, change{status: StatusExpired, source: SourceReconciliation,
				errMsg: fmt.Sprintf("aucun résultat de PayFiP après %s", s.classicExpiry())})
		}
		if err != nil {
			s.log().Warn("payment: reconcile", "tenant", t.Slug, "payment_id", a.ID, "err", err)
			errs = append(errs, fmt.Errorf("payment: reconcile attempt %d of tenant %s: %w", a.ID, t.Slug, err))
			continue
		}
		if changed {
			resolved++
		}
	}
	return resolved, errors.Join(errs...)
}

// ReconcileArgs is the periodic job running Reconcile.
type ReconcileArgs struct{}

// Kind names the job in River's table.
func (ReconcileArgs) Kind() string { return "payment_reconcile" }

// InsertOpts: one run per minute at most, and no retry (the next run is the
// retry).
func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		MaxAttempts: 1,
		UniqueOpts:  river.UniqueOpts{ByPeriod: time.Minute},
	}
}

// ReconcileWorker runs Reconcile.
type ReconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	Service *Service
}

// Work runs one reconciliation.
func (w *ReconcileWorker) Work(ctx context.Context, job *river.Job[ReconcileArgs]) error {
	_, err := w.Service.Reconcile(ctx)
	return err
}

// Timeout keeps a run shorter than the period.
func (w *ReconcileWorker) Timeout(*river.Job[ReconcileArgs]) time.Duration { return 50 * time.Second }

// NewReconcilePeriodicJob schedules ReconcileArgs every minute (and once at
// start). Register ReconcileWorker with river.AddWorker as well.
func NewReconcilePeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(
		river.PeriodicInterval(time.Minute),
		func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, nil },
		&river.PeriodicJobOpts{ID: "payment_reconcile", RunOnStart: true},
	)
}
