// Package web is the HTTP side: the gin engine, the middleware chain and the
// route table. Gin stays inside this package and its sub-packages.
package web

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"

	"portail/pkg/account"
	"portail/pkg/apikey"
	"portail/pkg/config"
	"portail/pkg/imports"
	"portail/pkg/invoice"
	"portail/pkg/payment"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// Deps are the server's dependencies, passed explicitly.
type Deps struct {
	Config    config.Config
	DB        *sqlx.DB
	Tenants   *tenant.Store
	Accounts  *account.Service
	Sessions  *account.Sessions
	Invoices  *invoice.Store
	Imports   *imports.Service
	APIKeys   *apikey.Store
	Blobs     BlobReader
	Payments  *payment.Service
	Templates fs.FS
	Logger    *slog.Logger
	// Ready reports whether every dependency answers (/readyz).
	Ready func(ctx context.Context) error
}

// BlobReader reads stored files, verifying their SHA-256.
type BlobReader interface {
	Get(ctx context.Context, key, wantSHA256 string) (io.ReadCloser, int64, error)
}

// Server holds the engine and what handlers share.
type Server struct {
	Deps
	cfg     config.Config
	tenants *tenant.Store
	views   *view.Renderer
	log     *slog.Logger
	trusted []netip.Prefix
	engine  *gin.Engine
}

// New builds the server and its route table.
func New(d Deps) (*Server, error) {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{Deps: d, cfg: d.Config, tenants: d.Tenants, log: d.Logger,
		views: view.New(d.Templates, template.FuncMap{
			"amount": invoice.FormatAmount,
			"lower":  strings.ToLower,
		})}
	for _, p := range d.Config.HTTP.TrustedProxies {
		prefix, err := parsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("web: http.trusted_proxies: %w", err)
		}
		s.trusted = append(s.trusted, prefix)
	}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	if err := e.SetTrustedProxies(d.Config.HTTP.TrustedProxies); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if len(d.Config.HTTP.TrustedProxies) == 0 {
		e.ForwardedByClientIP = false
	}
	s.engine = e
	s.routes()
	return s, nil
}

// Handler is the server's http.Handler, with cross-origin protection of
// every state-changing request (SECURITY.md: CSRF).
func (s *Server) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	// PayFiP's server calls and returns: no browser origin to check, and
	// idempotent (PAYFIP.md §5).
	cop.AddInsecureBypassPattern("POST /paiement/notification")
	cop.AddInsecureBypassPattern("POST /paiement/retour-classique")
	return cop.Handler(s.engine)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// payfipOrigins are the PayFiP origins forms may lead to (CSP form-action):
// the payment redirect follows a form submission.
func payfipOrigins(urls ...string) string {
	seen := map[string]bool{}
	var out []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			continue
		}
		o := u.Scheme + "://" + u.Host
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return strings.Join(out, " ")
}

// render writes a page; a template failure becomes a 500.
func (s *Server) render(c *gin.Context, status int, page string, p view.Page) {
	if p.Tenant == nil {
		p.Tenant = tenant.FromContext(c.Request.Context())
	}
	if err := s.views.Render(c.Writer, status, page, p); err != nil {
		c.Error(err)
		c.String(http.StatusInternalServerError, "Erreur interne")
	}
}

// fail answers 500 with a French page and logs err.
func (s *Server) fail(c *gin.Context, err error) {
	c.Error(err)
	s.render(c, http.StatusInternalServerError, "errors/error.html", view.Page{
		Title: "Erreur", Data: map[string]string{
			"Title":   "Le service est momentanément indisponible",
			"Message": "Une erreur est survenue. Veuillez réessayer dans quelques instants.",
		},
	})
	c.Abort()
}
