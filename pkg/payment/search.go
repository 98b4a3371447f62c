package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"portail/pkg/db"
)

// Query selects a commune's payment attempts (the staff's "Paiements").
// Zero fields filter nothing.
type Query struct {
	// AccountID restricts to one payer's attempts; 0: the whole commune.
	AccountID int64
	// Status keeps attempts of these statuses; none: every status.
	Status []Status
	// From and To bound the attempt's creation: From <= created_at < To.
	From, To time.Time
	// Amounts in cents, both ends included; AmountMax 0: unbounded.
	AmountMin, AmountMax int64
	// InvoiceNumber keeps the attempts covering that invoice (exact number).
	InvoiceNumber string
	// Payer is any part of the payer's reference, name or email, whatever
	// the case and accents.
	Payer string
	// Reference is a refdet or a PayFiP idOp, exactly.
	Reference string
	// Sort is one of Sorts ("" is DefaultSort).
	Sort string
	// Page (1-based) and PerPage (default db.DefaultPerPage, at most
	// db.MaxPerPage) of Search; Each ignores them.
	Page, PerPage int
}

// DefaultSort lists the most recent attempts first.
const DefaultSort = "-created"

var sorts = db.Orders{
	"-created": "p.created_at DESC, p.id DESC",
	"created":  "p.created_at, p.id",
	"-amount":  "p.amount_cents DESC, p.id DESC",
	"amount":   "p.amount_cents, p.id",
	"-status":  "p.status DESC, p.created_at DESC, p.id DESC",
	"status":   "p.status, p.created_at DESC, p.id DESC",
	"-payer":   "a.display_name DESC, p.id DESC",
	"payer":    "a.display_name, p.id",
}

// Sorts lists the sort keys Query.Sort accepts ("-" first: descending).
func Sorts() []string { return []string{"created", "amount", "status", "payer"} }

func orderBy(sort string) (string, error) {
	clause, err := sorts.Clause(sort, DefaultSort)
	if err != nil {
		return "", fmt.Errorf("payment: %w", err)
	}
	return clause, nil
}

// searchWhere filters attempts p of $1 (static SQL: an empty filter folds
// to true when PostgreSQL plans the execution with its values).
const searchWhere = `p.tenant_id = $1
	AND ($2::bigint = 0 OR p.account_id = $2)
	AND (cardinality($3::text[]) = 0 OR p.status = ANY ($3::text[]))
	AND ($4::timestamptz IS NULL OR p.created_at >= $4) AND ($5::timestamptz IS NULL OR p.created_at < $5)
	AND ($6::bigint = 0 OR p.amount_cents >= $6) AND ($7::bigint = 0 OR p.amount_cents <= $7)
	AND ($8 = '' OR p.id IN (SELECT pi.payment_id FROM invoices i
		JOIN payment_invoices pi ON pi.tenant_id = i.tenant_id AND pi.invoice_id = i.id
		WHERE i.tenant_id = $1 AND i.number = $8))
	AND ($9 = '' OR EXISTS (SELECT 1 FROM accounts pa
		WHERE pa.tenant_id = p.tenant_id AND pa.id = p.account_id
		  AND portail_fold(pa.external_ref || ' ' || pa.display_name || ' ' || pa.email) LIKE portail_fold($9)))
	AND ($10 = '' OR p.refdet = $10 OR p.id_op = $10)`

func (q Query) where(tenantID int64) []any {
	status := make([]string, len(q.Status))
	for i, s := range q.Status {
		status[i] = string(s)
	}
	return []any{tenantID, q.AccountID, pq.Array(status), nullTime(q.From), nullTime(q.To),
		max(q.AmountMin, 0), max(q.AmountMax, 0), strings.TrimSpace(q.InvoiceNumber), db.Contains(q.Payer), strings.TrimSpace(q.Reference)}
}

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }

