package web

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// adminImportProgress is a batch's progress as JSON, polled every second
// by the batch page's script (templates/static/import-progress.js).
func (s *Server) adminImportProgress(c *gin.Context) {
	b, ok := s.importBatch(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, progressOf(b))
}
