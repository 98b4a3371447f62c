package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/db"
	"portail/pkg/imports"
)

// adminImportUpload receives a payers file, or an invoices file with its
// ZIP of PDFs, from the Imports screen (POST /admin/imports/redevables or
// /factures, multipart: "csv" and "pdfs"), through the same staging as the
// API, with the API's size limits. A staged file goes to its batch page,
// where its progress shows; a file refused at once or imported before goes
// there too, with its report. An upload refused before it is staged (too
// large, unreadable, no file) shows the form again with the reason:
// nothing is recorded.
func (s *Server) adminImportUpload(slug string) gin.HandlerFunc {
	kind, ok := importKindBySlug(slug)
	if !ok {
		panic("web: unknown import kind " + slug)
	}
	limit := int64(apiImportPayersBody)
	if kind == imports.KindInvoices {
		limit = apiImportInvoicesBody
	}
	return func(c *gin.Context) {
		var rep imports.Report
		var err error
		if c.Request.ContentLength > limit {
			// Refused on its declared length: not a byte of it is read.
			err = &uploadReadError{&http.MaxBytesError{Limit: limit}}
		} else {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
			rep, err = s.stageImport(c, kind, imports.Actor{Kind: imports.ActorStaff, ID: staffOf(c).ID})
		}
		if status, problem := uploadRefusal(err, limit); problem != "" {
			if status == http.StatusRequestEntityTooLarge || status == http.StatusBadRequest {
				// The rest of the body is not read: the connection closes.
				c.Header("Connection", "close")
			}
			s.renderImports(c, status, slug, problem)
			return
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		switch rep.Status {
		case imports.StatusRejected:
			s.staffFlash(c, "Le fichier « "+rep.Filename+" » est refusé : rien n'a été importé.")
		case imports.StatusDuplicate:
			s.staffFlash(c, "Ce fichier a déjà été importé : rien n'a changé.")
		default:
			s.staffFlash(c, "Le fichier « "+rep.Filename+" » est reçu ; son import est en cours.")
		}
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/admin/imports/%d", rep.BatchID))
	}
}

// uploadRefusal is the status and French reason of an upload refused
// before it was staged; "" for an upload staged, or another failure.
func uploadRefusal(err error, limit int64) (int, string) {
	var tooBig *http.MaxBytesError
	var readErr *uploadReadError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("L'envoi dépasse la taille autorisée (%s). Rien n'a été importé : découpez le fichier en plusieurs parties.", sizeLabel(limit))
	case errors.Is(err, errNotMultipart):
		return http.StatusBadRequest, "L'envoi est illisible. Choisissez de nouveau le fichier et envoyez-le. Rien n'a été importé."
	case errors.As(err, &readErr):
		return http.StatusBadRequest, "L'envoi a été interrompu avant la fin du fichier. Envoyez-le de nouveau. Rien n'a été importé."
	case errors.Is(err, imports.ErrNoFile):
		return http.StatusUnprocessableEntity, "Choisissez le fichier CSV à importer."
	case errors.Is(err, imports.ErrStorage), db.Unavailable(err):
		return http.StatusServiceUnavailable, "Le service est momentanément indisponible. Rien n'a été importé : réessayez dans quelques minutes."
	case errors.Is(err, imports.ErrBusy):
		return http.StatusServiceUnavailable, "Un autre import de la commune est en cours. Rien n'a été importé : réessayez dans quelques instants."
	}
	return 0, ""
}

// sizeLabel writes a size in bytes the French way: "256 Mo", "1,5 Go",
// "12,3 ko".
func sizeLabel(n int64) string {
	switch {
	case n >= 1<<30:
		return frDecimal(float64(n)/(1<<30)) + " Go"
	case n >= 1<<20:
		return frDecimal(float64(n)/(1<<20)) + " Mo"
	case n >= 1<<10:
		return frDecimal(float64(n)/(1<<10)) + " ko"
	}
	return fmt.Sprintf("%d octets", n)
}

// frDecimal writes v with at most one decimal, with a decimal comma.
func frDecimal(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	if s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s[:len(s)-2] + "," + s[len(s)-1:]
}
