package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/csvexport"
	"portail/pkg/invoice"
	"portail/pkg/paris"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// invoicesPerPage is the page size of the staff's invoice lists.
const invoicesPerPage = 50

// invoiceStatusOptions are the statuses of the filter and of the status
// change, labelled as residents read them.
var invoiceStatusOptions = []invoice.Status{invoice.StatusUnpaid, invoice.StatusPaid, invoice.StatusTreasury, invoice.StatusCancelled}

// invoiceList is the invoice table shared by "Factures" and a payer's page
// (templates/admin/partials/invoices.html).
type invoiceList struct {
	Rows    []invoice.Row
	Total   int
	Pager   pager
	Columns []sortColumn
	// ShowPayer: the payer column (not on a payer's own page).
	ShowPayer bool
}

// searchInvoiceList runs q as page l of an invoice list; a page past the
// end shows the last one.
func (s *Server) searchInvoiceList(c *gin.Context, tenantID int64, l listParams, q invoice.Query, showPayer bool) (invoiceList, error) {
	q.Sort, q.Page, q.PerPage = l.Sort, l.Page, invoicesPerPage
	rows, total, err := s.Invoices.Search(c.Request.Context(), tenantID, q)
	if last := lastPage(total, invoicesPerPage); err == nil && l.Page > last {
		q.Page, l.Page = last, last
		rows, total, err = s.Invoices.Search(c.Request.Context(), tenantID, q)
	}
	if err != nil {
		return invoiceList{}, err
	}
	cols := []sortColumn{l.Column("Numéro", "number")}
	if showPayer {
		cols = append(cols, l.Column("Redevable", "payer"))
	}
	cols = append(cols, sortColumn{Label: "Objet"}, l.Column("Émise le", "issued"), l.Column("Échéance", "due"),
		l.NumColumn("Montant", "amount"), l.Column("État", "status"))
	return invoiceList{Rows: rows, Total: total, Pager: l.Pager(total, invoicesPerPage), Columns: cols, ShowPayer: showPayer}, nil
}

// invoiceFilters are the filters of "Factures" as typed in the URL.
type invoiceFilters struct {
	Number, Payer, Status                string
	IssuedFrom, IssuedTo, DueFrom, DueTo string
	AmountMin, AmountMax                 string
	AccountID                            int64            // a payer's invoices (from their page)
	Account                              *account.Account // that payer, when AccountID is set
}

type adminInvoicesData struct {
	List     invoiceList
	Filters  invoiceFilters
	Statuses []option
	// ExportURL is the CSV export of the current search.
	ExportURL string
}

func statusOptions() []option {
	out := make([]option, len(invoiceStatusOptions))
	for i, st := range invoiceStatusOptions {
		out[i] = option{string(st), st.Label()}
	}
	return out
}

// invoiceQuery reads the filters of l into a query; problems name the
// filters that could not be read (field id → message), which are then
// ignored.
func (s *Server) invoiceQuery(c *gin.Context, l listParams) (invoice.Query, invoiceFilters, []view.Flash, error) {
	t := tenant.FromContext(c.Request.Context())
	f := invoiceFilters{Number: l.Filter("numero"), Payer: l.Filter("redevable"), Status: l.Filter("etat"),
		IssuedFrom: l.Filter("emise_du"), IssuedTo: l.Filter("emise_au"), DueFrom: l.Filter("echeance_du"), DueTo: l.Filter("echeance_au"),
		AmountMin: l.Filter("montant_min"), AmountMax: l.Filter("montant_max")}
	q := invoice.Query{Number: f.Number, Payer: f.Payer}
	var problems []view.Flash
	bad := func(field, msg string) {
		problems = append(problems, view.Flash{Kind: "error", Text: msg, Fields: []string{field}})
	}
	if st := invoice.Status(f.Status); st.Valid() {
		q.Status = []invoice.Status{st}
	} else {
		f.Status = ""
	}
	days := []struct {
		field, value, label string
		into                *time.Time
	}{
		{"emise_du", f.IssuedFrom, "La date d'émission (du)", &q.IssuedFrom}, {"emise_au", f.IssuedTo, "La date d'émission (au)", &q.IssuedTo},
		{"echeance_du", f.DueFrom, "L'échéance (du)", &q.DueFrom}, {"echeance_au", f.DueTo, "L'échéance (au)", &q.DueTo},
	}
	for _, d := range days {
		v, err := parseDay(d.value)
		if err != nil {
			bad(d.field, d.label+" doit s'écrire JJ/MM/AAAA.")
			continue
		}
		*d.into = v
	}
	amounts := []struct {
		field, value, label string
		into                *int64
	}{{"montant_min", f.AmountMin, "Le montant minimum", &q.AmountMin}, {"montant_max", f.AmountMax, "Le montant maximum", &q.AmountMax}}
	for _, a := range amounts {
		if a.value == "" {
			continue
		}
		v, err := invoice.ParseAmount(a.value)
		if err != nil || v < 0 {
			bad(a.field, a.label+" doit être un montant en euros, par exemple 12,50.")
			continue
		}
		*a.into = v
	}
	if raw := l.Filter("compte"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err == nil && id > 0 {
			a, err := s.Accounts.Get(c.Request.Context(), t.ID, id)
			if err != nil && err != account.ErrNotFound {
				return q, f, nil, err
			}
			f.Account = a
		}
		if f.Account == nil {
			// Another commune's payer, or none: a list of nothing, not theirs.
			id = -1
		}
		f.AccountID, q.AccountID = id, id
	}
	return q, f, problems, nil
}

