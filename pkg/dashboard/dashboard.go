// Package dashboard computes the figures of the staff's "Tableau de bord":
// what residents owe, what they paid online, what went to the treasury,
// payments per month and amounts due against amounts paid over twelve
// months (months in Europe/Paris), and the activation and paperless rates
// of the commune's accounts. A handful of aggregate queries, each led by
// the tenant id so that it reads one commune's slice of an index.
package dashboard

import (
	"context"
	"fmt"
	"time"
	_ "time/tzdata" // Europe/Paris even in a scratch container

	"github.com/jmoiron/sqlx"

	"portail/pkg/paris"
)

// Months is how many months the charts cover, the current one included.
const Months = 12

// Amount is a sum of invoices or payments and how many there are.
type Amount struct {
	Count int   `db:"n"`
	Cents int64 `db:"cents"`
}

// Month is one month of the charts.
type Month struct {
	Start time.Time // the first day, midnight in Paris
	// Payments made online and accepted in that month (by their payment
	// time).
	Payments Amount
	// Due: invoices issued that month (not cancelled). Paid: invoices
	// whose payment was recorded that month, whatever the means (online,
	// elsewhere, direct debit).
	Due, Paid Amount
}

// Figures are the dashboard's numbers.
type Figures struct {
	// Unpaid invoices now: what residents owe.
	Due Amount
	// Payments accepted online over the charts' months.
	PaidOnline Amount
	// Invoices sent to the treasury (not paid in time), now.
	Treasury Amount
	Months   []Month

	Accounts  int // every payer account of the commune
	Activated int // accounts whose resident set a password (status active)
	Paperless int // activated accounts that chose paperless invoices
}

// ActivationRate is the share of accounts activated, in percent.
func (f Figures) ActivationRate() float64 { return percent(f.Activated, f.Accounts) }

// PaperlessRate is the share of activated accounts that chose paperless
// invoices, in percent.
func (f Figures) PaperlessRate() float64 { return percent(f.Paperless, f.Activated) }

func percent(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) * 100 / float64(of)
}

// MonthStarts are the first days (midnight, Paris) of the Months months
// ending with now's, oldest first, and the first day of the month after.
func MonthStarts(now time.Time) ([]time.Time, time.Time) {
	paris := paris.Location
	n := now.In(paris)
	first := time.Date(n.Year(), n.Month(), 1, 0, 0, 0, 0, paris)
	out := make([]time.Time, Months)
	for i := range out {
		out[i] = first.AddDate(0, i-(Months-1), 0)
	}
	return out, first.AddDate(0, 1, 0)
}

// Compute reads the figures of the tenant as of now.
func Compute(ctx context.Context, db sqlx.QueryerContext, tenantID int64, now time.Time) (Figures, error) {
	var f Figures
	starts, end := MonthStarts(now)
	begin := starts[0]
	if err := sqlx.GetContext(ctx, db, &f.Due, `
		SELECT count(*) AS n, coalesce(sum(amount_cents), 0) AS cents FROM invoices
		WHERE tenant_id = $1 AND status = 'unpaid'`, tenantID); err != nil {
		return f, fmt.Errorf("dashboard: due: %w", err)
	}
	if err := sqlx.GetContext(ctx, db, &f.Treasury, `
		SELECT count(*) AS n, coalesce(sum(amount_cents), 0) AS cents FROM invoices
		WHERE tenant_id = $1 AND status = 'treasury'`, tenantID); err != nil {
		return f, fmt.Errorf("dashboard: treasury: %w", err)
	}
	if err := sqlx.GetContext(ctx, db, &f, `
		SELECT count(*) AS accounts,
		       count(*) FILTER (WHERE status = 'active') AS activated,
		       count(*) FILTER (WHERE status = 'active' AND paperless) AS paperless
		FROM accounts WHERE tenant_id = $1`, tenantID); err != nil {
		return f, fmt.Errorf("dashboard: accounts: %w", err)
	}

	// Each monthly series: (month start in Paris, count, cents).
	type monthRow struct {
		Month string `db:"month"` // YYYY-MM
		N     int    `db:"n"`
		Cents int64  `db:"cents"`
	}
	series := func(what, query string) (map[string]Amount, error) {
		var rows []monthRow
		if err := sqlx.SelectContext(ctx, db, &rows, query, tenantID, begin, end); err != nil {
			return nil, fmt.Errorf("dashboard: %s: %w", what, err)
		}
		out := make(map[string]Amount, len(rows))
		for _, r := range rows {
			out[r.Month] = Amount{Count: r.N, Cents: r.Cents}
		}
		return out, nil
	}
	payments, err := series("payments", `
		SELECT to_char(paid_at AT TIME ZONE 'Europe/Paris', 'YYYY-MM') AS month, count(*) AS n, sum(amount_cents) AS cents
		FROM payments WHERE tenant_id = $1 AND status = 'paid' AND paid_at >= $2 AND paid_at < $3
		GROUP BY 1`)
	if err != nil {
		return f, err
	}
	paid, err := series("paid", `
		SELECT to_char(paid_at AT TIME ZONE 'Europe/Paris', 'YYYY-MM') AS month, count(*) AS n, sum(amount_cents) AS cents
		FROM invoices WHERE tenant_id = $1 AND status = 'paid' AND paid_at >= $2 AND paid_at < $3
		GROUP BY 1`)
	if err != nil {
		return f, err
	}
	// issued_on is a date: compared with the months' first days as dates.
	due, err := series("due", `
		SELECT to_char(issued_on, 'YYYY-MM') AS month, count(*) AS n, sum(amount_cents) AS cents
		FROM invoices WHERE tenant_id = $1 AND status <> 'cancelled'
		  AND issued_on >= ($2::timestamptz AT TIME ZONE 'Europe/Paris')::date
		  AND issued_on < ($3::timestamptz AT TIME ZONE 'Europe/Paris')::date
		GROUP BY 1`)
	if err != nil {
		return f, err
	}
	for _, start := range starts {
		key := start.Format("2006-01")
		m := Month{Start: start, Payments: payments[key], Due: due[key], Paid: paid[key]}
		f.PaidOnline.Count += m.Payments.Count
		f.PaidOnline.Cents += m.Payments.Cents
		f.Months = append(f.Months, m)
	}
	return f, nil
}
