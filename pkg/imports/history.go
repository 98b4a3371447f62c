package imports

import (
	"context"
	"fmt"
	"strings"

	"portail/pkg/db"
)

// HistoryQuery selects a commune's batches for the staff's history of
// imports. Zero fields filter nothing.
type HistoryQuery struct {
	Kind   Kind
	Status Status
	// Sort is one of HistorySorts ("" is HistoryDefaultSort).
	Sort string
	// Page (1-based) and PerPage (default db.DefaultPerPage, at most
	// db.MaxPerPage).
	Page, PerPage int
}

// HistoryDefaultSort lists the most recent uploads first.
const HistoryDefaultSort = "-created"

var historySorts = map[string]string{
	"-created": "b.created_at DESC, b.id DESC",
	"created":  "b.created_at, b.id",
	"-lines":   "b.lines DESC, b.id DESC",
	"lines":    "b.lines, b.id",
	"-size":    "b.csv_size DESC, b.id DESC",
	"size":     "b.csv_size, b.id",
}

// HistorySorts lists the sort keys HistoryQuery.Sort accepts.
func HistorySorts() []string { return []string{"created", "lines", "size"} }

// HistoryRow is a batch with the name of its uploader: the staff member's
// or the API key's ("" for the command line and the system).
type HistoryRow struct {
	Batch
	UploaderName string `db:"uploader_name"`
}

// historyWhere filters batches b of $1 (an empty filter folds to true).
const historyWhere = ` b.tenant_id = $1 AND ($2 = '' OR b.kind = $2) AND ($3 = '' OR b.status = $3)`

// History returns one page of the tenant's batches matching q and how many
// match in all; a page past the last one is empty.
func (s *Service) History(ctx context.Context, tenantID int64, q HistoryQuery) ([]HistoryRow, int, error) {
	sort := q.Sort
	if sort == "" {
		sort = HistoryDefaultSort
	}
	order, ok := historySorts[sort]
	if !ok {
		return nil, 0, fmt.Errorf("imports: unknown sort %q", q.Sort)
	}
	args := []any{tenantID, string(q.Kind), string(q.Status)}
	var total int
	if err := s.DB.GetContext(ctx, &total, `SELECT count(*) FROM import_batches b WHERE`+historyWhere, args...); err != nil {
		return nil, 0, fmt.Errorf("imports: history: %w", err)
	}
	rows := []HistoryRow{}
	limit, offset, ok := db.PageWindow(q.Page, q.PerPage, total)
	if !ok {
		return rows, total, nil
	}
	cols := prefixedBatchColumns("b")
	err := s.DB.SelectContext(ctx, &rows, `
		SELECT `+cols+`, coalesce(su.name, k.name, '') AS uploader_name
		FROM import_batches b
		LEFT JOIN staff_users su ON b.actor_kind = 'staff' AND su.id = b.actor_id
		LEFT JOIN api_keys k ON b.actor_kind = 'api_key' AND k.tenant_id = b.tenant_id AND k.id = b.actor_id
		WHERE`+historyWhere+` ORDER BY `+order+` LIMIT $4 OFFSET $5`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("imports: history: %w", err)
	}
	return rows, total, nil
}

// UploaderName is the name of a batch's uploader, as History gives it.
func (s *Service) UploaderName(ctx context.Context, b *Batch) (string, error) {
	if b.ActorID == nil {
		return "", nil
	}
	var name string
	err := s.DB.GetContext(ctx, &name, `
		SELECT coalesce((SELECT su.name FROM staff_users su WHERE $2 = 'staff' AND su.id = $3),
		                (SELECT k.name FROM api_keys k WHERE $2 = 'api_key' AND k.tenant_id = $1 AND k.id = $3), '')`,
		b.TenantID, string(b.ActorKind), *b.ActorID)
	if err != nil {
		return "", fmt.Errorf("imports: uploader of batch %d: %w", b.ID, err)
	}
	return name, nil
}

// prefixedBatchColumns is batchColumns qualified by a table alias.
func prefixedBatchColumns(alias string) string {
	cols := strings.Split(batchColumns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// LinePage returns one page of a batch's rejected lines (severity "error")
// or remarks ("note"), by line, and how many are kept in all (at most
// Limits.MaxErrors per batch; Batch.Rejected counts every one).
func (s *Service) LinePage(ctx context.Context, tenantID, batchID int64, severity string, page, perPage int) ([]LineError, int, error) {
	var total int
	if err := s.DB.GetContext(ctx, &total, `SELECT count(*) FROM import_errors WHERE tenant_id = $1 AND batch_id = $2 AND severity = $3`,
		tenantID, batchID, severity); err != nil {
		return nil, 0, fmt.Errorf("imports: lines of batch %d: %w", batchID, err)
	}
	es := []LineError{}
	limit, offset, ok := db.PageWindow(page, perPage, total)
	if !ok {
		return es, total, nil
	}
	err := s.DB.SelectContext(ctx, &es, `
		SELECT line, number, reason FROM import_errors
		WHERE tenant_id = $1 AND batch_id = $2 AND severity = $3
		ORDER BY line LIMIT $4 OFFSET $5`, tenantID, batchID, severity, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("imports: lines of batch %d: %w", batchID, err)
	}
	return es, total, nil
}
