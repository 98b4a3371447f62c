package account

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lib/pq"

	"portail/pkg/db"
)

// Query selects a commune's payers (the staff's "Redevables" and
// "Dématérialisation"). Zero fields filter nothing.
type Query struct {
	// Text is any part of the reference, name or email, whatever the case
	// and accents ("dupont" finds "Jean DUPONT").
	Text string
	// Status keeps accounts of these statuses (StatusPending…); none: all.
	Status []string
	// Paperless keeps the payers who chose paperless ("paperless") or not
	// ("paper"); "": both.
	Paperless string
	// ChoiceMade keeps the payers who made a paperless choice (to receive
	// paper again counts), whose date is paperless_at.
	ChoiceMade bool
	// ChoiceFrom and ChoiceTo bound the date of that choice:
	// ChoiceFrom <= paperless_at < ChoiceTo; zero: unbounded.
	ChoiceFrom, ChoiceTo time.Time
	// Sort is one of Sorts ("" is DefaultSort).
	Sort string
	// Page (1-based) and PerPage (default db.DefaultPerPage, at most
	// db.MaxPerPage) of Search; Each ignores them.
	Page, PerPage int
}

// Values of Query.Paperless.
const (
	OnlyPaperless = "paperless"
	OnlyPaper     = "paper"
)

// DefaultSort lists payers by name.
const DefaultSort = "name"

var sorts = map[string]string{
	"name":          "a.display_name, a.id",
	"-name":         "a.display_name DESC, a.id DESC",
	"reference":     "a.external_ref",
	"-reference":    "a.external_ref DESC",
	"email":         "a.email",
	"-email":        "a.email DESC",
	"created":       "a.created_at, a.id",
	"-created":      "a.created_at DESC, a.id DESC",
	"paperless_at":  "a.paperless_at NULLS LAST, a.id",
	"-paperless_at": "a.paperless_at DESC NULLS LAST, a.id DESC",
}

// Sorts lists the sort keys Query.Sort accepts ("-" first: descending).
func Sorts() []string { return []string{"name", "reference", "email", "created", "paperless_at"} }

const searchWhere = `a.tenant_id = $1
	AND ($2 = '' OR portail_fold(a.external_ref || ' ' || a.display_name || ' ' || a.email) LIKE portail_fold($2))
	AND (cardinality($3::text[]) = 0 OR a.status = ANY ($3::text[]))
	AND ($4 = '' OR a.paperless = ($4 = 'paperless'))
	AND (NOT $5::boolean OR a.paperless_at IS NOT NULL)
	AND ($6::timestamptz IS NULL OR a.paperless_at >= $6) AND ($7::timestamptz IS NULL OR a.paperless_at < $7)`

func (q Query) args(tenantID int64) ([]any, string, error) {
	sort := q.Sort
	if sort == "" {
		sort = DefaultSort
	}
	order, ok := sorts[sort]
	if !ok {
		return nil, "", fmt.Errorf("account: unknown sort %q", q.Sort)
	}
	if q.Paperless != "" && q.Paperless != OnlyPaperless && q.Paperless != OnlyPaper {
		return nil, "", fmt.Errorf("account: unknown paperless filter %q", q.Paperless)
	}
	status := q.Status
	if status == nil {
		status = []string{}
	}
	return []any{tenantID, db.Contains(q.Text), pq.Array(status), q.Paperless, q.ChoiceMade,
		nullTime(q.ChoiceFrom), nullTime(q.ChoiceTo)}, order, nil
}

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }

// Search returns one page of tenantID's payers matching q, in q's order,
// and how many match in all. A page past the last one is empty.
func (s *Service) Search(ctx context.Context, tenantID int64, q Query) ([]Account, int, error) {
	args, order, err := q.args(tenantID)
	if err != nil {
		return nil, 0, err
	}
	var total int
	if err := s.DB.GetContext(ctx, &total, `SELECT count(*) FROM accounts a WHERE `+searchWhere, args...); err != nil {
		return nil, 0, fmt.Errorf("account: search: %w", err)
	}
	list := []Account{}
	limit, offset, ok := db.PageWindow(q.Page, q.PerPage, total)
	if !ok {
		return list, total, nil
	}
	args = append(args, limit, offset)
	if err := s.DB.SelectContext(ctx, &list, `SELECT `+prefixedAccountColumns+` FROM accounts a WHERE `+searchWhere+`
		ORDER BY `+order+` LIMIT $8 OFFSET $9`, args...); err != nil {
		return nil, 0, fmt.Errorf("account: search: %w", err)
	}
	return list, total, nil
}

// Each calls fn with every payer of tenantID matching q, in q's order, one
// row in memory at a time (CSV exports). An error of fn stops and is
// returned.
func (s *Service) Each(ctx context.Context, tenantID int64, q Query, fn func(Account) error) error {
	args, order, err := q.args(tenantID)
	if err != nil {
		return err
	}
	rows, err := s.DB.QueryxContext(ctx, `SELECT `+prefixedAccountColumns+` FROM accounts a WHERE `+searchWhere+` ORDER BY `+order, args...)
	if err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Account
		if err := rows.StructScan(&a); err != nil {
			return fmt.Errorf("account: export: %w", err)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	return nil
}
