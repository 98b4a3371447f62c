package imports

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// The API's single writes: one payer, one invoice, one PDF. They build the
// same typed lines as the files' parsers and go through the same checks and
// apply code, synchronously; each is journaled as a batch of one line.

// directLine is the line number of a single write in its report.
const directLine = 1

// ApplyPayer creates or updates one payer by its reference. A rejected line
// is reported (Report.Refused), not returned as an error; ErrBusy means an
// import of the commune held the lock too long.
func (s *Service) ApplyPayer(ctx context.Context, tenantID int64, actor Actor, l PayerLine) (Report, error) {
	l.Line = directLine
	reason := l.Check()
	b := directBatch(tenantID, KindPayers, actor, "api:"+l.Ref)
	sent := false
	run := &payerRun{s: s, lim: s.limits(), b: b, direct: true}
	err := run.run(ctx, func() (PayerLine, string, error) {
		if sent {
			return PayerLine{}, "", io.EOF
		}
		sent = true
		return l, reason, nil
	})
	if err != nil {
		return Report{}, err
	}
	rep, err := s.reportOf(ctx, b, 0, reportErrors)
	if err == nil {
		s.countApplied(rep, false)
	}
	return rep, err
}

// ApplyInvoice creates or updates one invoice by its number, with its PDF
// when pdf is not nil (read to its end, at most Limits.MaxPDFBytes).
func (s *Service) ApplyInvoice(ctx context.Context, tenantID int64, actor Actor, l InvoiceLine, pdf io.Reader) (Report, error) {
	l.Line = directLine
	reasons := l.Check()
	name := "api:" + l.Number
	var src pdfSource
	if pdf != nil {
		f, err := s.tempFile("portail-import-*.pdf")
		if err != nil {
			return Report{}, fmt.Errorf("imports: spool PDF: %w", err)
		}
		one := &singlePDF{number: l.Number, f: f}
		defer one.close()
		if _, err := io.Copy(f, io.LimitReader(pdf, s.limits().MaxPDFBytes+1)); err != nil {
			return Report{}, fmt.Errorf("imports: read PDF: %w", err)
		}
		src, name = one, name+".pdf"
	}
	b := directBatch(tenantID, KindInvoices, actor, name)
	sent := false
	run := &invoiceRun{s: s, lim: s.limits(), b: b, pdfs: src, direct: true}
	err := run.run(ctx, func() (InvoiceLine, string, error) {
		if sent {
			return InvoiceLine{}, "", io.EOF
		}
		sent = true
		return l, joinReasons(reasons), nil
	})
	if err != nil {
		return Report{}, err
	}
	rep, err := s.reportOf(ctx, b, 0, reportErrors)
	if err == nil {
		s.countApplied(rep, false)
	}
	return rep, err
}

func directBatch(tenantID int64, kind Kind, actor Actor, name string) *Batch {
	b := &Batch{TenantID: tenantID, Kind: kind, Filename: clip(name, 255), ActorKind: actor.Kind, LinesTotal: 1}
	if b.ActorKind == "" {
		b.ActorKind = ActorSystem
	}
	if actor.ID != 0 {
		b.ActorID = &actor.ID
	}
	return b
}

func joinReasons(reasons []string) string { return strings.Join(reasons, " ; ") }
