package invoice

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"portail/pkg/db"
)

// Query selects a commune's invoices: the staff's search, and the
// resident's "Mes factures" (AccountID set). Zero fields filter nothing.
type Query struct {
	// AccountID restricts to one payer's invoices; 0: the whole commune.
	AccountID int64
	// Number is the start of the invoice number (as written: numbers are
	// codes, "2017-020" finds "2017-020-002059").
	Number string
	// Payer is any part of the payer's reference, name or email, whatever
	// the case and accents ("dupont" finds "Jean DUPONT").
	Payer string
	// Status keeps invoices of these statuses; none: every status
	// (cancelled included).
	Status []Status
	// Dates, both ends included; zero: unbounded.
	IssuedFrom, IssuedTo time.Time
	DueFrom, DueTo       time.Time
	// Amounts in cents, both ends included; AmountMax 0: unbounded.
	AmountMin, AmountMax int64
	// Sort is one of Sorts ("" is DefaultSort).
	Sort string
	// Page (1-based) and PerPage (default db.DefaultPerPage, at most
	// db.MaxPerPage) of Search; Each ignores them.
	Page, PerPage int
	// TotalKnown says Total already holds the number of matching invoices
	// (the resident's tabs count them): Search then spares its count.
	TotalKnown bool
	Total      int
}

// DefaultSort lists the most recent invoices first.
const DefaultSort = "-issued"

// sorts are the fixed ORDER BY clauses a Query may ask for: the key, or
// "-key" for the reverse order. The id breaks ties so that pages never
// overlap.
var sorts = db.Orders{
	"-issued": "i.issued_on DESC, i.id DESC",
	"issued":  "i.issued_on, i.id",
	"-due":    "i.due_on DESC, i.id DESC",
	"due":     "i.due_on, i.id",
	"-amount": "i.amount_cents DESC, i.id DESC",
	"amount":  "i.amount_cents, i.id",
	"-number": "i.number DESC",
	"number":  "i.number",
	"-payer":  "a.display_name DESC, i.id DESC",
	"payer":   "a.display_name, i.id",
	"-status": "i.status DESC, i.issued_on DESC, i.id DESC",
	"status":  "i.status, i.issued_on DESC, i.id DESC",
}

// Sorts lists the sort keys Query.Sort accepts ("-" first: descending).
func Sorts() []string {
	return []string{"issued", "due", "amount", "number", "payer", "status"}
}

func orderBy(sort string) (string, error) {
	clause, err := sorts.Clause(sort, DefaultSort)
	if err != nil {
		return "", fmt.Errorf("invoice: %w", err)
	}
	return clause, nil
}

// searchWhere is the filter of a Query over invoices i ($1 the tenant),
// static SQL: PostgreSQL plans each execution with its values, so a filter
// left empty folds to true and costs nothing. The payer filter finds the
// matching accounts once (an uncorrelated subquery) and then their
// invoices by index: a correlated EXISTS under the OR would be run for
// every invoice of the commune (seconds on a large one). The status condition comes
// apart (statusOne, statusAny): one status must be an equality for the
// per-account index to give the order.
const searchWhere = `i.tenant_id = $1
	AND ($2::bigint = 0 OR i.account_id = $2)
	AND ($3 = '' OR i.number LIKE $3)
	AND ($4 = '' OR i.account_id = ANY (ARRAY(SELECT pa.id FROM accounts pa
		WHERE pa.tenant_id = $1
		  AND portail_fold(pa.external_ref || ' ' || pa.display_name || ' ' || pa.email) LIKE portail_fold($4))))
	AND ($6::date IS NULL OR i.issued_on >= $6) AND ($7::date IS NULL OR i.issued_on <= $7)
	AND ($8::date IS NULL OR i.due_on >= $8) AND ($9::date IS NULL OR i.due_on <= $9)
	AND ($10::bigint = 0 OR i.amount_cents >= $10) AND ($11::bigint = 0 OR i.amount_cents <= $11)
	AND `

