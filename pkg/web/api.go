package web

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/apikey"
	"portail/pkg/invoice"
	"portail/pkg/tenant"
)

// The HTTP API v1 lets billing software push payers, invoices and PDFs.
// Every write goes through the same import functions as the CLI and the
// staff screens. Documented in pkg/web/openapi.yaml.

const (
	apiJSONBody   = 1 << 20   // one payer or invoice
	apiPDFBody    = 32 << 20  // one PDF
	apiImportBody = 512 << 20 // a CSV file and a ZIP of PDFs
)

type apiErrorBody struct {
	Error apiErrorDetail `json:"error"`
}

type apiErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func apiError(c *gin.Context, status int, code, msg string, details any) {
	c.AbortWithStatusJSON(status, apiErrorBody{apiErrorDetail{Code: code, Message: msg, Details: details}})
}

// apiAuth accepts "Authorization: Bearer <key>" of the request's commune only.
func (s *Server) apiAuth(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	c.Header("Cache-Control", "no-store")
	key, ok := bearerKey(c.GetHeader("Authorization"))
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="portail"`)
		apiError(c, http.StatusUnauthorized, "unauthorized", "API key missing: send Authorization: Bearer <key>", nil)
		return
	}
	if _, err := s.APIKeys.Verify(c.Request.Context(), t.ID, key); err != nil {
		if !errors.Is(err, apikey.ErrInvalid) {
			s.apiFail(c, err, "internal error")
			return
		}
		c.Header("WWW-Authenticate", `Bearer realm="portail", error="invalid_token"`)
		apiError(c, http.StatusUnauthorized, "unauthorized", "API key invalid, revoked or of another commune", nil)
		return
	}
	c.Next()
}

func apiLimit(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		c.Next()
	}
}

type apiPayer struct {
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
}

// apiPutPayer creates or updates one payer by its reference.
func (s *Server) apiPutPayer(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	var p apiPayer
	if !decodeJSON(c, &p, "a JSON object {display_name, email}") {
		return
	}
	file := csvOf([]string{"reference", "nom", "email"}, []string{c.Param("reference"), p.DisplayName, p.Email})
	rep, err := s.Accounts.ImportPayers(c.Request.Context(), t.ID, bytes.NewReader(file))
	var input *account.InputError
	switch {
	case errors.As(err, &input):
		apiError(c, http.StatusUnprocessableEntity, "invalid_payer", input.Message, nil)
		return
	case err != nil:
		s.apiFail(c, err, "internal error")
		return
	case len(rep.Rejected) > 0:
		apiError(c, http.StatusUnprocessableEntity, "invalid_payer", rep.Rejected[0].Reason, rep.Rejected)
		return
	}
	status := http.StatusOK
	if rep.Inserted > 0 {
		status = http.StatusCreated
	}
	c.JSON(status, gin.H{"reference": c.Param("reference"), "inserted": rep.Inserted, "updated": rep.Updated, "unchanged": rep.Unchanged, "notes": rep.Notes})
}

type apiInvoice struct {
	PayerReference   string `json:"payer_reference"`
	Object           string `json:"object"`
	IssuedOn         string `json:"issued_on"` // YYYY-MM-DD
	DueOn            string `json:"due_on"`
	AmountCents      int64  `json:"amount_cents"`
	Status           string `json:"status"` // unpaid | paid | treasury | cancelled
	DirectDebit      bool   `json:"direct_debit"`
	PaymentSuspended bool   `json:"payment_suspended"`
}

func isoToFrench(s string) (string, bool) {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		return "", false
	}
	return d.Format("02/01/2006"), true
}

func yesNo(b bool) string {
	if b {
		return "oui"
	}
	return "non"
}

var invoiceHeader = []string{"numero", "reference", "objet", "date", "echeance", "montant", "statut", "prelevement", "suspendu"}

func invoiceRecord(number string, in apiInvoice) []string {
	issued, _ := isoToFrench(in.IssuedOn)
	due, _ := isoToFrench(in.DueOn)
	status := in.Status
	if status == "" {
		status = "unpaid"
	}
	return []string{number, in.PayerReference, in.Object, issued, due,
		fmt.Sprintf("%d,%02d", in.AmountCents/100, in.AmountCents%100), status, yesNo(in.DirectDebit), yesNo(in.PaymentSuspended)}
}

// apiPutInvoice creates or updates one invoice by its number.
func (s *Server) apiPutInvoice(c *gin.Context) {
	var in apiInvoice
	if !decodeJSON(c, &in, "a JSON invoice object (see the OpenAPI document)") {
		return
	}
	if _, ok := isoToFrench(in.IssuedOn); !ok {
		apiError(c, http.StatusUnprocessableEntity, "invalid_invoice", "issued_on must be a date YYYY-MM-DD", nil)
		return
	}
	if _, ok := isoToFrench(in.DueOn); !ok {
		apiError(c, http.StatusUnprocessableEntity, "invalid_invoice", "due_on must be a date YYYY-MM-DD", nil)
		return
	}
	if in.AmountCents < 0 {
		apiError(c, http.StatusUnprocessableEntity, "invalid_invoice", "amount_cents must not be negative", nil)
		return
	}
	s.apiImport(c, csvOf(invoiceHeader, invoiceRecord(c.Param("number"), in)), nil, "api:"+c.Param("number"))
}

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
		s.apiFail(c, err, "internal error")
		return inv, false
	}
	return inv, true
}

// apiPutInvoicePDF attaches a PDF to an existing invoice.
func (s *Server) apiPutInvoicePDF(c *gin.Context) {
	inv, ok := s.apiInvoice(c)
	if !ok {
		return
	}
	pdf, err := io.ReadAll(c.Request.Body)
	if err != nil {
		apiError(c, http.StatusRequestEntityTooLarge, "too_large", "a PDF must be at most 32 MiB", nil)
		return
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create(inv.Number + ".pdf")
	w.Write(pdf)
	zw.Close()
	zr, _ := zip.NewReader(bytes.NewReader(zbuf.Bytes()), int64(zbuf.Len()))
	current := apiInvoice{PayerReference: inv.PayerRef, Object: inv.Object, IssuedOn: inv.IssuedOn.Format("2006-01-02"),
		DueOn: inv.DueOn.Format("2006-01-02"), AmountCents: inv.AmountCents, Status: string(inv.Status),
		DirectDebit: inv.DirectDebit, PaymentSuspended: inv.PaymentSuspended}
	s.apiImport(c, csvOf(invoiceHeader, invoiceRecord(inv.Number, current)), zr, "api:"+inv.Number+".pdf")
}

// apiImportFiles takes the billing software's CSV export and an optional
// ZIP of PDFs (multipart fields "csv" and "pdfs").
func (s *Server) apiImportFiles(c *gin.Context) {
	fh, err := c.FormFile("csv")
	if err != nil {
		apiError(c, http.StatusBadRequest, "missing_file", `multipart field "csv" is required`, nil)
		return
	}
	f, err := fh.Open()
	if err != nil {
		apiError(c, http.StatusBadRequest, "unreadable_file", err.Error(), nil)
		return
	}
	defer f.Close()
	csvBytes, err := io.ReadAll(f)
	if err != nil {
		apiError(c, http.StatusBadRequest, "unreadable_file", err.Error(), nil)
		return
	}
	var zr *zip.Reader
	if zh, err := c.FormFile("pdfs"); err == nil {
		zf, err := zh.Open()
		if err != nil {
			apiError(c, http.StatusBadRequest, "unreadable_file", err.Error(), nil)
			return
		}
		defer zf.Close()
		if zr, err = zip.NewReader(zf, zh.Size); err != nil {
			apiError(c, http.StatusUnprocessableEntity, "invalid_zip", "pdfs is not a readable ZIP archive", nil)
			return
		}
	}
	s.apiImport(c, csvBytes, zr, fh.Filename)
}

func (s *Server) apiImport(c *gin.Context, csvBytes []byte, pdfs *zip.Reader, name string) {
	t := tenant.FromContext(c.Request.Context())
	rep, err := s.Importer.Import(c.Request.Context(), t, bytes.NewReader(csvBytes), pdfs, invoice.ImportOptions{Filename: name})
	switch {
	case errors.Is(err, invoice.ErrRejected) || rep.Rejected > 0:
		msg := "the file was rejected; nothing was imported"
		if len(rep.Errors) > 0 {
			msg = rep.Errors[0].Reason
		}
		apiError(c, http.StatusUnprocessableEntity, "rejected", msg, rep)
	case err != nil:
		s.apiFail(c, err, "internal error; nothing was imported")
	default:
		status := http.StatusOK
		if rep.Inserted > 0 {
			status = http.StatusCreated
		}
		c.JSON(status, rep)
	}
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

func (s *Server) apiNotFound(c *gin.Context) {
	apiError(c, http.StatusNotFound, "not_found", "no such API route", nil)
}

func csvOf(header, record []string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Comma = ';'
	w.Write(header)
	w.Write(record)
	w.Flush()
	return b.Bytes()
}
