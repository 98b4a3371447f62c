package web

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/dashboard"
	"portail/pkg/imports"
	"portail/pkg/invoice"
	"portail/pkg/svgchart"
	"portail/pkg/tenant"
)

// dashboardImports is how many of the last imports the dashboard lists.
const dashboardImports = 5

// frenchMonths abbreviate the months on the charts' axis.
var frenchMonths = [...]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."}

func monthLabel(t time.Time) string {
	return fmt.Sprintf("%s %d", frenchMonths[t.Month()-1], t.Year())
}

type dashboardMonth struct {
	dashboard.Month
	Label string
}

type dashboardData struct {
	dashboard.Figures
	Rows                        []dashboardMonth
	PaymentsChart, DueChart     template.HTML
	ActivationRate, PaperlessRt string
	Imports                     []importRow
}

// adminDashboard is the staff's home, "Tableau de bord": what residents
// owe, what they paid online over twelve months, what went to the
// treasury; payments per month and amounts due against paid as SVG charts
// drawn on the server, each followed by its figures as a table; the
// activation and paperless rates; the last imports.
func (s *Server) adminDashboard(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	f, err := dashboard.Compute(ctx, s.DB, t.ID, time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	d := dashboardData{Figures: f, ActivationRate: percentLabel(f.ActivationRate()), PaperlessRt: percentLabel(f.PaperlessRate())}
	var cats []string
	var payments, due, paid []float64
	for _, m := range f.Months {
		label := monthLabel(m.Start)
		d.Rows = append(d.Rows, dashboardMonth{Month: m, Label: label})
		cats = append(cats, label)
		payments = append(payments, float64(m.Payments.Cents)/100)
		due = append(due, float64(m.Due.Cents)/100)
		paid = append(paid, float64(m.Paid.Cents)/100)
	}
	// Whole euros on the axis and the bars' tooltips; the tables give cents.
	euros := func(v float64) string {
		return strings.Replace(invoice.FormatAmount(int64(math.Round(v))*100), ",00", "", 1)
	}
	period := fmt.Sprintf("de %s à %s", cats[0], cats[len(cats)-1])
	if d.PaymentsChart, err = (svgchart.Chart{ID: "chart-payments", Title: "Paiements en ligne par mois",
		Description: "Montant des paiements en ligne acceptés chaque mois, " + period + ". Les chiffres sont dans le tableau qui suit.",
		Categories:  cats, Series: []svgchart.Series{{Name: "Payé en ligne", Values: payments, Class: "bar-paid"}}, Format: euros}).SVG(); err != nil {
		s.fail(c, err)
		return
	}
	if d.DueChart, err = (svgchart.Chart{ID: "chart-due", Title: "Montants dus et payés par mois",
		Description: "Montant des factures émises (dû) et des factures réglées (payé, par tout moyen) chaque mois, " + period + ". Les chiffres sont dans le tableau qui suit.",
		Categories:  cats, Series: []svgchart.Series{{Name: "Dû", Values: due, Class: "bar-due"}, {Name: "Payé", Values: paid, Class: "bar-paid"}},
		Format: euros}).SVG(); err != nil {
		s.fail(c, err)
		return
	}
	if s.Policy.Can(staffOf(c).Role, "imports:read") {
		rows, _, err := s.Imports.History(ctx, t.ID, imports.HistoryQuery{Page: 1, PerPage: dashboardImports})
		if err != nil {
			s.fail(c, err)
			return
		}
		for _, r := range rows {
			d.Imports = append(d.Imports, importRow{HistoryRow: r, KindLabel: importKindLabel(r.Kind),
				StatusLabel: importStatusLabel(r.Status), Uploader: importUploaderLabel(r.ActorKind, r.UploaderName), Size: sizeLabel(r.CSVSize + r.ZipSize)})
		}
	}
	s.render(c, http.StatusOK, "admin/dashboard.html", s.staffPage(c, "dashboard", "Tableau de bord", d))
}

// percentLabel writes a rate with one decimal and a decimal comma: "42,5 %".
func percentLabel(p float64) string {
	return strings.Replace(fmt.Sprintf("%.1f", p), ".", ",", 1) + "\u00a0%"
}