// adminInvoices is "Factures": the commune's invoices, searched, filtered,
// sorted and paginated, each with its status as residents read it.
func (s *Server) adminInvoices(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	l := readList(c, invoice.Sorts(), invoice.DefaultSort)
	q, f, problems, err := s.invoiceQuery(c, l)
	if err != nil {
		s.fail(c, err)
		return
	}
	list, err := s.searchInvoiceList(c, t.ID, l, q, f.AccountID == 0)
	if err != nil {
		s.fail(c, err)
		return
	}
	export := "/admin/factures/export.csv" + strings.TrimPrefix(l.URL("page", "", sortParam, l.Sort), l.path)
	p := s.staffPage(c, "factures", "Factures", adminInvoicesData{List: list, Filters: f, Statuses: statusOptions(), ExportURL: export})
	p.Flashes = append(p.Flashes, problems...)
	s.render(c, http.StatusOK, "admin/invoices.html", p)
}

// adminInvoicesExport streams the current search of "Factures" as CSV,
// one row in memory at a time.
func (s *Server) adminInvoicesExport(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	l := readList(c, invoice.Sorts(), invoice.DefaultSort)
	q, _, _, err := s.invoiceQuery(c, l)
	if err != nil {
		s.fail(c, err)
		return
	}
	q.Sort = l.Sort
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, csvexport.Filename("factures", t.Slug, time.Now().In(paris.Location))))
	w, err := csvexport.New(c.Writer, "Numéro", "Référence redevable", "Redevable", "Objet", "Date", "Échéance", "Montant",
		"État", "Réglée le", "Mode de règlement", "Prélèvement automatique", "Paiement en ligne suspendu", "Déclarée réglée par le redevable le")
	if err != nil {
		s.fail(c, err)
		return
	}
	err = s.Invoices.Each(c.Request.Context(), t.ID, q, func(r invoice.Row) error {
		var paidAt, declared time.Time
		if r.PaidAt != nil {
			paidAt = *r.PaidAt
		}
		if r.DeclaredPaidAt != nil {
			declared = *r.DeclaredPaidAt
		}
		return w.Write(r.Number, r.PayerRef, r.PayerName, r.Object, csvexport.Date(r.IssuedOn, paris.Location), csvexport.Date(r.DueOn, paris.Location),
			csvexport.Amount(r.AmountCents), r.Status.Label(), csvexport.Date(paidAt, paris.Location), paidHowLabel(r.PaidHow),
			csvexport.Bool(r.DirectDebit), csvexport.Bool(r.PaymentSuspended), csvexport.Date(declared, paris.Location))
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		// Headers are gone: the truncated file is all the client gets; log it.
		s.log.Error("invoices export", "error", err, "tenant", t.Slug)
	}
}

// paidHowLabel names how an invoice was paid.
func paidHowLabel(how string) string {
	switch how {
	case invoice.PaidOnline:
		return "en ligne"
	case invoice.PaidElsewhere:
		return "autre moyen"
	case invoice.PaidDirectDebit:
		return "prélèvement"
	}
	return ""
}
