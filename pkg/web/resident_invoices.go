package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"portail/pkg/blob"
	"portail/pkg/invoice"
	"portail/pkg/tenant"
)

// filterTab is one of "non réglées / réglées / en trésorerie".
type filterTab struct {
	Slug, Label string
	Status      invoice.Status
	Count       int
	Current     bool
}

var invoiceTabs = []filterTab{
	{Slug: "non-reglees", Label: "Non réglées", Status: invoice.StatusUnpaid},
	{Slug: "reglees", Label: "Réglées", Status: invoice.StatusPaid},
	{Slug: "tresorerie", Label: "En trésorerie", Status: invoice.StatusTreasury},
}

type invoicesData struct {
	Tabs     []filterTab
	Current  filterTab
	Invoices []invoice.Row
	Pager    pager
	Total    int
	Treasury bool
}

// invoices is "Mes factures": the table, the status filter with counts,
// most recent first, paginated.
func (s *Server) invoices(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	ctx := c.Request.Context()
	counts, err := s.Invoices.Counts(ctx, t.ID, a.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	tabs := make([]filterTab, len(invoiceTabs))
	copy(tabs, invoiceTabs)
	current := 0
	for i := range tabs {
		tabs[i].Count = counts[tabs[i].Status]
		if c.Query("statut") == tabs[i].Slug {
			current = i
		}
	}
	tabs[current].Current = true
	// Past the end (an old link after payments made the list shorter, a
	// hand-edited URL): the last page.
	page := min(pageParam(c), lastPage(tabs[current].Count, invoice.DefaultPerPage))
	list, total, err := s.Invoices.Search(ctx, t.ID, invoice.Query{AccountID: a.ID,
		Status: []invoice.Status{tabs[current].Status}, TotalKnown: true, Total: tabs[current].Count, Page: page})
	if err != nil {
		s.fail(c, err)
		return
	}
	pageURL := func(n int) string {
		return "/factures?" + url.Values{"statut": {tabs[current].Slug}, "page": {strconv.Itoa(n)}}.Encode()
	}
	d := invoicesData{Tabs: tabs, Current: tabs[current], Invoices: list, Total: total,
		Pager:    newPager(page, total, invoice.DefaultPerPage, pageURL),
		Treasury: tabs[current].Status == invoice.StatusTreasury}
	s.render(c, http.StatusOK, "resident/invoices.html", s.page(c, "factures", "Mes factures", d))
}

type invoiceData struct {
	Invoice  invoice.Invoice
	CanPay   bool
	Reason   string
	Treasury bool
	Declared bool
	Receipt  string // the payment receipt of an invoice paid online
}

// invoiceID reads the :id path parameter; anything else is "not found".
func invoiceID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	return id, err == nil && id > 0
}

// ownInvoice loads the :id invoice of the logged-in resident; another
// account's or commune's invoice is "not found". It answers the request
// itself when it returns false.
func (s *Server) ownInvoice(c *gin.Context) (invoice.Invoice, bool) {
	t := tenant.FromContext(c.Request.Context())
	id, ok := invoiceID(c)
	if !ok {
		s.notFound(c)
		return invoice.Invoice{}, false
	}
	inv, err := s.Invoices.Get(c.Request.Context(), t.ID, residentOf(c).Account.ID, id)
	if errors.Is(err, invoice.ErrNotFound) {
		s.notFound(c)
		return inv, false
	}
	if err != nil {
		s.fail(c, err)
		return inv, false
	}
	return inv, true
}

// invoiceDetail shows an invoice and what the resident can do with it.
func (s *Server) invoiceDetail(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	inv, ok := s.ownInvoice(c)
	if !ok {
		return
	}
	d := invoiceData{Invoice: inv, Treasury: inv.Status == invoice.StatusTreasury, Declared: inv.DeclaredPaidAt != nil}
	v, err := s.Payments.Verdict(c.Request.Context(), t, a.ID, inv.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	d.CanPay, d.Reason = v.Payable, v.Reason
	if inv.Status == invoice.StatusPaid {
		if pa, err := s.Payments.ForInvoice(c.Request.Context(), t.ID, a.ID, inv.ID); err == nil && pa != nil {
			d.Receipt = fmt.Sprintf("/paiements/%d/attestation", pa.ID)
		}
	}
	s.render(c, http.StatusOK, "resident/invoice.html", s.page(c, "factures", "Facture "+inv.Number, d))
}

// declarePaid sets or clears the resident's own "paid by other means"
// marker; the official status never changes.
func (s *Server) declarePaid(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	id, ok := invoiceID(c)
	if !ok {
		s.notFound(c)
		return
	}
	paid := c.PostForm("reglee") == "1"
	err := s.Invoices.MarkDeclaredPaid(c.Request.Context(), t.ID, a.ID, id, paid)
	switch {
	case errors.Is(err, invoice.ErrNotFound):
		s.notFound(c)
		return
	case errors.Is(err, invoice.ErrNotDeclarable):
		s.flash(c, "Cette facture ne peut pas être marquée comme réglée.")
	case err != nil:
		s.fail(c, err)
		return
	case paid:
		s.flash(c, "Vous avez indiqué avoir réglé cette facture par un autre moyen. Le service en est informé ; son état officiel changera à réception du règlement.")
	default:
		s.flash(c, "La facture est de nouveau indiquée comme non réglée.")
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/factures/%d", id))
}

// invoicePDF streams the invoice's PDF to its owner only. The store checks
// the SHA-256 while streaming and holds back the end of a corrupted file:
// the connection is then cut, so no corrupted file is ever served whole.
func (s *Server) invoicePDF(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	inv, ok := s.ownInvoice(c)
	if !ok {
		return
	}
	if !inv.HasPDF() {
		s.notFound(c)
		return
	}
	body, size, err := s.Blobs.Get(ctx, inv.PDFKey, inv.PDFSHA256)
	if err != nil {
		if errors.Is(err, blob.ErrChecksumMismatch) {
			s.log.Error("invoice PDF corrupted in storage", "tenant", t.Slug, "invoice", inv.Number, "key", inv.PDFKey)
		}
		if errors.Is(err, blob.ErrUnavailable) {
			c.Error(fmt.Errorf("web: invoice PDF %s: %w", inv.Number, err))
			s.unavailable(c, "Le document PDF de cette facture ne peut pas être téléchargé pour le moment. Veuillez réessayer dans quelques instants.")
			return
		}
		s.fail(c, fmt.Errorf("web: invoice PDF %s: %w", inv.Number, err))
		return
	}
	defer body.Close()
	h := c.Writer.Header()
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Content-Disposition", contentDisposition("facture-"+inv.Number+".pdf"))
	h.Set("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	if _, err := io.Copy(c.Writer, body); err != nil {
		s.log.Error("invoice PDF not served whole", "tenant", t.Slug, "invoice", inv.Number, "error", err)
		panic(http.ErrAbortHandler) // cut the connection: the client sees a failed download
	}
}

// contentDisposition makes a download with a safe ASCII name.
func contentDisposition(name string) string {
	safe := make([]rune, 0, len(name))
	for _, r := range name {
		if r < 128 && (r == '-' || r == '.' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')) {
			safe = append(safe, r)
		} else {
			safe = append(safe, '_')
		}
	}
	return `attachment; filename="` + string(safe) + `"`
}
