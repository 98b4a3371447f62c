package web

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
)

// themeCSS gives the commune's colours as CSS variables: inline styles are
// forbidden by the CSP, so branding is a stylesheet of its own.
func (s *Server) themeCSS(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "text/css; charset=utf-8", []byte(fmt.Sprintf(
		":root { --primary: %s; --accent: %s; }\n", t.ColorPrimary, t.ColorAccent)))
}

// logo serves the commune's logo.
func (s *Server) logo(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	if len(t.Logo) == 0 {
		c.Status(http.StatusNotFound)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	// An SVG logo must not run scripts even if opened directly.
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	c.Data(http.StatusOK, t.LogoType, t.Logo)
}