const (
	statusOne = `i.status = $5::text`
	statusAny = `(cardinality($5::text[]) = 0 OR i.status = ANY ($5::text[]))`
)

// where returns the filter and its arguments $1…$11.
func (q Query) where(tenantID int64) (string, []any) {
	var status any
	cond := statusAny
	if len(q.Status) == 1 {
		cond, status = statusOne, string(q.Status[0])
	} else {
		s := make([]string, len(q.Status))
		for i, st := range q.Status {
			s[i] = string(st)
		}
		status = pq.Array(s)
	}
	return searchWhere + cond, []any{tenantID, q.AccountID, db.Prefix(q.Number), db.Contains(q.Payer), status,
		nullDate(q.IssuedFrom), nullDate(q.IssuedTo), nullDate(q.DueFrom), nullDate(q.DueTo),
		max(q.AmountMin, 0), max(q.AmountMax, 0)}
}

func nullDate(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: t.Format(time.DateOnly), Valid: true}
}

// Row is an invoice of a search with its payer.
type Row = WithPayer

// searchColumns are a Row's, over invoices i joined with accounts a.
var searchColumns = Columns("i") + `, a.external_ref AS payer_ref, a.display_name AS payer_name`

const searchFrom = ` FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id WHERE `

// Search returns one page of tenantID's invoices matching q, each with its
// payer, in q's order, and how many match in all. A page past the last
// one is empty (callers clamp with the total).
//
// Offset pagination: a resident's list is confined to one account by its
// index; a commune's list reads its (tenant_id, issued_on) index in the
// default order, other orders sort the commune's matching rows.
func (s *Store) Search(ctx context.Context, tenantID int64, q Query) ([]Row, int, error) {
	order, err := orderBy(q.Sort)
	if err != nil {
		return nil, 0, err
	}
	where, args := q.where(tenantID)
	total := q.Total
	if !q.TotalKnown {
		if err := s.DB.GetContext(ctx, &total, `SELECT count(*) FROM invoices i WHERE `+where, args...); err != nil {
			return nil, 0, fmt.Errorf("invoice: search: %w", err)
		}
	}
	rows := []Row{}
	limit, offset, ok := db.PageWindow(q.Page, q.PerPage, total)
	if !ok {
		return rows, total, nil
	}
	args = append(args, limit, offset)
	// The page's ids first, then only those rows: the rows skipped are
	// index entries, not invoices, so that a deep page of a resident with
	// tens of thousands of invoices costs about what the first does.
	idFrom := ` FROM invoices i WHERE `
	if strings.Contains(order, "a.") {
		idFrom = searchFrom
	}
	err = s.DB.SelectContext(ctx, &rows, `SELECT `+searchColumns+searchFrom+`i.tenant_id = $1 AND i.id IN (
		SELECT i.id`+idFrom+where+` ORDER BY `+order+` LIMIT $12 OFFSET $13)
		ORDER BY `+order, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("invoice: search: %w", err)
	}
	return rows, total, nil
}

// Each calls fn with every invoice of tenantID matching q, in q's order
// (Page and PerPage are ignored), one row in memory at a time: CSV exports
// of any size. An error of fn stops the iteration and is returned.
func (s *Store) Each(ctx context.Context, tenantID int64, q Query, fn func(Row) error) error {
	order, err := orderBy(q.Sort)
	if err != nil {
		return err
	}
	where, args := q.where(tenantID)
	rows, err := s.DB.QueryxContext(ctx, `SELECT `+searchColumns+searchFrom+where+` ORDER BY `+order, args...)
	if err != nil {
		return fmt.Errorf("invoice: export: %w", err)
	}
	defer rows.Close()
	var r Row
	for rows.Next() {
		r = Row{}
		if err := rows.StructScan(&r); err != nil {
			return fmt.Errorf("invoice: export: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("invoice: export: %w", err)
	}
	return nil
}
