package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/apikey"
	"portail/pkg/audit"
	"portail/pkg/db"
	"portail/pkg/imports"
	"portail/pkg/tenant"
)

// The HTTP API v1 lets billing software push payers, invoices and PDFs.
// Every write goes through the same import pipeline (pkg/imports) as the
// CLI and the staff screens. Documented in pkg/web/openapi.yaml.

const (
	apiJSONBody           = 1 << 20    // one payer or invoice
	apiPDFBody            = 32 << 20   // one PDF
	apiImportPayersBody   = 256 << 20  // a payers CSV file
	apiImportInvoicesBody = 1536 << 20 // an invoices CSV file and a ZIP of PDFs
	// apiUploadTime is how long an import upload may take to arrive: a big
	// file over a slow link outlasts the server's read timeout, which
	// protects every other route.
	apiUploadTime = 30 * time.Minute
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

// apiKeyID is where apiAuth leaves the key's id for the handlers.
const apiKeyID = "api_key_id"

// apiAuth accepts "Authorization: Bearer <key>" of the request's commune only.
func (s *Server) apiAuth(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	c.Header("Cache-Control", "no-store")
	raw, ok := bearerKey(c.GetHeader("Authorization"))
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="portail"`)
		apiError(c, http.StatusUnauthorized, "unauthorized", "API key missing: send Authorization: Bearer <key>", nil)
		return
	}
	key, err := s.APIKeys.Verify(c.Request.Context(), t.ID, raw)
	if err != nil {
		if !errors.Is(err, apikey.ErrInvalid) {
			s.apiFail(c, err, "internal error")
			return
		}
		c.Header("WWW-Authenticate", `Bearer realm="portail", error="invalid_token"`)
		apiError(c, http.StatusUnauthorized, "unauthorized", "API key invalid, revoked or of another commune", nil)
		return
	}
	c.Set(apiKeyID, key.ID)
	setActor(c, audit.KindAPIKey, key.ID)
	c.Next()
}

// apiActor is the API key a write is journaled under.
func apiActor(c *gin.Context) imports.Actor {
	return imports.Actor{Kind: imports.ActorAPIKey, ID: c.GetInt64(apiKeyID)}
}

func apiLimit(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		c.Next()
	}
}

// apiWriteFailed answers a write that could not be applied (nothing was).
func apiWriteFailed(c *gin.Context, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		apiError(c, http.StatusRequestEntityTooLarge, "too_large", "the request body is too large", nil)
	case errors.Is(err, imports.ErrBusy):
		c.Header("Retry-After", "30")
		apiError(c, http.StatusServiceUnavailable, "busy", "an import of this commune is running; retry shortly", nil)
	case errors.Is(err, imports.ErrStorage):
		c.Header("Retry-After", "60")
		apiError(c, http.StatusServiceUnavailable, "storage_unavailable", "file storage is unavailable; nothing was recorded, retry later", nil)
		c.Error(err)
	case db.Unavailable(err):
		c.Error(err)
		c.Header("Retry-After", "30")
		apiError(c, http.StatusServiceUnavailable, "unavailable", "the service is momentarily unavailable; nothing was imported, retry later", nil)
	default:
		apiError(c, http.StatusInternalServerError, "internal", "internal error; nothing was imported", nil)
		c.Error(err)
	}
}

// apiRejected answers a write whose line was refused.
func apiRejected(c *gin.Context, code string, rep imports.Report) {
	msg := "the data was rejected; nothing was imported"
	if len(rep.Errors) > 0 {
		msg = rep.Errors[0].Reason
	}
	apiError(c, http.StatusUnprocessableEntity, code, msg, rep)
}

func (s *Server) apiNotFound(c *gin.Context) {
	apiError(c, http.StatusNotFound, "not_found", "no such API route", nil)
}
