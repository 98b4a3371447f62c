package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
	"portail/pkg/tenant"
)

// apiPutInvoicePDF attaches a PDF to an existing invoice (content-addressed:
// the previous file is kept).
func (s *Server) apiPutInvoicePDF(c *gin.Context) {
	inv, ok := s.apiInvoice(c)
	if !ok {
		return
	}
	t := tenant.FromContext(c.Request.Context())
	// The invoice as it is, with the PDF: only the PDF changes.
	rep, err := s.Imports.ApplyInvoice(c.Request.Context(), t.ID, apiActor(c), imports.InvoiceLine{
		Number: inv.Number, PayerRef: inv.PayerRef, Object: inv.Object, IssuedOn: inv.IssuedOn, DueOn: inv.DueOn,
		AmountCents: inv.AmountCents, Status: inv.Status, DirectDebit: &inv.DirectDebit, Suspended: &inv.PaymentSuspended,
	}, c.Request.Body)
	if err != nil {
		apiWriteFailed(c, err)
		return
	}
	if rep.Rejected > 0 {
		apiRejected(c, "invalid_pdf", rep)
		return
	}
	c.JSON(http.StatusOK, rep)
}
