package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
	"portail/pkg/tenant"
)

// importLinesPerPage is the page size of a report's rejected lines.
const importLinesPerPage = 100

type importData struct {
	Batch       *imports.Batch
	KindLabel   string
	StatusLabel string
	Uploader    string
	CSVSize     string
	ZipSize     string
	Progress    importProgress
	// The report, once the batch is done.
	Errors      []imports.LineError
	ErrorsTotal int // rejected lines kept (Batch.Rejected counts them all)
	Pager       pager
	Notes       []imports.LineError
	NotesTotal  int
}

// adminImport is a batch's page: while its job runs, a progress bar
// (refreshed by a small script polling adminImportProgress, or by the
// page itself without JavaScript); then its report, every rejected line
// with its reason, by pages.
func (s *Server) adminImport(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	b, ok := s.importBatch(c)
	if !ok {
		return
	}
	d := importData{Batch: b, KindLabel: importKindLabel(b.Kind), StatusLabel: importStatusLabel(b.Status),
		CSVSize: sizeLabel(b.CSVSize), Progress: progressOf(b)}
	if b.ZipSize > 0 {
		d.ZipSize = sizeLabel(b.ZipSize)
	}
	name, err := s.Imports.UploaderName(ctx, b)
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Uploader = importUploaderLabel(b.ActorKind, name)
	if b.Status.Done() {
		l := readList(c, nil, "")
		if d.Errors, d.ErrorsTotal, err = s.Imports.LinePage(ctx, t.ID, b.ID, "error", l.Page, importLinesPerPage); err != nil {
			s.fail(c, err)
			return
		}
		if last := lastPage(d.ErrorsTotal, importLinesPerPage); l.Page > last {
			l.Page = last
			if d.Errors, d.ErrorsTotal, err = s.Imports.LinePage(ctx, t.ID, b.ID, "error", l.Page, importLinesPerPage); err != nil {
				s.fail(c, err)
				return
			}
		}
		d.Pager = l.Pager(d.ErrorsTotal, importLinesPerPage)
		if d.Notes, d.NotesTotal, err = s.Imports.LinePage(ctx, t.ID, b.ID, "note", 1, importLinesPerPage); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.render(c, http.StatusOK, "admin/import.html", s.staffPage(c, "imports", fmt.Sprintf("Import n° %d", b.ID), d))
}

// importBatch loads the batch of the URL in the commune of the host; it
// answers 404 for an id of another commune, or none.
func (s *Server) importBatch(c *gin.Context) (*imports.Batch, bool) {
	t := tenant.FromContext(c.Request.Context())
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(c)
		return nil, false
	}
	b, err := s.Imports.Batch(c.Request.Context(), t.ID, id)
	if errors.Is(err, imports.ErrNotFound) {
		s.notFound(c)
		return nil, false
	}
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	return b, true
}

// importProgress is where a batch is, for its progress bar: the page
// renders it and adminImportProgress serves it as JSON.
type importProgress struct {
	Status      imports.Status `json:"status"`
	StatusLabel string         `json:"status_label"`
	Stage       string         `json:"stage"`
	StageLabel  string         `json:"stage_label"`
	Done        int            `json:"done"`  // lines read
	Total       int            `json:"total"` // lines of the file
	Percent     int            `json:"percent"`
	Finished    bool           `json:"finished"`
	// Text is the status line read out to screen readers.
	Text string `json:"text"`
}

func progressOf(b *imports.Batch) importProgress {
	p := importProgress{Status: b.Status, StatusLabel: importStatusLabel(b.Status), Stage: b.Stage,
		StageLabel: importStageLabels[b.Stage], Done: b.LinesDone, Total: max(b.LinesTotal, b.LinesDone), Finished: b.Status.Done()}
	if p.StageLabel == "" {
		p.StageLabel = b.Stage
	}
	switch {
	case p.Finished:
		p.Percent = 100
	case p.Total > 0:
		// Reading is most of the work; the later stages show the bar
		// nearly full until the outcome.
		p.Percent = min(99, p.Done*100/p.Total)
	}
	switch {
	case p.Finished:
		p.Text = "Import terminé : " + strings.ToLower(p.StatusLabel) + "."
	case b.Status == imports.StatusQueued:
		p.Text = "En attente de traitement."
	case p.Total > 0:
		p.Text = fmt.Sprintf("%s : %s lignes sur %s (%d %%).", p.StageLabel, thousands(p.Done), thousands(p.Total), p.Percent)
	default:
		p.Text = p.StageLabel + "."
	}
	return p
}

// thousands writes n with French thousands separators ("1 234 567").
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "\u202f" + s[i:]
	}
	return s
}
