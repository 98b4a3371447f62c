package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/audit"
	"portail/pkg/paris"
	"portail/pkg/tenant"
)

// journalPerPage is the Journal's page size.
const journalPerPage = 50

type journalData struct {
	Entries []audit.Entry
	Total   int
	Pager   pager
	Columns []sortColumn
	// The filters, as given.
	Actor, Action, From, To string
	Actors                  []option
	Invalid                 string // a filter that could not be read
}

// option is a choice of a select.
type option struct{ Value, Label string }

// actorLabels name the audit's actor kinds in French.
var actorLabels = []option{
	{audit.KindStaff, "Agent"}, {audit.KindResident, "Redevable"}, {audit.KindAPIKey, "Clé d'API"},
	{audit.KindSystem, "Système"}, {audit.KindOperator, "Opérateur"}, {audit.KindAnonymous, "Anonyme"},
}

// adminJournal is the commune's audit trail ("Journal"), filtered by
// actor kind, action and dates: the example of the list pattern
// (lists.go).
func (s *Server) adminJournal(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	l := readList(c, audit.Sorts(), audit.DefaultSort)
	d := journalData{Actor: l.Filter("acteur"), Action: l.Filter("action"), From: l.Filter("du"), To: l.Filter("au"), Actors: actorLabels}
	f := audit.Filter{Action: d.Action, Sort: l.Sort}
	for _, o := range actorLabels {
		if o.Value == d.Actor {
			f.ActorKind = o.Value
		}
	}
	var err error
	if f.From, err = parseDay(d.From); err != nil {
		d.Invalid = "La date de début doit s'écrire JJ/MM/AAAA."
	}
	if f.To, err = parseDay(d.To); err != nil {
		d.Invalid = "La date de fin doit s'écrire JJ/MM/AAAA."
	} else if !f.To.IsZero() {
		f.To = f.To.AddDate(0, 0, 1) // the whole last day
	}
	entries, total, err := audit.Search(c.Request.Context(), s.DB, t.ID, f, l.Page, journalPerPage)
	if last := lastPage(total, journalPerPage); err == nil && l.Page > last {
		l.Page = last
		entries, total, err = audit.Search(c.Request.Context(), s.DB, t.ID, f, l.Page, journalPerPage)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Entries, d.Total, d.Pager = entries, total, l.Pager(total, journalPerPage)
	d.Columns = []sortColumn{l.Column("Date", "at"), {Label: "Acteur"}, l.Column("Action", "action"), {Label: "Objet"}, {Label: "Adresse IP"}, {Label: "Détails"}}
	s.render(c, http.StatusOK, "admin/journal.html", s.staffPage(c, "journal", "Journal", d))
}

// parseDay reads a day typed JJ/MM/AAAA (or an <input type="date">'s
// AAAA-MM-JJ) as midnight in Paris; "" is the zero time.
func parseDay(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"02/01/2006", time.DateOnly} {
		if d, err := time.ParseInLocation(layout, s, paris.Location); err == nil {
			return d, nil
		}
	}
	return time.Time{}, &time.ParseError{Layout: "02/01/2006", Value: s}
}
