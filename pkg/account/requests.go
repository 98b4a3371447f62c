package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertype"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// Requests by address ("Oublié ?", and activation when the commune chose
// neutral messages) must not tell known addresses from unknown ones, by
// their answer or by their time. So the request does the same work for any
// address: it counts the rate limits (keyed by address and IP) and enqueues
// one AddressRequestArgs job, in one transaction. The job looks the address
// up and, for an eligible account, issues the token, enqueues the email and
// writes the audit row; for any other address it does nothing.

// RequestQueue is the River queue of address requests, apart from the
// emails' so that a burst of alert emails does not delay a reset link.
const RequestQueue = "account_requests"

// JobInserter is what the service needs of River's client.
type JobInserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// TenantLoader finds the commune a job works for.
type TenantLoader interface {
	ByID(ctx context.Context, id int64) (*tenant.Tenant, error)
}

// AddressRequestArgs is a reset or activation request for an address, known
// or not: the job, not the request, finds out.
type AddressRequestArgs struct {
	TenantID    int64     `json:"tenant_id"`
	Purpose     Purpose   `json:"purpose"` // PurposeReset or PurposeActivation
	Email       string    `json:"email"`   // normalized
	IP          string    `json:"ip,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}

// Kind names the job in River's table.
func (AddressRequestArgs) Kind() string { return "account_address_request" }

// InsertOpts: its own queue; retried for a few hours at most (a request
// older than its link's lifetime is dropped anyway).
func (AddressRequestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: RequestQueue, MaxAttempts: 10}
}

func (s *Service) enqueueAddressRequest(ctx context.Context, tx *sqlx.Tx, args AddressRequestArgs) error {
	if s.Jobs == nil {
		return errors.New("account: Service.Jobs is not set")
	}
	if _, err := s.Jobs.InsertTx(ctx, tx.Tx, args, nil); err != nil {
		return fmt.Errorf("account: enqueue %s request: %w", args.Purpose, err)
	}
	return nil
}

// RequestReset asks for a password-reset link ("Oublié ?"): the job emails
// one when an active account has this email. It returns nil whatever the
// email, and also when rate-limited (per email and per IP), so that nothing
// tells accounts apart; only infrastructure errors are returned.
func (s *Service) RequestReset(ctx context.Context, t *tenant.Tenant, email, ip string) error {
	email = NormalizeEmail(email)
	if !ValidEmail(email) {
		return nil
	}
	lim := s.limits()
	now := s.now()
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		okEmail, err := auth.Allow(ctx, tx, now, t.ID, "reset", email, lim.ResetPerHour, time.Hour)
		if err != nil {
			return err
		}
		okIP := true
		if ip != "" {
			if okIP, err = auth.Allow(ctx, tx, now, t.ID, "reset_ip", auth.IPKey(ip), lim.ResetPerHourPerIP, time.Hour); err != nil {
				return err
			}
		}
		if !okEmail || !okIP {
			return nil
		}
		return s.enqueueAddressRequest(ctx, tx, AddressRequestArgs{
			TenantID: t.ID, Purpose: PurposeReset, Email: email, IP: ip, RequestedAt: now})
	})
}

// RequestActivation asks for an activation link for a pending account with
// this email. Requests are rate-limited per email (ErrTooManyRequests), for
// known and unknown addresses alike.
//
// With the manual's explicit messages the outcome is told, so the address
// is looked up at once. With neutral messages the request is queued like a
// reset (ActivationRequested), and an invalid address is ErrInvalidEmail
// (its syntax is no secret).
func (s *Service) RequestActivation(ctx context.Context, t *tenant.Tenant, email string) (ActivationOutcome, error) {
	email = NormalizeEmail(email)
	neutral := t.ActivationMessages == "neutral"
	if !ValidEmail(email) {
		if neutral {
			return 0, ErrInvalidEmail
		}
		return ActivationUnknown, nil
	}
	lim := s.limits()
	now := s.now()
	var outcome ActivationOutcome
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		ok, err := auth.Allow(ctx, tx, now, t.ID, "activation", email, lim.ActivationPerHour, time.Hour)
		if err != nil || !ok {
			return err
		}
		if neutral {
			outcome = ActivationRequested
			return s.enqueueAddressRequest(ctx, tx, AddressRequestArgs{
				TenantID: t.ID, Purpose: PurposeActivation, Email: email, RequestedAt: now})
		}
		outcome, err = s.issueActivation(ctx, tx, t, email, now)
		return err
	})
	if err != nil {
		return 0, err
	}
	if outcome == 0 {
		return 0, ErrTooManyRequests
	}
	return outcome, nil
}

// issueActivation emails an activation link if email is that of a pending
// account of t.
func (s *Service) issueActivation(ctx context.Context, tx *sqlx.Tx, t *tenant.Tenant, email string, now time.Time) (ActivationOutcome, error) {
	var a Account
	err := tx.GetContext(ctx, &a, `SELECT `+accountColumns+` FROM accounts
		WHERE tenant_id = $1 AND email = $2 FOR UPDATE`, t.ID, email)
	if isNoRows(err) {
		return ActivationUnknown, nil
	}
	if err != nil {
		return 0, fmt.Errorf("account: activation: %w", err)
	}
	switch a.Status {
	case StatusActive:
		return ActivationAlreadyActive, nil
	case StatusDisabled:
		return ActivationUnknown, nil
	}
	if err := s.sendActivation(ctx, tx, t, &a, now); err != nil {
		return 0, err
	}
	if err := audit.Record(asAnonymous(ctx, ""), tx, t.ID, "activation.requested", accountObject(a.ID), nil); err != nil {
		return 0, err
	}
	return ActivationSent, nil
}

// sendActivation issues a new activation token for a (earlier ones stop
// working) and enqueues its email, in tx.
func (s *Service) sendActivation(ctx context.Context, tx *sqlx.Tx, t *tenant.Tenant, a *Account, now time.Time) error {
	raw, exp, err := issueToken(ctx, tx, t.ID, a.ID, PurposeActivation, "", now, s.limits().ActivationTTL)
	if err != nil {
		return err
	}
	link, err := s.link(t, "/activation/"+raw)
	if err != nil {
		return err
	}
	if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
		TenantID: t.ID, To: a.Email, Template: "activation", NotAfter: exp,
		Data: map[string]any{"Link": link, "DisplayName": a.DisplayName},
	}); err != nil {
		return fmt.Errorf("account: activation email: %w", err)
	}
	return nil
}

// issueReset emails a reset link if email is that of an active account of t.
func (s *Service) issueReset(ctx context.Context, tx *sqlx.Tx, t *tenant.Tenant, email, ip string, now time.Time) error {
	var a Account
	err := tx.GetContext(ctx, &a, `SELECT `+accountColumns+` FROM accounts
		WHERE tenant_id = $1 AND email = $2 FOR UPDATE`, t.ID, email)
	if isNoRows(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("account: reset: %w", err)
	}
	if a.Status != StatusActive {
		return nil
	}
	raw, exp, err := issueToken(ctx, tx, t.ID, a.ID, PurposeReset, "", now, s.limits().ResetTTL)
	if err != nil {
		return err
	}
	link, err := s.link(t, "/mot-de-passe/"+raw)
	if err != nil {
		return err
	}
	if err := s.Outbox.EnqueueTx(ctx, tx, mail.Email{
		TenantID: t.ID, To: a.Email, Template: "reset", NotAfter: exp,
		Data: map[string]any{"Link": link, "DisplayName": a.DisplayName},
	}); err != nil {
		return fmt.Errorf("account: reset email: %w", err)
	}
	return audit.Record(asAnonymous(ctx, ip), tx, t.ID, "password.reset_requested", accountObject(a.ID), nil)
}

// handleAddressRequest does what a request asked, in one transaction with
// complete (which marks the job done): a retried job never sends a second
// link. A request older than its link's lifetime is dropped: whoever made
// it has given up.
func (s *Service) handleAddressRequest(ctx context.Context, t *tenant.Tenant, args AddressRequestArgs, complete func(*sqlx.Tx) error) error {
	now := s.now()
	lim := s.limits()
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		switch args.Purpose {
		case PurposeReset:
			if now.Sub(args.RequestedAt) < lim.ResetTTL {
				if err := s.issueReset(ctx, tx, t, args.Email, args.IP, now); err != nil {
					return err
				}
			}
		case PurposeActivation:
			if now.Sub(args.RequestedAt) < lim.ActivationTTL {
				if _, err := s.issueActivation(ctx, tx, t, args.Email, now); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("account: address request for %q", args.Purpose)
		}
		return complete(tx)
	})
}

// AddressRequestWorker works AddressRequestArgs jobs. Its errors never
// carry the address (River logs them).
type AddressRequestWorker struct {
	river.WorkerDefaults[AddressRequestArgs]
	Service *Service
	Tenants TenantLoader
}

// Work handles one request.
func (w *AddressRequestWorker) Work(ctx context.Context, job *river.Job[AddressRequestArgs]) error {
	args := job.Args
	if args.Purpose != PurposeReset && args.Purpose != PurposeActivation {
		return river.JobCancel(fmt.Errorf("account: address request for %q", args.Purpose))
	}
	t, err := w.Tenants.ByID(ctx, args.TenantID)
	if errors.Is(err, tenant.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("account: address request: tenant %d: %w", args.TenantID, err))
	}
	if err != nil {
		return err
	}
	return w.Service.handleAddressRequest(ctx, t, args, func(tx *sqlx.Tx) error {
		_, err := river.JobCompleteTx[*riverdatabasesql.Driver](ctx, tx.Tx, job)
		return err
	})
}

// Timeout bounds one request's work.
func (w *AddressRequestWorker) Timeout(*river.Job[AddressRequestArgs]) time.Duration {
	return 30 * time.Second
}