// Row is an attempt of a search, with its payer and the numbers of the
// invoices it covers.
type Row struct {
	Attempt
	PayerRef       string         `db:"payer_ref"`
	PayerName      string         `db:"payer_name"`
	InvoiceNumbers pq.StringArray `db:"invoice_numbers"`
	// InvoiceAmounts is the part of the attempt's amount paying each
	// invoice, in the order of InvoiceNumbers.
	InvoiceAmounts pq.Int64Array `db:"invoice_amounts"`
}

const searchSelect = `SELECT ` + attemptColumns + `, a.external_ref AS payer_ref, a.display_name AS payer_name,
	coalesce(x.numbers, '{}') AS invoice_numbers, coalesce(x.amounts, '{}') AS invoice_amounts
	FROM payments p JOIN accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
	LEFT JOIN LATERAL (
		SELECT array_agg(i.number ORDER BY i.number) AS numbers, array_agg(pi.amount_cents ORDER BY i.number) AS amounts
		FROM payment_invoices pi JOIN invoices i ON i.tenant_id = pi.tenant_id AND i.id = pi.invoice_id
		WHERE pi.tenant_id = p.tenant_id AND pi.payment_id = p.id) x ON true
	WHERE `

// Search returns one page of tenantID's attempts matching q, in q's order,
// and how many match in all. A page past the last one is empty.
func (s *Service) Search(ctx context.Context, tenantID int64, q Query) ([]Row, int, error) {
	order, err := orderBy(q.Sort)
	if err != nil {
		return nil, 0, err
	}
	args := q.where(tenantID)
	var total int
	if err := s.DB.GetContext(ctx, &total, `SELECT count(*) FROM payments p WHERE `+searchWhere, args...); err != nil {
		return nil, 0, fmt.Errorf("payment: search: %w", err)
	}
	rows := []Row{}
	limit, offset, ok := db.PageWindow(q.Page, q.PerPage, total)
	if !ok {
		return rows, total, nil
	}
	args = append(args, limit, offset)
	if err := s.DB.SelectContext(ctx, &rows, searchSelect+searchWhere+` ORDER BY `+order+` LIMIT $11 OFFSET $12`, args...); err != nil {
		return nil, 0, fmt.Errorf("payment: search: %w", err)
	}
	return rows, total, nil
}

// Each calls fn with every attempt of tenantID matching q, in q's order
// (Page and PerPage are ignored), one row in memory at a time: the CSV
// export for reconciliation. An error of fn stops and is returned.
func (s *Service) Each(ctx context.Context, tenantID int64, q Query, fn func(Row) error) error {
	order, err := orderBy(q.Sort)
	if err != nil {
		return err
	}
	rows, err := s.DB.QueryxContext(ctx, searchSelect+searchWhere+` ORDER BY `+order, q.where(tenantID)...)
	if err != nil {
		return fmt.Errorf("payment: export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Row
		if err := rows.StructScan(&r); err != nil {
			return fmt.Errorf("payment: export: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("payment: export: %w", err)
	}
	return nil
}

// Detail is an attempt as staff see it: its invoices and its payer.
type Detail struct {
	AttemptWithInvoices
	PayerRef   string
	PayerName  string
	PayerEmail string
}

// GetInCommune returns any attempt of the commune with its invoices and
// payer (the staff's detail page; residents go through Get, which checks
// the account); ErrNotFound for another commune's.
func (s *Service) GetInCommune(ctx context.Context, tenantID, paymentID int64) (*Detail, error) {
	a, err := getAttempt(ctx, s.DB, `p.tenant_id = $1 AND p.id = $2`, tenantID, paymentID)
	if err != nil {
		return nil, err
	}
	out, err := s.withInvoices(ctx, tenantID, []Attempt{*a})
	if err != nil {
		return nil, err
	}
	d := &Detail{AttemptWithInvoices: out[0]}
	err = s.DB.QueryRowxContext(ctx, `SELECT external_ref, display_name, email FROM accounts WHERE tenant_id = $1 AND id = $2`,
		tenantID, a.AccountID).Scan(&d.PayerRef, &d.PayerName, &d.PayerEmail)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("payment: payer of attempt %d: %w", paymentID, err)
	}
	return d, nil
}
