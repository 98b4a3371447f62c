package web

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// routes is the route table. Each route says who may use it:
// public (anyone on a commune's host) or resident (a logged-in resident).
func (s *Server) routes() {
	e := s.engine
	e.Use(gin.CustomRecovery(func(c *gin.Context, err any) {
		s.log.Error("panic", "error", err, "path", c.Request.URL.Path)
		c.AbortWithStatus(http.StatusInternalServerError)
	}))
	e.Use(requestID(), logRequests(s.log), securityHeaders(payfipOrigins(s.cfg.PayFiP), s.cfg.HTTP.PublicScheme == "https"))

	// Platform probes answer on any host.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/static/*file", s.static)

	// Everything else belongs to the commune of the Host header.
	t := e.Group("/", s.resolveTenant)
	t.GET("/theme.css", s.themeCSS)           // public
	t.GET("/logo", s.logo)                    // public
	t.GET("/", noStore, s.loginPage)          // public
	t.GET("/connexion", noStore, s.loginPage) // public
	t.GET("/accessibilite", s.accessibility)  // public
	e.NoRoute(s.resolveTenant, s.notFound)
}
