package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/csvexport"
	"portail/pkg/paris"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// The paperless list opens with the latest choices first.
const paperlessDefaultSort = "-paperless_at"

type paperlessData struct {
	Payers  []account.Account
	Total   int
	Pager   pager
	Columns []sortColumn
	// The filters, as given.
	Text, Choice, From, To string
	Choices                []option
	ExportURL              string
	Enabled                bool // the commune offers paperless invoices
}

// paperlessQuery reads the filters of "Dématérialisation": the payers who
// made a choice (paperless, or paper again), by choice, dates and text.
func paperlessQuery(l listParams) (account.Query, paperlessData, []view.Flash) {
	d := paperlessData{Text: l.Filter("q"), From: l.Filter("du"), To: l.Filter("au"), Choices: paperlessChoices}
	q := account.Query{Text: d.Text, ChoiceMade: true, Sort: l.Sort, Page: l.Page, PerPage: payersPerPage}
	for _, o := range paperlessChoices {
		if o.Value == l.Filter("choix") {
			d.Choice, q.Paperless = o.Value, o.Value
		}
	}
	var problems []view.Flash
	var err error
	if q.ChoiceFrom, err = parseDay(d.From); err != nil {
		problems = append(problems, view.Flash{Kind: "error", Text: "La date de début doit s'écrire JJ/MM/AAAA.", Fields: []string{"du"}})
	}
	if q.ChoiceTo, err = parseDay(d.To); err != nil {
		problems = append(problems, view.Flash{Kind: "error", Text: "La date de fin doit s'écrire JJ/MM/AAAA.", Fields: []string{"au"}})
	} else if !q.ChoiceTo.IsZero() {
		q.ChoiceTo = q.ChoiceTo.AddDate(0, 0, 1) // the whole last day
	}
	return q, d, problems
}

// adminPaperless is "Dématérialisation": the residents who chose to stop
// (or to receive again) paper invoices, with the date of their choice.
func (s *Server) adminPaperless(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	l := readList(c, account.Sorts(), paperlessDefaultSort)
	q, d, problems := paperlessQuery(l)
	payers, total, err := s.Accounts.Search(c.Request.Context(), t.ID, q)
	if last := lastPage(total, payersPerPage); err == nil && l.Page > last {
		q.Page, l.Page = last, last
		payers, total, err = s.Accounts.Search(c.Request.Context(), t.ID, q)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Payers, d.Total, d.Pager, d.Enabled = payers, total, l.Pager(total, payersPerPage), t.PaperlessEnabled
	d.Columns = []sortColumn{l.Column("Référence", "reference"), l.Column("Nom", "name"), l.Column("Adresse mail", "email"),
		{Label: "Choix"}, l.Column("Date du choix", "paperless_at")}
	d.ExportURL = "/admin/dematerialisation/export.csv" + strings.TrimPrefix(l.URL("page", "", sortParam, l.Sort), l.path)
	p := s.staffPage(c, "dematerialisation", "Dématérialisation", d)
	p.Flashes = append(p.Flashes, problems...)
	s.render(c, http.StatusOK, "admin/paperless.html", p)
}

// adminPaperlessExport streams the current list of "Dématérialisation" as
// CSV, one row in memory at a time.
func (s *Server) adminPaperlessExport(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	l := readList(c, account.Sorts(), paperlessDefaultSort)
	q, _, _ := paperlessQuery(l)
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, csvexport.Filename("dematerialisation", t.Slug, time.Now().In(paris.Location))))
	w, err := csvexport.New(c.Writer, "Référence", "Nom", "Adresse mail", "Choix", "Date du choix", "Compte")
	if err != nil {
		s.fail(c, err)
		return
	}
	err = s.Accounts.Each(c.Request.Context(), t.ID, q, func(a account.Account) error {
		var at time.Time
		if a.PaperlessAt != nil {
			at = *a.PaperlessAt
		}
		return w.Write(a.ExternalRef, a.DisplayName, a.Email, paperlessLabel(a.Paperless), csvexport.DateTime(at, paris.Location),
			accountStatusLabel(a.Status))
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		s.log.Error("paperless export", "error", err, "tenant", t.Slug)
	}
}

// paperlessLabel names a payer's choice.
func paperlessLabel(paperless bool) string {
	if paperless {
		return "Dématérialisées"
	}
	return "Papier"
}
