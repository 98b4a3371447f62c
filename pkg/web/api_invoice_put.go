package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
	"portail/pkg/invoice"
	"portail/pkg/tenant"
)

type apiInvoiceBody struct {
	PayerReference   string `json:"payer_reference"`
	Object           string `json:"object"`
	IssuedOn         string `json:"issued_on"` // YYYY-MM-DD
	DueOn            string `json:"due_on"`
	AmountCents      int64  `json:"amount_cents"`
	Status           string `json:"status"` // unpaid (default) | paid | treasury | cancelled
	DirectDebit      bool   `json:"direct_debit"`
	PaymentSuspended bool   `json:"payment_suspended"`
}

// apiPutInvoice creates or updates one invoice by its number: 201 when
// created, 200 otherwise, with the import report.
func (s *Server) apiPutInvoice(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	var in apiInvoiceBody
	if !decodeJSON(c, &in, "a JSON invoice object (see the OpenAPI document)") {
		return
	}
	issued, err := time.Parse(time.DateOnly, in.IssuedOn)
	if err != nil {
		apiError(c, http.StatusUnprocessableEntity, "invalid_invoice", "issued_on must be a date YYYY-MM-DD", nil)
		return
	}
	due, err := time.Parse(time.DateOnly, in.DueOn)
	if err != nil {
		apiError(c, http.StatusUnprocessableEntity, "invalid_invoice", "due_on must be a date YYYY-MM-DD", nil)
		return
	}
	status := invoice.Status(in.Status)
	if status == "" {
		status = invoice.StatusUnpaid
	}
	rep, err := s.Imports.ApplyInvoice(c.Request.Context(), t.ID, apiActor(c), imports.InvoiceLine{
		Number: c.Param("number"), PayerRef: in.PayerReference, Object: in.Object,
		IssuedOn: issued, DueOn: due, AmountCents: in.AmountCents, Status: status,
		DirectDebit: &in.DirectDebit, Suspended: &in.PaymentSuspended,
	}, nil)
	if err != nil {
		apiWriteFailed(c, err)
		return
	}
	if rep.Rejected > 0 {
		apiRejected(c, "invalid_invoice", rep)
		return
	}
	code := http.StatusOK
	if rep.Inserted > 0 {
		code = http.StatusCreated
	}
	c.JSON(code, rep)
}
