package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
)

// brandingMaxAge is how long the commune's colours and logo may be used
// without asking again; the pages link them with the tenant's version in
// the URL, so a change shows at the next page, and a revalidation costs a
// 304 answered from the cached tenant (no database read).
const brandingMaxAge = 5 * time.Minute

// brandingETag is the strong validator of an asset of t: its content's
// hash, the same on every instance.
func brandingETag(t *tenant.Tenant, asset string) string {
	return `"` + asset + "-" + t.AssetTag + `"`
}

// notModified answers 304 when the client holds the current version.
func notModified(c *gin.Context, etag string) bool {
	c.Header("ETag", etag)
	cachePublic(c, brandingMaxAge)
	for _, tag := range strings.Split(c.GetHeader("If-None-Match"), ",") {
		if tag = strings.TrimSpace(tag); tag == etag || tag == "*" {
			c.Status(http.StatusNotModified)
			return true
		}
	}
	return false
}

// themeCSS gives the commune's colours as CSS variables: inline styles are
// forbidden by the CSP, so branding is a stylesheet of its own.
func (s *Server) themeCSS(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	if notModified(c, brandingETag(t, "theme")) {
		return
	}
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
	// An SVG logo must not run scripts even if opened directly.
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	if notModified(c, brandingETag(t, "logo")) {
		return
	}
	c.Data(http.StatusOK, t.LogoType, t.Logo)
}
