// Package payment runs the residents' online payments through PayFiP
// (the protocol of the DGFiP): an attempt is stored, pending, with its invoices locked,
// before the browser leaves; the result (WS notification, browser return,
// classic callback or reconciliation) moves it out of 'pending' exactly once;
// paid invoices, the confirmation email and the audit row are written in that
// same transaction.
//
// Every query takes the tenant (and for residents the account) from the
// caller, who takes them from the resolved host and the session, never from
// request input.
//
// Wiring: the WS notification (POST /paiement/notification) and browser
// return (GET /paiement/retour?idop=…) pass the idOp read by
// payfip.ParseNotification to ResolveWS. The classic urlcl
// (/paiement/retour-classique) is called by PayFiP's server and then by the
// browser, with the same unsigned parameters, all of them visible to the
// payer: it passes every call (parameters and client address) to
// ReceiveClassic, which applies the result only when it comes from PayFiP's
// networks (payfip.callback_networks, or the commune's own list) and audits
// any other as payment.classic_result_unverified. A browser there is shown
// the attempt's state (GetByRefDet, the owner's only), never trusted. None
// of these routes needs the session. Web-service mode is recommended.
// Register ReconcileWorker and NewReconcilePeriodicJob with River.
package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/config"
	"portail/pkg/invoice"
	"portail/pkg/mail"
	"portail/pkg/metrics"
	"portail/pkg/paris"
	"portail/pkg/payfip"
	"portail/pkg/tenant"
)

// Status is the state of a payment attempt.
type Status string

// Attempt statuses. Only 'pending' ever changes.
const (
	StatusPending   Status = "pending"
	StatusPaid      Status = "paid"
	StatusRefused   Status = "refused"   // card or debit refused (R, Z)
	StatusCancelled Status = "cancelled" // abandoned on PayFiP (A)
	StatusExpired   Status = "expired"   // no result ever came (see Reconcile)
	StatusError     Status = "error"     // PayFiP failed or answered something unknown
)

// Label is the status as the resident reads it.
func (s Status) Label() string {
	switch s {
	case StatusPending:
		return "Paiement en cours"
	case StatusPaid:
		return "Paiement accepté"
	case StatusRefused:
		return "Paiement refusé"
	case StatusCancelled:
		return "Paiement abandonné"
	case StatusExpired:
		return "Paiement non abouti"
	case StatusError:
		return "Paiement non abouti (erreur technique)"
	}
	return string(s)
}

// What delivered a result (payments.resolved_by).
const (
	SourceNotification   = "notification"   // WS: PayFiP's server-to-server POST to urlnotif
	SourceReturn         = "return"         // WS: the browser coming back to urlredirect (the result is asked to PayFiP)
	SourceReconciliation = "reconciliation" // the periodic job
	SourceCallback       = "callback"       // classic: PayFiP's server-side call to urlcl, from its networks
	sourceStart          = "start"          // creerPaiementSecurise failed: PayFiP never had it
)

// Defaults of the Service settings.
const (
	DefaultReconcileAfter = 5 * time.Minute
	DefaultClassicExpiry  = 2 * time.Hour
	// idOpValidity is how long PayFiP lets an idOp wait before its page is
	// opened; a P1 before that may be a replication lag, after it is final.
	idOpValidity = 15 * time.Minute
)

// Messages shown to the resident.
const (
	ReasonPending         = "Un paiement est déjà en cours pour cette facture."
	ReasonNoSelection     = "Veuillez sélectionner au moins une facture."
	ReasonBatchNotAllowed = "Votre collectivité ne permet de régler qu'une facture à la fois."
	ReasonBadEmail        = "Votre adresse électronique ne peut pas être transmise au service de paiement. Veuillez la modifier dans « Mes informations »."
	MessageUnavailable    = "Le service de paiement est momentanément indisponible. Aucun paiement n'a été effectué. Veuillez réessayer dans quelques minutes."
	MessageRejected       = "Le service de paiement a refusé la demande. Aucun paiement n'a été effectué. Veuillez contacter le service de facturation."
)

// Errors.
var (
	// ErrNotFound: no such attempt (or invoice) for this tenant and account;
	// callers answer 404 whatever the reason.
	ErrNotFound = errors.New("payment: not found")
	// ErrMismatch: a result whose numcli, refdet, idOp or amount differs
	// from the stored attempt. Nothing was changed.
	ErrMismatch = errors.New("payment: result does not match the attempt")
	// ErrUntrusted: a classic result named a WS attempt. Those are resolved
	// only from PayFiP's own answer, through ResolveWS.
	ErrUntrusted = errors.New("payment: a web-service attempt is resolved only through ResolveWS")
	// ErrUnverifiedSource: a classic result that did not come from PayFiP's
	// networks. It was audited and changed nothing.
	ErrUnverifiedSource = errors.New("payment: classic result from outside PayFiP's networks")
	// ErrBadResult: PayFiP's classic call could not be read.
	ErrBadResult = errors.New("payment: unreadable classic result")
	// ErrNoCallbackNetworks: a classic commune without PayFiP's source
	// networks, whose results could never be applied.
	ErrNoCallbackNetworks = errors.New("payment: classic mode without payfip.callback_networks")
)

