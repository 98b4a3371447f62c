package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/tenant"
)

// payersPerPage is the page size of "Redevables" and "Dématérialisation".
const payersPerPage = 50

// accountStates are the account states of the filters, in the URL's words.
var accountStates = []option{
	{account.StatusPending, "Non activé"}, {account.StatusActive, "Activé"}, {account.StatusDisabled, "Désactivé"},
	{account.StatusClosed, "Fermé"},
}

// accountStatusLabel names an account's state for staff.
func accountStatusLabel(status string) string {
	for _, o := range accountStates {
		if o.Value == status {
			return o.Label
		}
	}
	return status
}

// paperlessChoices are the values of the paperless filter.
var paperlessChoices = []option{{account.OnlyPaperless, "Factures dématérialisées"}, {account.OnlyPaper, "Factures papier"}}

type payersData struct {
	Payers  []account.Account
	Total   int
	Pager   pager
	Columns []sortColumn
	// The filters, as given.
	Text, State, Paperless string
	States, Choices        []option
}

// adminPayers is "Redevables": the commune's payers searched by
// reference, name or email, filtered by account state and paperless
// choice, sorted and paginated.
func (s *Server) adminPayers(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	l := readList(c, account.Sorts(), account.DefaultSort)
	d := payersData{Text: l.Filter("q"), States: accountStates, Choices: paperlessChoices}
	q := account.Query{Text: d.Text, Sort: l.Sort, Page: l.Page, PerPage: payersPerPage}
	for _, o := range accountStates {
		if o.Value == l.Filter("etat") {
			d.State, q.Status = o.Value, []string{o.Value}
		}
	}
	for _, o := range paperlessChoices {
		if o.Value == l.Filter("papier") {
			d.Paperless, q.Paperless = o.Value, o.Value
		}
	}
	payers, total, err := s.Accounts.Search(c.Request.Context(), t.ID, q)
	if last := lastPage(total, payersPerPage); err == nil && l.Page > last {
		q.Page, l.Page = last, last
		payers, total, err = s.Accounts.Search(c.Request.Context(), t.ID, q)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Payers, d.Total, d.Pager = payers, total, l.Pager(total, payersPerPage)
	d.Columns = []sortColumn{l.Column("Référence", "reference"), l.Column("Nom", "name"), l.Column("Adresse mail", "email"),
		{Label: "Compte"}, l.Column("Factures papier", "paperless_at"), l.Column("Créé le", "created")}
	s.render(c, http.StatusOK, "admin/payers.html", s.staffPage(c, "redevables", "Redevables", d))
}
