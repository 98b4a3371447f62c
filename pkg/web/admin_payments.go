package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"portail/pkg/invoice"
	"portail/pkg/payfip"
	"portail/pkg/payment"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// adminPaymentsPerPage is the page size of "Paiements".
const adminPaymentsPerPage = 25

// paymentStatusLabels name the attempt statuses for staff.
var paymentStatusLabels = []option{
	{string(payment.StatusPaid), "Payé"},
	{string(payment.StatusPending), "En cours"},
	{string(payment.StatusRefused), "Refusé"},
	{string(payment.StatusCancelled), "Abandonné"},
	{string(payment.StatusExpired), "Non abouti"},
	{string(payment.StatusError), "Erreur technique"},
}

func paymentStatusLabel(s payment.Status) string {
	for _, o := range paymentStatusLabels {
		if o.Value == string(s) {
			return o.Label
		}
	}
	return string(s)
}

// paymentMeans is how the resident paid, read from PayFiP's resultrans
// (P and R: card; V and Z: direct debit); "" before a result.
func paymentMeans(resultrans string) string {
	switch resultrans {
	case payfip.ResultCardPaid, payfip.ResultCardRefused:
		return "Carte bancaire"
	case payfip.ResultDebitPaid, payfip.ResultDebitRefused:
		return "Prélèvement"
	}
	return ""
}

// paymentModeLabel names the PayFiP integration the attempt went through.
func paymentModeLabel(m payfip.Mode) string {
	switch m {
	case payfip.ModeWS:
		return "Web service"
	case payfip.ModeClassic:
		return "Classique"
	}
	return string(m)
}

// paymentFilters are the search form of "Paiements" as given in the URL,
// read into a payment.Query (the export reads the same ones).
type paymentFilters struct {
	From, To, Status, AmountMin, AmountMax, Invoice, Payer, Reference string
	Invalid                                                           string // a filter that could not be read
	InvalidField                                                      string
}

func readPaymentFilters(l listParams) (paymentFilters, payment.Query) {
	f := paymentFilters{From: l.Filter("du"), To: l.Filter("au"), Status: l.Filter("statut"), AmountMin: l.Filter("montant_min"),
		AmountMax: l.Filter("montant_max"), Invoice: l.Filter("facture"), Payer: l.Filter("redevable"), Reference: l.Filter("reference")}
	q := payment.Query{InvoiceNumber: f.Invoice, Payer: f.Payer, Reference: f.Reference, Sort: l.Sort}
	for _, o := range paymentStatusLabels {
		if o.Value == f.Status {
			q.Status = []payment.Status{payment.Status(o.Value)}
		}
	}
	if q.Status == nil {
		f.Status = ""
	}
	refuse := func(field, msg string) {
		if f.Invalid == "" {
			f.Invalid, f.InvalidField = msg, field
		}
	}
	var err error
	if q.From, err = parseDay(f.From); err != nil {
		refuse("du", "La date de début doit s'écrire JJ/MM/AAAA.")
	}
	if q.To, err = parseDay(f.To); err != nil {
		refuse("au", "La date de fin doit s'écrire JJ/MM/AAAA.")
	} else if !q.To.IsZero() {
		q.To = q.To.AddDate(0, 0, 1) // the whole last day
	}
	amount := func(field, s string) int64 {
		if s == "" {
			return 0
		}
		cents, err := invoice.ParseAmount(s)
		if err != nil || cents < 0 {
			refuse(field, "Les montants s'écrivent en euros, par exemple 12,50.")
			return 0
		}
		return cents
	}
	q.AmountMin, q.AmountMax = amount("montant_min", f.AmountMin), amount("montant_max", f.AmountMax)
	if q.AmountMax > 0 && q.AmountMin > q.AmountMax {
		refuse("montant_max", "Le montant maximum est inférieur au montant minimum.")
	}
	return f, q
}

// paymentRow is an attempt as the list shows it.
type paymentRow struct {
	payment.Row
	StatusLabel, Means string
}

type adminPaymentsData struct {
	paymentFilters
	Statuses  []option
	Rows      []paymentRow
	Total     int
	Pager     pager
	Columns   []sortColumn
	ExportURL string // the CSV of the same filters
}

// adminPayments is "Paiements": the commune's payment attempts, searched
// by date, status, amount, invoice, payer or PayFiP reference.
func (s *Server) adminPayments(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	l := readList(c, payment.Sorts(), payment.DefaultSort)
	f, q := readPaymentFilters(l)
	d := adminPaymentsData{paymentFilters: f, Statuses: paymentStatusLabels}
	status := http.StatusOK
	if f.Invalid == "" {
		q.Page, q.PerPage = l.Page, adminPaymentsPerPage
		rows, total, err := s.Payments.Search(ctx, t.ID, q)
		if last := lastPage(total, adminPaymentsPerPage); err == nil && l.Page > last {
			q.Page, l.Page = last, last
			rows, total, err = s.Payments.Search(ctx, t.ID, q)
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		for _, r := range rows {
			d.Rows = append(d.Rows, paymentRow{Row: r, StatusLabel: paymentStatusLabel(r.Status), Means: paymentMeans(r.ResultTrans)})
		}
		d.Total = total
	} else {
		status = http.StatusUnprocessableEntity
	}
	d.Pager = l.Pager(d.Total, adminPaymentsPerPage)
	d.Columns = []sortColumn{{Label: "Référence"}, l.Column("Date", "created"), l.Column("Redevable", "payer"), {Label: "Factures"},
		l.NumColumn("Montant", "amount"), l.Column("État", "status"), {Label: "Moyen de paiement"}}
	export := url.Values{}
	for k, v := range c.Request.URL.Query() {
		if k != "page" && len(v) > 0 && strings.TrimSpace(v[0]) != "" {
			export.Set(k, v[0])
		}
	}
	d.ExportURL = "/admin/paiements/export"
	if len(export) > 0 {
		d.ExportURL += "?" + export.Encode()
	}
	p := s.staffPage(c, "paiements", "Paiements", d)
	if f.Invalid != "" {
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: f.Invalid, Fields: []string{f.InvalidField}})
	}
	s.render(c, status, "admin/payments.html", p)
}