// RefusedError says why a payment cannot start; Reason is shown to the
// resident as is. RetryAt is set when the retry delay is what refuses.
type RefusedError struct {
	Reason  string
	RetryAt time.Time
}

func (e *RefusedError) Error() string { return "payment: refused: " + e.Reason }

// UnavailableError is a payment that cannot start now: a failure of PayFiP
// when starting a WS payment (the attempt is marked 'error', its invoices
// are free and the resident may try again at once), or a classic commune
// whose results could not be received (ErrNoCallbackNetworks, nothing
// stored). Message is shown to the resident.
type UnavailableError struct {
	Message string
	Err     error
}

func (e *UnavailableError) Error() string {
	return "payment: PayFiP unavailable: " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Attempt is one payment attempt.
type Attempt struct {
	TenantID     int64       `db:"tenant_id"`
	ID           int64       `db:"id"`
	AccountID    int64       `db:"account_id"`
	RefDet       string      `db:"refdet"`
	IdOp         string      `db:"id_op"` // "" in classic mode or before PayFiP answered
	Mode         payfip.Mode `db:"mode"`
	AmountCents  int64       `db:"amount_cents"`
	Email        string      `db:"email"`
	Status       Status      `db:"status"`
	CreatedAt    time.Time   `db:"created_at"`
	ResolvedAt   *time.Time  `db:"resolved_at"`
	ResolvedBy   string      `db:"resolved_by"`
	ResultTrans  string      `db:"resultrans"`
	NumAuto      string      `db:"numauto"`
	DatTrans     string      `db:"dattrans"`
	HeurTrans    string      `db:"heurtrans"`
	PaidAt       *time.Time  `db:"paid_at"`
	ErrorMessage string      `db:"error_message"`
	RefundNeeded bool        `db:"refund_needed"`
	RefundCents  int64       `db:"refund_cents"`
}

// Amount is the amount written the French way: "243,11 €".
func (a Attempt) Amount() string { return invoice.FormatAmount(a.AmountCents) }

// AttemptInvoice is one invoice paid by an attempt.
type AttemptInvoice struct {
	InvoiceID   int64  `db:"invoice_id"`
	Number      string `db:"number"`
	Object      string `db:"object"`
	AmountCents int64  `db:"amount_cents"`
}

// AttemptWithInvoices is an attempt and the invoices it covers, by number.
type AttemptWithInvoices struct {
	Attempt
	Invoices []AttemptInvoice
}

// Numbers lists the invoice numbers.
func (a AttemptWithInvoices) Numbers() []string {
	out := make([]string, len(a.Invoices))
	for i, inv := range a.Invoices {
		out[i] = inv.Number
	}
	return out
}

// Service runs payments. DB, PayFiP (WS mode), Config, Outbox and Links are
// required; the other fields have defaults.
type Service struct {
	DB     *sqlx.DB
	PayFiP *payfip.Client // SOAP client (WS mode)
	Config config.PayFiP  // base URLs; Timeout bounds each SOAP call
	Outbox *mail.Outbox
	// Links builds an absolute URL on the tenant's primary host.
	Links func(t *tenant.Tenant, path string) string
	// Now is the clock (nil = time.Now).
	Now func() time.Time
	// ReconcileAfter is the age of a pending attempt before the
	// reconciliation job asks PayFiP about it (0 = 5 minutes).
	ReconcileAfter time.Duration
	// ClassicExpiry is the age at which a pending classic attempt, about
	// which PayFiP cannot be asked, is marked expired (0 = 2 hours).
	ClassicExpiry time.Duration
	// Log receives reconciliation problems and rejected results (nil = discard).
	Log *slog.Logger
	// Metrics counts results received, PayFiP's answers and resolved
	// attempts (nil: not counted).
	Metrics *metrics.Metrics
}

// payfipOutcome classifies a PayFiP web-service answer for the metrics.
func payfipOutcome(err error) string {
	switch {
	case err == nil:
		return metrics.PayFiPOK
	case payfip.IsPending(err):
		return metrics.PayFiPPending
	case payfip.IsUnknown(err):
		return metrics.PayFiPUnknownIdOp
	case payfip.IsTechnical(err):
		return metrics.PayFiPUnavailable
	}
	return metrics.PayFiPFault
}

// endpoints are the PayFiP URLs and SOAP client for tenant t: its own when
// its settings name them (e.g. the qualification service while a commune is
// set up), else the platform's.
func (s *Service) endpoints(t *tenant.Tenant) (classicURL, wsPaymentURL string, client *payfip.Client) {
	classicURL, wsPaymentURL, client = s.Config.ClassicURL, s.Config.WSPaymentURL, s.PayFiP
	if t.PayFiPClassicURL != "" {
		classicURL = t.PayFiPClassicURL
	}
	if t.PayFiPWSPaymentURL != "" {
		wsPaymentURL = t.PayFiPWSPaymentURL
	}
	if t.PayFiPSOAPURL != "" {
		client = payfip.NewClient(t.PayFiPSOAPURL, &http.Client{Timeout: s.Config.Timeout})
	}
	return classicURL, wsPaymentURL, client
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Service) reconcileAfter() time.Duration {
	if s.ReconcileAfter > 0 {
		return s.ReconcileAfter
	}
	return DefaultReconcileAfter
}

func (s *Service) classicExpiry() time.Duration {
	if s.ClassicExpiry > 0 {
		return s.ClassicExpiry
	}
	return DefaultClassicExpiry
}

// soapContext bounds one SOAP call by Config.Timeout, on top of the HTTP
// client's own timeout.
func (s *Service) soapContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.Config.Timeout > 0 {
		return context.WithTimeout(ctx, s.Config.Timeout)
	}
	return context.WithCancel(ctx)
}

