package payment

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/tenant"
)

// DueOffers reads, with the one query, the invoices of accountIDs in t
// falling due between the dates from and to (inclusive) that the selection
// page would offer, each judged at now: what a reminder before the due date
// may invite to pay. The payable ones are what Start would accept alone;
// the others (an attempt in progress, a retry delay) say why not. It reads
// nothing when the commune takes no payment (CommuneRefusal).
func DueOffers(ctx context.Context, q sqlx.QueryerContext, t *tenant.Tenant, accountIDs []int64, from, to, now time.Time) ([]Offer, error) {
	if CommuneRefusal(t) != "" || len(accountIDs) == 0 {
		return []Offer{}, nil
	}
	sts, err := selectStates(ctx, q, t.ID,
		`i.account_id = ANY ($2::bigint[]) AND `+offerable+` AND i.due_on BETWEEN $5::date AND $6::date`,
		`ORDER BY i.account_id, i.due_on, i.id`,
		pq.Array(accountIDs), minCents(t), maxCents(t), from.Format(time.DateOnly), to.Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	out := make([]Offer, len(sts))
	for i, st := range sts {
		out[i] = Offer{InvoiceState: st, Verdict: Judge(st, t, now)}
	}
	return out, nil
}
