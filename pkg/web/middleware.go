package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// requestID tags each request for the logs and the X-Request-Id header.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		b := make([]byte, 8)
		rand.Read(b)
		id := hex.EncodeToString(b)
		c.Set("request_id", id)
		c.Header("X-Request-Id", id)
		c.Next()
	}
}

// logRequests logs one line per request. The query string is never logged:
// token links and PayFiP returns carry secrets or personal data there.
func logRequests(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		attrs := []any{
			"method", c.Request.Method,
			"path", redactPath(c.Request.URL.Path),
			"status", c.Writer.Status(),
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
			"ip", c.ClientIP(),
			"request_id", c.GetString("request_id"),
		}
		if t := tenant.FromContext(c.Request.Context()); t != nil {
			attrs = append(attrs, "tenant", t.Slug)
		}
		level := slog.LevelInfo
		if c.Writer.Status() >= 500 {
			level = slog.LevelError
		}
		if len(c.Errors) > 0 {
			attrs = append(attrs, "error", c.Errors.String())
		}
		log.Log(c.Request.Context(), level, "http", attrs...)
	}
}

// tokenRoutes carry a secret token as their last path segment.
var tokenRoutes = []string{"/activation/", "/mot-de-passe/", "/adresse/", "/desabonnement/",
	"/admin/mot-de-passe/", "/admin/invitation/"}

func redactPath(p string) string {
	for _, prefix := range tokenRoutes {
		if strings.HasPrefix(p, prefix) && len(p) > len(prefix) {
			return prefix + "[token]"
		}
	}
	return p
}

// securityHeaders sets the security headers of every answer.
func securityHeaders(formActions string, tls bool) gin.HandlerFunc {
	csp := contentSecurityPolicy(formActions)
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		c.Next()
	}
}

// contentSecurityPolicy allows forms (and the redirects that follow them)
// to lead to this site and to PayFiP's origins only.
func contentSecurityPolicy(formActions string) string {
	csp := "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
	if formActions != "" {
		csp += " " + formActions
	}
	return csp
}

// cachePublic lets browsers and shared caches keep an answer for maxAge,
// unless it sets a cookie: a cookie (a session, a remember-me token) must
// never be stored by a cache and handed to others, so such an answer is
// not stored at all.
func cachePublic(c *gin.Context, maxAge time.Duration) {
	if len(c.Writer.Header().Values("Set-Cookie")) > 0 {
		c.Header("Cache-Control", "no-store")
		return
	}
	c.Header("Cache-Control", fmt.Sprintf("public, max-age=%d", int(maxAge.Seconds())))
}

// noStore marks answers that carry personal data as not cacheable.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Next()
}

// resolveTenant finds the commune from the Host header (gin only trusts
// X-Forwarded-Host from configured proxies, see trustedHost); an unknown
// host gets the "Portail inconnu" page, never a default commune.
func (s *Server) resolveTenant(c *gin.Context) {
	host := tenant.NormalizeHost(s.requestHost(c))
	t, err := s.tenants.ByHost(c.Request.Context(), host)
	if errors.Is(err, tenant.ErrNotFound) {
		s.render(c, http.StatusNotFound, "errors/unknown_host.html", view.Page{
			Title: "Portail inconnu", Data: map[string]string{"Host": host},
		})
		c.Abort()
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	if t.Suspended() && !openWhileSuspended(c.Request.Method, c.Request.URL.Path) {
		s.maintenance(c, t)
		return
	}
	if t.PayFiPClassicURL != "" || t.PayFiPWSPaymentURL != "" {
		// This commune pays through its own PayFiP endpoints.
		c.Header("Content-Security-Policy", contentSecurityPolicy(payfipOrigins(s.cfg.PayFiP.ClassicURL,
			s.cfg.PayFiP.WSPaymentURL, t.PayFiPClassicURL, t.PayFiPWSPaymentURL)))
	}
	c.Request = c.Request.WithContext(tenant.WithContext(c.Request.Context(), t))
	c.Next()
}

// openWhileSuspended are the routes of a suspended commune that still
// answer: PayFiP's results for its attempts (money in flight is never
// lost) and the branding the maintenance page shows.
func openWhileSuspended(method, path string) bool {
	switch path {
	case "/paiement/notification", "/paiement/retour", "/paiement/retour-classique":
		return true
	case "/theme.css", "/logo":
		return method == http.MethodGet || method == http.MethodHead
	}
	return false
}

// maintenanceRetry is the Retry-After of a suspended commune's pages: a
// suspension lasts hours, not seconds.
const maintenanceRetry = "3600"

// maintenance answers every page of a suspended commune (residents, staff,
// its billing software's API): 503 with Retry-After, branded, in French.
func (s *Server) maintenance(c *gin.Context, t *tenant.Tenant) {
	c.Header("Retry-After", maintenanceRetry)
	c.Header("Cache-Control", "no-store")
	if isAPI(c) {
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": "the commune's portal is suspended for maintenance"})
		return
	}
	s.render(c, http.StatusServiceUnavailable, "errors/maintenance.html", view.Page{Tenant: t, Title: "Portail en maintenance"})
	c.Abort()
}

// requestHost is the Host header, or X-Forwarded-Host when the direct
// peer is a trusted proxy.
func (s *Server) requestHost(c *gin.Context) string {
	if fwd := c.Request.Header.Get("X-Forwarded-Host"); fwd != "" && s.fromTrustedProxy(c) {
		first, _, _ := strings.Cut(fwd, ",")
		return strings.TrimSpace(first)
	}
	return c.Request.Host
}

func (s *Server) fromTrustedProxy(c *gin.Context) bool {
	ip, err := netip.ParseAddr(c.RemoteIP())
	if err != nil {
		return false
	}
	for _, p := range s.trusted {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// rateLimit bounds requests per client IP and commune (stored in
// PostgreSQL, so it holds across instances). Used where each request
// costs a write, such as PayFiP returns that are audited when refused.
func (s *Server) rateLimit(bucket string, limit int, window time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		t := tenant.FromContext(c.Request.Context())
		ok, err := s.Accounts.Allow(c.Request.Context(), t.ID, bucket, c.ClientIP(), limit, window)
		if err != nil {
			s.fail(c, err)
			return
		}
		if !ok {
			c.Header("Retry-After", fmt.Sprint(int(window.Seconds())))
			c.AbortWithStatus(http.StatusTooManyRequests)
			return
		}
		c.Next()
	}
}
