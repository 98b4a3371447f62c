package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"portail/pkg/invoice"
	"portail/pkg/payment"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// paySelectPerPage is the length of a page of the selection table, as in
// "Mes factures".
const paySelectPerPage = 20

type payRow struct {
	payment.Offer
	Selected  bool
	ToggleURL string // "" when the invoice cannot be selected now
}

type paySelectData struct {
	Rows     []payRow
	Selected []payment.Offer // the whole selection, whatever the page
	Count    int
	Total    int64
	Pager    pager
}

// selectedIDs reads the repeated "facture" parameter (form or query): the
// distinct positive ids, in order, at most limit of them (a selection is
// bounded by the commune's batch maximum; the rest is not read).
func selectedIDs(values []string, limit int) []int64 {
	var ids []int64
	for _, v := range values {
		if len(ids) >= limit {
			break
		}
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// selectionURL is the selection page showing page (0: the first) with ids
// selected: the selection travels in the query string from page to page.
func selectionURL(ids []int64, page int) string {
	q := url.Values{}
	for _, id := range ids {
		q.Add("facture", strconv.FormatInt(id, 10))
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	if len(q) == 0 {
		return "/paiement"
	}
	return "/paiement?" + q.Encode()
}

// paySelect is the selection page: the invoices that can be paid online,
// a page at a time; a click on an invoice number toggles it (no JavaScript
// needed) and the first column shows X on selected rows.
func (s *Server) paySelect(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	limit := payment.BatchLimit(t)
	selected := selectedIDs(c.QueryArray("facture"), limit)
	page := pageParam(c)
	var flashes []view.Flash
	var toggled *toggle
	if id, err := strconv.ParseInt(c.Query("basculer"), 10, 64); err == nil && id > 0 {
		switch {
		case slices.Contains(selected, id):
			selected = slices.DeleteFunc(selected, func(x int64) bool { return x == id })
			toggled = &toggle{ID: id}
		case len(selected) >= 1 && !t.BatchAllowed:
			flashes = append(flashes, view.Flash{Kind: "error", Text: payment.ReasonBatchNotAllowed})
		case len(selected) >= limit:
			flashes = append(flashes, view.Flash{Kind: "error", Text: payment.BatchMaxReason(limit)})
		default:
			selected = append(selected, id)
			toggled = &toggle{ID: id, Selected: true}
		}
	}
	s.renderPaySelect(c, t, a.ID, selected, page, flashes, http.StatusOK, toggled)
}

// toggle is a click on an invoice number of the selection page.
type toggle struct {
	ID       int64
	Selected bool // added to the selection; false: removed
}

// message confirms the toggle with the selection's new count and total:
// the page opens on it, so that a screen reader says what the click did.
func (tg toggle) message(number string, d paySelectData) view.Flash {
	what := "Facture"
	if number != "" {
		what += " " + number
	}
	if tg.Selected {
		what += " sélectionnée"
	} else {
		what += " retirée de la sélection"
	}
	return view.Flash{Kind: "info", Text: fmt.Sprintf("%s. Nombre de factures %d, montant à régler %s.", what, d.Count, invoice.FormatAmount(d.Total))}
}

// renderPaySelect shows page of the selection table with selected ids: one
// query judges the selection (invoices no longer payable leave it, saying
// why), two give the page and its count. toggled, when not nil, is the
// click that led here, confirmed first.
func (s *Server) renderPaySelect(c *gin.Context, t *tenant.Tenant, accountID int64, selected []int64, page int, flashes []view.Flash, status int, toggled *toggle) {
	ctx := c.Request.Context()
	page = max(page, 1)
	// A refused selection above the commune's maximum comes back cut to it.
	selected = selected[:min(len(selected), payment.BatchLimit(t))]
	judged, err := s.Payments.Judged(ctx, t, accountID, selected)
	if err != nil {
		s.fail(c, err)
		return
	}
	d := paySelectData{}
	var kept []int64
	for _, o := range judged {
		if !o.Payable {
			if text := "Facture " + o.Number + " : " + o.Reason; !saidAlready(flashes, o.Reason) {
				flashes = append(flashes, view.Flash{Kind: "error", Text: text})
			}
			continue
		}
		d.Selected = append(d.Selected, o)
		d.Count++
		d.Total += o.AmountCents
		kept = append(kept, o.ID)
	}
	// The resident's order, less what left the selection.
	selected = slices.DeleteFunc(slices.Clone(selected), func(id int64) bool { return !slices.Contains(kept, id) })

	offers, total, err := s.Payments.Offers(ctx, t, accountID, page, paySelectPerPage)
	if last := lastPage(total, paySelectPerPage); err == nil && page > last {
		page = last // past the end: the last page
		offers, total, err = s.Payments.Offers(ctx, t, accountID, page, paySelectPerPage)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	for _, o := range offers {
		row := payRow{Offer: o, Selected: slices.Contains(selected, o.ID)}
		if o.Payable { // held by an attempt: shown with the reason, not selectable
			row.ToggleURL = toggleURL(selected, page, o.ID)
		}
		d.Rows = append(d.Rows, row)
	}
	d.Pager = newPager(page, total, paySelectPerPage, func(n int) string { return selectionURL(selected, n) })

	p := s.page(c, "factures", "Payer mes factures", d)
	// A selected invoice that left the selection (no longer payable) was
	// said above; a toggle that changed it is confirmed first.
	if toggled != nil && (!toggled.Selected || slices.Contains(kept, toggled.ID)) {
		p.Flashes = append(p.Flashes, toggled.message(d.number(toggled.ID), d))
	}
	p.Flashes = append(p.Flashes, flashes...)
	if total == 0 {
		text := "Aucune facture ne peut être réglée en ligne pour le moment."
		if r := payment.CommuneRefusal(t); r != "" {
			text = r // the commune takes no payment at all
		}
		p.Flashes = append(p.Flashes, view.Flash{Kind: "info", Text: text})
	}
	s.render(c, status, "resident/pay_select.html", p)
}

// number is the number of invoice id if the page shows it ("" if not).
func (d paySelectData) number(id int64) string {
	for _, o := range d.Selected {
		if o.ID == id {
			return o.Number
		}
	}
	for _, r := range d.Rows {
		if r.ID == id {
			return r.Number
		}
	}
	return ""
}

// toggleURL selects or deselects id, staying on page.
func toggleURL(selected []int64, page int, id int64) string {
	u := selectionURL(selected, page)
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "basculer=" + strconv.FormatInt(id, 10)
}

// saidAlready tells whether a flash already gives reason (Start's refusal
// of the same invoice).
func saidAlready(flashes []view.Flash, reason string) bool {
	for _, f := range flashes {
		if strings.HasSuffix(f.Text, reason) {
			return true
		}
	}
	return false
}
