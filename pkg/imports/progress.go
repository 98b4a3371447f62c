package imports

import (
	"context"
	"fmt"
	"time"
)

// progress writes a running job's stage and lines read on its batch row,
// through the pool (the job's transaction is another connection), at most
// once per interval: the uploader follows it.
//
// The job's transaction must not have written the batch row yet: the
// update would wait for it. So progress stops before the final update.
type progress struct {
	s        *Service
	tenantID int64
	batchID  int64
	every    time.Duration
	stage    string
	done     int
	last     time.Time
}

func (s *Service) newProgress(b *Batch) *progress {
	return &progress{s: s, tenantID: b.TenantID, batchID: b.ID, every: s.limits().ProgressEvery, stage: StageReading}
}

// setStage records a new stage at once. A nil progress does nothing.
func (p *progress) setStage(ctx context.Context, stage string) error {
	if p == nil {
		return nil
	}
	p.stage = stage
	return p.write(ctx)
}

// lines records done lines read, when the interval has passed; it also
// stops a cancelled job.
func (p *progress) lines(ctx context.Context, done int) error {
	if done%1024 != 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("imports: %w", err)
	}
	if p == nil {
		return nil
	}
	p.done = done
	if time.Since(p.last) < p.every {
		return nil
	}
	return p.write(ctx)
}

func (p *progress) write(ctx context.Context) error {
	p.last = time.Now()
	_, err := p.s.DB.ExecContext(ctx, `
		UPDATE import_batches SET stage = $3, lines_done = greatest(lines_done, $4), updated_at = now()
		WHERE tenant_id = $1 AND id = $2 AND status = 'running'`, p.tenantID, p.batchID, p.stage, p.done)
	if err != nil {
		return fmt.Errorf("imports: progress: %w", err)
	}
	if p.s.onProgress != nil {
		p.s.onProgress(p.stage, p.done)
	}
	return nil
}
