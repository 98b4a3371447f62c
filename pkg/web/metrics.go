package web

import (
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
)

// observeRequests counts each answer in Deps.Metrics by route template
// (c.FullPath: "/factures/:id", never the requested path, so a scan of
// unknown paths adds no series) and by the commune resolved from the host.
// It is the outermost middleware: panics recovered inside count as 500.
func (s *Server) observeRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	commune := ""
	if t := tenant.FromContext(c.Request.Context()); t != nil {
		commune = t.Slug
	}
	s.Metrics.ObserveHTTP(c.FullPath(), c.Request.Method, c.Writer.Status(), commune, time.Since(start))
}
