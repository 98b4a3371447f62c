package web

import (
	"context"
	"io/fs"
	"net/http"
	"path"
	"time"

	"github.com/gin-gonic/gin"
)

// healthz says the process is alive.
func (s *Server) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.String(http.StatusOK, "ok\n")
}

// readyz says whether the dependencies answer: a load balancer stops
// sending traffic to an instance that is not ready.
func (s *Server) readyz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	if err := s.DB.PingContext(ctx); err != nil {
		c.String(http.StatusServiceUnavailable, "database: unavailable\n")
		return
	}
	if s.Ready != nil {
		if err := s.Ready(ctx); err != nil {
			s.log.Warn("not ready", "error", err)
			c.String(http.StatusServiceUnavailable, "not ready\n")
			return
		}
	}
	c.String(http.StatusOK, "ready\n")
}

// static serves the embedded assets under templates/static.
func (s *Server) static(c *gin.Context) {
	name := path.Clean("static/" + c.Param("file"))
	b, err := fs.ReadFile(s.Templates, name)
	if err != nil || path.Dir(name) != "static" {
		c.Status(http.StatusNotFound)
		return
	}
	cachePublic(c, time.Hour)
	c.Data(http.StatusOK, contentType(name), b)
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}
