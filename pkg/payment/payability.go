package payment

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/invoice"
	"portail/pkg/tenant"
)

// Payability — "can this invoice be paid online now, and if not, why" — is
// one rule: Judge, applied to InvoiceStates read by one query for a whole
// page. The pages that show it and Start, which enforces it, both use them.

// InvoiceState is an invoice with what its payability depends on beyond its
// own columns: its payment attempts.
type InvoiceState struct {
	invoice.Invoice
	// Pending: the invoice is in an attempt in progress.
	Pending bool `db:"pending"`
	// LastFailureAt is when the last attempt on the invoice that imposes a
	// retry delay ended (nil: none).
	LastFailureAt *time.Time `db:"last_failure_at"`
}

// Verdict is whether an invoice can be paid online now, and if not, why.
type Verdict struct {
	Payable bool
	Reason  string    // for the resident, as is
	RetryAt time.Time // set when the retry delay after a failed attempt is what refuses
}

// Judge applies the payability rule to one invoice of tenant t at now.
// Start refuses a payment of that invoice alone with the same Reason.
func Judge(st InvoiceState, t *tenant.Tenant, now time.Time) Verdict {
	return judge(st, t, now, true)
}

// judge is the rule. Without checkAmount the invoice's amount is left to
// the caller, who checks a batch's total instead (an invoice under the
// minimum may ride along with others; a zero one never).
func judge(st InvoiceState, t *tenant.Tenant, now time.Time, checkAmount bool) Verdict {
	inv := st.Invoice
	switch inv.Status {
	case invoice.StatusPaid:
		return refuse(invoice.ReasonPaid)
	case invoice.StatusCancelled:
		return refuse(invoice.ReasonCancelled)
	case invoice.StatusTreasury:
		return refuse(invoice.ReasonTreasury)
	}
	if inv.DirectDebit {
		return refuse(invoice.ReasonDirectDebit)
	}
	if r := CommuneRefusal(t); r != "" {
		return refuse(r)
	}
	if inv.PaymentSuspended {
		return refuse(invoice.ReasonSuspended)
	}
	if lo := minCents(t); inv.AmountCents <= 0 || (checkAmount && inv.AmountCents < lo) {
		return refuse(fmt.Sprintf("Le montant de cette facture est inférieur à %s : elle ne peut pas être réglée en ligne.", invoice.FormatAmount(lo)))
	}
	if hi := maxCents(t); checkAmount && inv.AmountCents > hi {
		return refuse(fmt.Sprintf("Le montant de cette facture dépasse %s : elle ne peut pas être réglée en ligne.", invoice.FormatAmount(hi)))
	}
	if st.Pending {
		return refuse(ReasonPending)
	}
	if at, wait := retryAt(st.LastFailureAt, t.RetryDelay(), now); wait {
		return Verdict{Reason: RetryReason(at, now), RetryAt: at}
	}
	return Verdict{Payable: true}
}

func refuse(reason string) Verdict { return Verdict{Reason: reason} }

// CommuneRefusal is why no invoice of t can be paid now ("" when they may be).
func CommuneRefusal(t *tenant.Tenant) string {
	switch {
	case t == nil || !t.Active():
		return invoice.ReasonUnavailable
	case t.PaymentsSuspended:
		return invoice.ReasonSuspended
	}
	return ""
}

// offerable narrows the selection page, in SQL, to the unpaid invoices whose
// own columns and the commune's amount limits ($3, $4) allow payment: judge's
// first rules, so that pages hold what can be selected. judge still has the
// last word on every row (attempts in progress, retry delay). Every column
// it reads is in the index invoices_account_open (its predicate, or amount_cents
// included), so that counting and paging read the index alone.
const offerable = `status = 'unpaid' AND NOT direct_debit AND NOT payment_suspended
	AND amount_cents BETWEEN $3 AND $4`