// FormatDateTime writes t as "26/11/2026 à 15h42", Europe/Paris.
func FormatDateTime(t time.Time) string {
	return t.In(paris.Location).Format("02/01/2006 à 15h04")
}

// ceilMinute rounds up to the minute, so that the time shown to the
// resident ("15h42") is exactly the one enforced.
func ceilMinute(t time.Time) time.Time {
	r := t.Truncate(time.Minute)
	if r.Before(t) {
		r = r.Add(time.Minute)
	}
	return r
}

// RetryReason is the resident's message for a retry delay ending at retryAt:
// "Vous pourrez effectuer une nouvelle tentative à partir de 15h42." (the
// date is added when it is not today in Paris).
func RetryReason(retryAt, now time.Time) string {
	loc := paris.Location
	r, n := retryAt.In(loc), now.In(loc)
	ry, rm, rd := r.Date()
	ny, nm, nd := n.Date()
	if ry == ny && rm == nm && rd == nd {
		return "Vous pourrez effectuer une nouvelle tentative à partir de " + r.Format("15h04") + "."
	}
	return "Vous pourrez effectuer une nouvelle tentative à partir du " + r.Format("02/01/2006 à 15h04") + "."
}

// Retry delays follow attempts the payer may have taken to PayFiP and that
// did not end paid: refused, abandoned, expired, error — except a WS attempt
// without idOp, which never reached PayFiP (creation failed or timed out:
// the resident may try again at once).
const retryCondition = `p.status IN ('refused', 'cancelled', 'expired', 'error')
	AND (p.mode = 'classic' OR p.id_op IS NOT NULL)`

const attemptColumns = `p.tenant_id, p.id, p.account_id, p.refdet, coalesce(p.id_op, '') AS id_op, p.mode,
	p.amount_cents, p.email, p.status, p.created_at, p.resolved_at, p.resolved_by, p.resultrans,
	p.numauto, p.dattrans, p.heurtrans, p.paid_at, p.error_message, p.refund_needed, p.refund_cents`

func getAttempt(ctx context.Context, q sqlx.QueryerContext, where string, args ...any) (*Attempt, error) {
	var a Attempt
	err := sqlx.GetContext(ctx, q, &a, `SELECT `+attemptColumns+` FROM payments p WHERE `+where, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("payment: load attempt: %w", err)
	}
	return &a, nil
}

// asSystem is ctx with the system as the actor, keeping the client IP:
// a payment's transitions are decided by PayFiP's answer, whichever request
// (PayFiP's notification, the payer's return, the reconciliation job)
// brought it.
func asSystem(ctx context.Context) context.Context {
	return audit.WithActor(ctx, audit.Actor{Kind: audit.KindSystem, IP: audit.ActorFrom(ctx).IP})
}

// from is ctx with an actor of kind and id at addr (a classic call's source).
func from(ctx context.Context, kind string, id int64, addr netip.Addr) context.Context {
	a := audit.Actor{Kind: kind, ID: id}
	if addr.IsValid() {
		a.IP = addr.String()
	}
	return audit.WithActor(ctx, a)
}

func paymentObject(id int64) audit.Object {
	if id == 0 {
		return audit.Object{}
	}
	return audit.Of(audit.ObjectPayment, id)
}

// objet lists the invoice numbers for PayFiP's objet when they fit in its
// 100 characters, else says how many invoices the payment covers.
func objet(numbers []string) string {
	parts := make([]string, 0, len(numbers))
	for _, n := range numbers {
		if p := payfip.SanitizeObjet(n); p != "" {
			parts = append(parts, p)
		}
	}
	if s := strings.Join(parts, " "); len(s) <= 100 {
		return s
	}
	return fmt.Sprintf("%d factures", len(numbers))
}
