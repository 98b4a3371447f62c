package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
)

// apiPostImport receives a file to import, as multipart/form-data: "csv"
// (required) and, for invoices, "pdfs" (a ZIP of PDFs named NUMBER.pdf).
// The parts stream to temporary files through the first pass and then to
// the object store, never held in memory. The answer comes once the file
// is staged: 202 with the batch to follow (Location), or at once 422 for a
// file refused by the first pass (binary, line too long, too many lines…)
// and 200 for a file imported before. The import itself runs as a job:
// it does not depend on the server's timeouts.
func (s *Server) apiPostImport(kind imports.Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		rep, err := s.stageImport(c, kind, apiActor(c))
		var readErr *uploadReadError
		switch {
		case errors.Is(err, errNotMultipart):
			apiError(c, http.StatusBadRequest, "invalid_body", `body must be multipart/form-data with a "csv" file`, nil)
			return
		case errors.As(err, &readErr):
			apiUploadFailed(c, readErr.err)
			return
		case errors.Is(err, imports.ErrNoFile):
			apiError(c, http.StatusBadRequest, "missing_file", `multipart field "csv" is required`, nil)
			return
		case err != nil:
			apiWriteFailed(c, err)
			return
		}
		c.Header("Location", fmt.Sprintf("/api/v1/imports/%d", rep.BatchID))
		switch rep.Status {
		case imports.StatusRejected:
			apiRejected(c, "rejected", rep)
		case imports.StatusDuplicate:
			c.JSON(http.StatusOK, rep)
		default:
			c.JSON(http.StatusAccepted, rep)
		}
	}
}

// apiUploadFailed answers an upload that could not be read to its end.
func apiUploadFailed(c *gin.Context, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		apiError(c, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the upload exceeds %d MiB", tooBig.Limit>>20), nil)
		return
	}
	apiError(c, http.StatusBadRequest, "unreadable_body", "the multipart body could not be read to its end", nil)
	c.Error(err)
}
