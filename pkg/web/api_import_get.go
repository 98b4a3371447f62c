package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
	"portail/pkg/tenant"
)

// apiGetImport tells where an import is: status, progress and report. The
// rejected lines come by pages: errors_from (a line number, from the
// report's next_errors_from) and errors_limit (1 to 1000, default 100).
func (s *Server) apiGetImport(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		apiError(c, http.StatusNotFound, "not_found", "no import with this id", nil)
		return
	}
	from, err1 := strconv.Atoi(c.DefaultQuery("errors_from", "0"))
	limit, err2 := strconv.Atoi(c.DefaultQuery("errors_limit", "100"))
	if err1 != nil || err2 != nil || from < 0 || limit < 1 || limit > 1000 {
		apiError(c, http.StatusBadRequest, "invalid_query", "errors_from must be a line number, errors_limit between 1 and 1000", nil)
		return
	}
	rep, err := s.Imports.Report(c.Request.Context(), t.ID, id, from, limit)
	if errors.Is(err, imports.ErrNotFound) {
		apiError(c, http.StatusNotFound, "not_found", "no import with this id", nil)
		return
	}
	if err != nil {
		apiError(c, http.StatusInternalServerError, "internal", "internal error", nil)
		c.Error(err)
		return
	}
	c.JSON(http.StatusOK, rep)
}
