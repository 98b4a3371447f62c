package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
	"portail/pkg/tenant"
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
		t := tenant.FromContext(c.Request.Context())
		// A large file over a slow link takes longer than the server's
		// timeouts allow other requests; this request is authenticated.
		rc := http.NewResponseController(c.Writer)
		rc.SetReadDeadline(time.Now().Add(apiUploadTime))
		rc.SetWriteDeadline(time.Now().Add(apiUploadTime + time.Minute))
		mr, err := c.Request.MultipartReader()
		if err != nil {
			apiError(c, http.StatusBadRequest, "invalid_body", `body must be multipart/form-data with a "csv" file`, nil)
			return
		}
		st := s.Imports.NewStaging(t.ID, kind, apiActor(c))
		defer st.Close()
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				apiUploadFailed(c, err)
				return
			}
			switch {
			case part.FormName() == "csv":
				err = st.ReadCSV(part.FileName(), part)
			case part.FormName() == "pdfs" && kind == imports.KindInvoices:
				err = st.ReadZIP(part.FileName(), part)
			}
			// Other parts, and the rest of a refused file, are skipped
			// by NextPart without being kept.
			part.Close()
			if err != nil {
				apiUploadFailed(c, err)
				return
			}
		}
		rep, err := st.Commit(c.Request.Context())
		if errors.Is(err, imports.ErrNoFile) {
			apiError(c, http.StatusBadRequest, "missing_file", `multipart field "csv" is required`, nil)
			return
		}
		if err != nil {
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
