package web

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
	"portail/pkg/tenant"
)

// errNotMultipart: an import upload whose body is not multipart/form-data.
var errNotMultipart = errors.New("web: import upload is not multipart/form-data")

// uploadReadError is an upload that could not be read to its end (too
// large: an *http.MaxBytesError inside; or the client went away).
type uploadReadError struct{ err error }

func (e *uploadReadError) Error() string { return "web: import upload: " + e.err.Error() }
func (e *uploadReadError) Unwrap() error { return e.err }

// stageImport receives an import upload for the API and the staff's
// Imports screen alike: a multipart body with a "csv" file and, for
// invoices, a "pdfs" ZIP. The parts stream through the pipeline's first
// pass into temporary files and then to the object store, never held in
// memory; the report says whether the file is queued for its job, refused
// at once, or imported before. The caller has bounded the body.
func (s *Server) stageImport(c *gin.Context, kind imports.Kind, actor imports.Actor) (imports.Report, error) {
	t := tenant.FromContext(c.Request.Context())
	// A large file over a slow link takes longer than the server's
	// timeouts allow other requests; this request is authenticated.
	rc := http.NewResponseController(c.Writer)
	rc.SetReadDeadline(time.Now().Add(apiUploadTime))
	rc.SetWriteDeadline(time.Now().Add(apiUploadTime + time.Minute))
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return imports.Report{}, errNotMultipart
	}
	st := s.Imports.NewStaging(t.ID, kind, actor)
	defer st.Close()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return imports.Report{}, &uploadReadError{err}
		}
		var body io.Reader = part
		if part.FileName() == "" {
			// A browser's file input left empty sends an unnamed, empty
			// part: no file, rather than an empty one.
			br := bufio.NewReader(part)
			if _, perr := br.Peek(1); perr == io.EOF {
				part.Close()
				continue
			}
			body = br
		}
		switch {
		case part.FormName() == "csv":
			err = st.ReadCSV(part.FileName(), body)
		case part.FormName() == "pdfs" && kind == imports.KindInvoices:
			err = st.ReadZIP(part.FileName(), body)
		}
		// Other parts, and the rest of a refused file, are skipped by
		// NextPart without being kept.
		part.Close()
		if err != nil {
			return imports.Report{}, &uploadReadError{err}
		}
	}
	return st.Commit(c.Request.Context())
}