// selectStates is the one query: invoices of tenantID matching where ($1 is
// the tenant; args follow from $2), each with its attempts' state, then
// tail (ORDER BY, LIMIT…).
func selectStates(ctx context.Context, q sqlx.QueryerContext, tenantID int64, where, tail string, args ...any) ([]InvoiceState, error) {
	out := []InvoiceState{}
	err := sqlx.SelectContext(ctx, q, &out, `
		SELECT `+invoice.Columns("i")+`,
			EXISTS (SELECT 1 FROM payment_invoices pi
			        WHERE pi.tenant_id = i.tenant_id AND pi.invoice_id = i.id AND pi.status = 'pending') AS pending,
			(SELECT max(p.resolved_at) FROM payment_invoices pi
			 JOIN payments p ON p.tenant_id = pi.tenant_id AND p.id = pi.payment_id
			 WHERE pi.tenant_id = i.tenant_id AND pi.invoice_id = i.id AND `+retryCondition+`) AS last_failure_at
		FROM invoices i
		WHERE i.tenant_id = $1 AND `+where+`
		`+tail, append([]any{tenantID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("payment: invoice states: %w", err)
	}
	return out, nil
}

// statesByID reads the account's invoices ids (any status), ordered by id.
func statesByID(ctx context.Context, q sqlx.QueryerContext, tenantID, accountID int64, ids []int64) ([]InvoiceState, error) {
	return selectStates(ctx, q, tenantID, `i.account_id = $2 AND i.id = ANY ($3::bigint[])`, `ORDER BY i.id`,
		accountID, pq.Array(ids))
}

// Offer is an invoice on the selection page with its verdict.
type Offer struct {
	InvoiceState
	Verdict
}

// Verdict judges one of the account's invoices (any status) now;
// ErrNotFound when it is another account's or tenant's.
func (s *Service) Verdict(ctx context.Context, t *tenant.Tenant, accountID, invoiceID int64) (Verdict, error) {
	sts, err := statesByID(ctx, s.DB, t.ID, accountID, []int64{invoiceID})
	if err != nil {
		return Verdict{}, err
	}
	if len(sts) == 0 {
		return Verdict{}, ErrNotFound
	}
	return Judge(sts[0], t, s.now()), nil
}

// Judged returns the account's invoices ids (any status; others' are
// left out), judged now, most recent first: the invoices a resident has
// selected.
func (s *Service) Judged(ctx context.Context, t *tenant.Tenant, accountID int64, ids []int64) ([]Offer, error) {
	if len(ids) == 0 {
		return []Offer{}, nil
	}
	sts, err := selectStates(ctx, s.DB, t.ID, `i.account_id = $2 AND i.id = ANY ($3::bigint[])`,
		`ORDER BY i.issued_on DESC, i.id DESC`, accountID, pq.Array(ids))
	if err != nil {
		return nil, err
	}
	return s.judgeAll(sts, t), nil
}

// Offers returns one page (1-based, perPage rows, most recent first) of the
// account's invoices that may be offered for payment, each judged now, and
// how many there are. It is empty when the commune takes no payment at all
// (CommuneRefusal says why).
func (s *Service) Offers(ctx context.Context, t *tenant.Tenant, accountID int64, page, perPage int) ([]Offer, int, error) {
	if CommuneRefusal(t) != "" {
		return []Offer{}, 0, nil
	}
	lo, hi := minCents(t), maxCents(t)
	var total int
	err := s.DB.GetContext(ctx, &total, `SELECT count(*) FROM invoices
		WHERE tenant_id = $1 AND account_id = $2 AND `+offerable, t.ID, accountID, lo, hi)
	if err != nil {
		return nil, 0, fmt.Errorf("payment: offers: %w", err)
	}
	offset := int64(max(page, 1)-1) * int64(perPage)
	if total == 0 || offset >= int64(total) {
		return []Offer{}, total, nil
	}
	sts, err := selectStates(ctx, s.DB, t.ID, `i.id IN (`+offerPage+`)`,
		`ORDER BY i.issued_on DESC, i.id DESC`, accountID, lo, hi, perPage, offset)
	if err != nil {
		return nil, 0, err
	}
	return s.judgeAll(sts, t), total, nil
}

// offerPage is the ids of one page of Offers ($2 the account, $5 rows
// after $6), read from the index alone: the rows skipped before the page
// are index entries, never invoices nor their attempts, so that the last
// page of 30,000 invoices costs about what the first does. Only the page's
// rows are then read, with their attempts (selectStates).
const offerPage = `SELECT id FROM invoices
	WHERE tenant_id = $1 AND account_id = $2 AND ` + offerable + `
	ORDER BY issued_on DESC, id DESC LIMIT $5 OFFSET $6`

func (s *Service) judgeAll(sts []InvoiceState, t *tenant.Tenant) []Offer {
	now := s.now()
	out := make([]Offer, len(sts))
	for i, st := range sts {
		out[i] = Offer{InvoiceState: st, Verdict: Judge(st, t, now)}
	}
	return out
}

// Check applies Start's rules to a selection without starting anything:
// the selected invoices (ordered by id), a *RefusedError, or ErrNotFound.
// The page before PayFiP ("Informations pour le paiement TIPI") uses it.
func (s *Service) Check(ctx context.Context, t *tenant.Tenant, accountID int64, invoiceIDs []int64) ([]InvoiceState, error) {
	ids, err := selection(t, invoiceIDs)
	if err != nil {
		return nil, err
	}
	return checkSelection(ctx, s.DB, t, accountID, ids, s.now())
}

// selection sorts and deduplicates the selected ids and applies the
// commune's batch rules to their number.
func selection(t *tenant.Tenant, invoiceIDs []int64) ([]int64, error) {
	ids := sortedUnique(invoiceIDs)
	if len(ids) == 0 {
		return nil, &RefusedError{Reason: ReasonNoSelection}
	}
	if len(ids) > 1 && (!t.BatchAllowed || t.BatchMax <= 1) {
		return nil, &RefusedError{Reason: ReasonBatchNotAllowed}
	}
	if m := BatchLimit(t); len(ids) > m {
		return nil, &RefusedError{Reason: BatchMaxReason(m)}
	}
	return ids, nil
}

// BatchLimit is how many invoices one payment may cover in t.
func BatchLimit(t *tenant.Tenant) int {
	if !t.BatchAllowed {
		return 1
	}
	return max(t.BatchMax, 1)
}

// BatchMaxReason is the refusal of a selection above the limit m.
func BatchMaxReason(m int) string {
	return fmt.Sprintf("Vous pouvez régler au plus %d factures en un seul paiement.", m)
}

// checkSelection reads the selected invoices ids (sorted, unique) with the
// one query and judges them: one invoice alone by Judge, as its pages show
// it; several each by the same rule, named in the reason, with the amount
// limits applied to their total.
func checkSelection(ctx context.Context, q sqlx.QueryerContext, t *tenant.Tenant, accountID int64, ids []int64, now time.Time) ([]InvoiceState, error) {
	sts, err := statesByID(ctx, q, t.ID, accountID, ids)
	if err != nil {
		return nil, err
	}
	if len(sts) != len(ids) {
		return nil, ErrNotFound
	}
	if len(sts) == 1 {
		if v := Judge(sts[0], t, now); !v.Payable {
			return nil, &RefusedError{Reason: v.Reason, RetryAt: v.RetryAt}
		}
		return sts, nil
	}
	// What refuses every invoice is said once, not about the first one.
	if r := CommuneRefusal(t); r != "" {
		return nil, &RefusedError{Reason: r}
	}
	var total int64
	for _, st := range sts {
		if v := judge(st, t, now, false); !v.Payable {
			return nil, &RefusedError{Reason: "Facture " + st.Number + " : " + v.Reason, RetryAt: v.RetryAt}
		}
		total += st.AmountCents
	}
	lo, hi := minCents(t), maxCents(t)
	if total < lo {
		return nil, &RefusedError{Reason: fmt.Sprintf("Le montant total à régler (%s) est inférieur à %s : le paiement en ligne n'est pas possible.",
			invoice.FormatAmount(total), invoice.FormatAmount(lo))}
	}
	if total > hi {
		return nil, &RefusedError{Reason: fmt.Sprintf("Le montant total à régler (%s) dépasse %s : veuillez sélectionner moins de factures.",
			invoice.FormatAmount(total), invoice.FormatAmount(hi))}
	}
	return sts, nil
}
