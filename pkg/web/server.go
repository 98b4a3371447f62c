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
	"portail/pkg/announce"
	"portail/pkg/apikey"
	"portail/pkg/config"
	"portail/pkg/db"
	"portail/pkg/imports"
	"portail/pkg/invoice"
	"portail/pkg/message"
	"portail/pkg/payment"
	"portail/pkg/rbac"
	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// Deps are the server's dependencies, passed explicitly.
type Deps struct {
	Config  config.Config
	DB      *sqlx.DB
	Tenants *tenant.Store
	// TenantService writes the commune's settings (validated, audited,
	// optimistic concurrency): the staff's Paramètres and Textes.
	TenantService *tenant.Service
	Accounts      *account.Service
	Sessions      *account.Sessions
	Invoices      *invoice.Store
	Imports       *imports.Service
	APIKeys       *apikey.Store
	Blobs         BlobReader
	Payments      *payment.Service
	// Messages are the residents' "Contact" threads and the staff's replies.
	Messages *message.Service
	// Announcements are the commune's information emails to its residents.
	Announcements *announce.Service
	// The commune staff's back office.
	Staff         *staff.Service
	StaffSessions *staff.Sessions
	Policy        *rbac.Policy // what each staff role may do
	Templates     fs.FS
	Logger        *slog.Logger
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
	// staffPermissions is the permission of each staff route, recorded by
	// staffRoutes where the route is registered.
	staffPermissions map[string]string
}

// New builds the server and its route table.
func New(d Deps) (*Server, error) {
	gin.SetMode(gin.ReleaseMode)
	if d.Policy == nil {
		return nil, fmt.Errorf("web: Deps.Policy is not set")
	}
	s := &Server{Deps: d, cfg: d.Config, tenants: d.Tenants, log: d.Logger, staffPermissions: map[string]string{},
		views: view.New(d.Templates, template.FuncMap{
			"amount":    invoice.FormatAmount,
			"lower":     strings.ToLower,
			"roleLabel": staff.RoleLabel,
		}, d.Policy.Can)}
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
	clientAddressFromForwardedFor(e, len(s.trusted) > 0)
	s.engine = e
	s.routes()
	return s, nil
}

// clientAddressFromForwardedFor makes c.ClientIP() the direct peer, or,
// when the peer is a trusted proxy, the last address of X-Forwarded-For
// that is not itself a trusted proxy — and nothing else. Gin's default
// also reads X-Real-IP, a header any client can send, and falls back to it
// when X-Forwarded-For is missing, empty or holds an entry that is not an
// IP address (such as "203.0.113.9:5555"): a forged PayFiP result or a
// login storm could then claim any address. With X-Forwarded-For alone,
// such a header is unreadable and the client address is the proxy's own
// (the direct peer): never an address the client chose.
func clientAddressFromForwardedFor(e *gin.Engine, proxies bool) {
	e.RemoteIPHeaders = []string{"X-Forwarded-For"}
	e.TrustedPlatform = ""
	e.ForwardedByClientIP = proxies
}

// crossOriginExempt are PayFiP's server calls and returns: no browser
// origin to check, and idempotent.
var crossOriginExempt = []string{"POST /paiement/notification", "POST /paiement/retour-classique"}

// Handler is the server's http.Handler, with cross-origin protection of
// every state-changing request: net/http's (Sec-Fetch-Site, else Origin),
// then refererCheck for requests that carry neither.
func (s *Server) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	exempt := http.NewServeMux()
	for _, p := range crossOriginExempt {
		cop.AddInsecureBypassPattern(p)
		exempt.Handle(p, http.NotFoundHandler())
	}
	return cop.Handler(refererCheck(exempt, s.engine))
}

// refererCheck refuses (403) a state-changing request that has neither
// Sec-Fetch-Site nor Origin — which http.CrossOriginProtection lets through,
// as it must for clients that are not browsers — but whose Referer names
// another origin than the request's own host: a browser too old to send
// those headers, submitting a form from another site. Requests without a
// Referer (API clients, PayFiP, privacy settings) pass, as do the routes of
// exempt.
func refererCheck(exempt *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		ref := r.Header.Get("Referer")
		if ref == "" || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
			next.ServeHTTP(w, r)
			return
		}
		if u, err := url.Parse(ref); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		if _, pattern := exempt.Handler(r); pattern != "" {
			next.ServeHTTP(w, r)
			return
		}
		http.Error(w, "cross-origin request detected from Referer header", http.StatusForbidden)
	})
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

// retryAfter is how long, in seconds, a 503 asks clients to wait.
const retryAfter = "30"

// fail answers a request that failed on the portal's side and logs err. A
// database out of reach (connection refused or reset, server shut down,
// timeout: see db.Unavailable) is 503 with Retry-After, since the same
// request will work once it is back; anything else is 500. API routes get
// the API's JSON error, pages a French page.
func (s *Server) fail(c *gin.Context, err error) {
	if isAPI(c) {
		s.apiFail(c, err, "internal error")
		return
	}
	c.Error(err)
	if db.Unavailable(err) {
		s.unavailable(c, "Le portail ne peut pas accéder à vos données pour le moment. Veuillez réessayer dans quelques instants.")
		return
	}
	s.render(c, http.StatusInternalServerError, "errors/error.html", view.Page{
		Title: "Erreur", Data: map[string]string{
			"Title":   "Le service est momentanément indisponible",
			"Message": "Une erreur est survenue. Veuillez réessayer dans quelques instants.",
		},
	})
	c.Abort()
}

// unavailable answers 503 "momentanément indisponible" with Retry-After;
// message says what cannot be reached, in French.
func (s *Server) unavailable(c *gin.Context, message string) {
	c.Header("Retry-After", retryAfter)
	c.Header("Cache-Control", "no-store")
	if isAPI(c) {
		apiError(c, http.StatusServiceUnavailable, "unavailable", "service temporarily unavailable: retry in "+retryAfter+" seconds", nil)
		return
	}
	s.render(c, http.StatusServiceUnavailable, "errors/error.html", view.Page{
		Title: "Service momentanément indisponible", Data: map[string]string{
			"Title":   "Le service est momentanément indisponible",
			"Message": message,
		},
	})
	c.Abort()
}

// isAPI tells requests of the HTTP API, which answer JSON.
func isAPI(c *gin.Context) bool { return strings.HasPrefix(c.Request.URL.Path, "/api/") }
