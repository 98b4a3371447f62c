package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/invoice"
	"portail/pkg/tenant"
)

// apiInvoice loads the :number invoice of the request's commune, or
// answers the request itself and returns false.
func (s *Server) apiInvoice(c *gin.Context) (invoice.WithPayer, bool) {
	t := tenant.FromContext(c.Request.Context())
	inv, err := s.Invoices.GetByNumber(c.Request.Context(), t.ID, c.Param("number"))
	if errors.Is(err, invoice.ErrNotFound) {
		apiError(c, http.StatusNotFound, "not_found", "no invoice with this number", nil)
		return inv, false
	}
	if err != nil {
		apiError(c, http.StatusInternalServerError, "internal", "internal error", nil)
		c.Error(err)
		return inv, false
	}
	return inv, true
}

// apiGetInvoice reads one invoice by number.
func (s *Server) apiGetInvoice(c *gin.Context) {
	inv, ok := s.apiInvoice(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"number": inv.Number, "payer_reference": inv.PayerRef, "object": inv.Object,
		"issued_on": inv.IssuedOn.Format("2006-01-02"), "due_on": inv.DueOn.Format("2006-01-02"),
		"amount_cents": inv.AmountCents, "status": inv.Status, "paid_at": inv.PaidAt, "paid_how": inv.PaidHow,
		"direct_debit": inv.DirectDebit, "payment_suspended": inv.PaymentSuspended,
		"declared_paid_by_resident": inv.DeclaredPaidAt != nil,
		"pdf":                       gin.H{"present": inv.HasPDF(), "sha256": inv.PDFSHA256, "size": inv.PDFSize},
	})
}
