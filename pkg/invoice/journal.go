package invoice

import (
	"context"
	"fmt"
	"time"
)

// Batch is an entry of the import journal: a file imported or refused.
type Batch struct {
	ID         int64     `db:"id" json:"id"`
	Kind       string    `db:"kind" json:"kind"`
	Status     string    `db:"status" json:"status"` // imported | rejected
	FileSHA256 string    `db:"file_sha256" json:"file_sha256"`
	Filename   string    `db:"filename" json:"filename"`
	Encoding   string    `db:"encoding" json:"encoding"`
	StartedAt  time.Time `db:"started_at" json:"started_at"`
	FinishedAt time.Time `db:"finished_at" json:"finished_at"`
	Lines      int       `db:"lines" json:"lines"`
	Inserted   int       `db:"inserted" json:"inserted"`
	Updated    int       `db:"updated" json:"updated"`
	Unchanged  int       `db:"unchanged" json:"unchanged"`
	Rejected   int       `db:"rejected" json:"rejected"`
	PDFs       int       `db:"pdfs" json:"pdfs"`
	Alerts     int       `db:"alerts" json:"alerts"`
}

// Batches returns the tenant's latest imports, most recent first (staff).
func (s *Store) Batches(ctx context.Context, tenantID int64, limit int) ([]Batch, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	bs := []Batch{}
	err := s.DB.SelectContext(ctx, &bs, `
		SELECT id, kind, status, file_sha256, filename, encoding, started_at, finished_at,
		       lines, inserted, updated, unchanged, rejected, pdfs, alerts
		FROM import_batches WHERE tenant_id = $1
		ORDER BY started_at DESC, id DESC LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("invoice: batches: %w", err)
	}
	return bs, nil
}

// BatchErrors returns the rejected lines recorded for a refused file of the
// tenant (at most Importer.MaxErrors of them), by line.
func (s *Store) BatchErrors(ctx context.Context, tenantID, batchID int64) ([]LineError, error) {
	es := []LineError{}
	err := s.DB.SelectContext(ctx, &es, `
		SELECT line, number, reason FROM import_errors
		WHERE tenant_id = $1 AND batch_id = $2 ORDER BY line`, tenantID, batchID)
	if err != nil {
		return nil, fmt.Errorf("invoice: batch errors: %w", err)
	}
	return es, nil
}
