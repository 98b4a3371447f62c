package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
)

// brandingMaxAge is how long the commune's colours and logo may be cached:
// a change by `tenants apply` shows within minutes.
const brandingMaxAge = 5 * time.Minute

// themeCSS gives the commune's colours as CSS variables: inline styles are
// forbidden by the CSP, so branding is a stylesheet of its own.
func (s *Server) themeCSS(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	cachePublic(c, brandingMaxAge)
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
	cachePublic(c, brandingMaxAge)
	// An SVG logo must not run scripts even if opened directly.
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	c.Data(http.StatusOK, t.LogoType, t.Logo)
}
