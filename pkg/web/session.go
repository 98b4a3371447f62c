package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/audit"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// resident is the logged-in resident of a request.
type resident struct {
	Account   *account.Account
	Session   *account.Session
	SessionID string
}

const residentKey = "resident"

func (s *Server) cookieName(base string) string {
	if s.secure() {
		return "__Host-" + base // Secure, no Domain, Path=/: bound to this host
	}
	return base
}

func (s *Server) secure() bool { return s.cfg.HTTP.PublicScheme == "https" }

func (s *Server) setCookie(c *gin.Context, base, value string, expires time.Time) {
	ck := &http.Cookie{
		Name: s.cookieName(base), Value: value, Path: "/",
		HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode,
	}
	if !expires.IsZero() {
		ck.Expires = expires
		ck.MaxAge = int(time.Until(expires).Seconds())
	}
	http.SetCookie(c.Writer, ck)
	c.Header("Cache-Control", "no-store") // never kept by a cache (see cachePublic)
}

func (s *Server) clearCookie(c *gin.Context, base string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: s.cookieName(base), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteLaxMode})
	c.Header("Cache-Control", "no-store")
}

const (
	sessionCookie  = "portail_session"
	rememberCookie = "portail_souvenir"
)

// loadResident finds the resident from the session cookie, or from the
// remember-me cookie (then a new session is opened and the cookie rotated).
// A session of another commune is simply not found: sessions are looked up
// by (tenant, id).
func (s *Server) loadResident(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	if sid, err := c.Cookie(s.cookieName(sessionCookie)); err == nil && sid != "" {
		sess, err := s.Sessions.Load(ctx, t.ID, sid)
		if err == nil {
			// Load only returns sessions of active accounts, with the account.
			c.Set(residentKey, &resident{Account: sess.Account, Session: sess, SessionID: sid})
			setActor(c, audit.KindResident, sess.Account.ID)
			c.Next()
			return
		} else if !errors.Is(err, account.ErrSessionNotFound) {
			s.fail(c, err)
			return
		}
		s.clearCookie(c, sessionCookie)
	}
	if v, err := c.Cookie(s.cookieName(rememberCookie)); err == nil && v != "" {
		accountID, rotated, err := s.Accounts.UseRemember(ctx, t, v)
		if err != nil {
			s.clearCookie(c, rememberCookie)
			if errors.Is(err, account.ErrRememberReplayed) {
				s.log.Warn("remember-me cookie replayed: every session and remember-me token of the account revoked, resident emailed", "tenant", t.Slug, "ip", c.ClientIP())
			}
			c.Next()
			return
		}
		a, err := s.Accounts.Get(ctx, t.ID, accountID)
		if err != nil || a.Status != account.StatusActive {
			s.clearCookie(c, rememberCookie)
			c.Next()
			return
		}
		sid, sess, err := s.Sessions.Create(ctx, t.ID, accountID)
		if err != nil {
			s.fail(c, err)
			return
		}
		s.setCookie(c, sessionCookie, sid, time.Time{})
		s.setCookie(c, rememberCookie, rotated, time.Now().Add(s.cfg.Security.RememberMe))
		c.Set(residentKey, &resident{Account: a, Session: sess, SessionID: sid})
		setActor(c, audit.KindResident, a.ID)
	}
	c.Next()
}

// residentOf returns the logged-in resident, or nil.
func residentOf(c *gin.Context) *resident {
	r, _ := c.Get(residentKey)
	res, _ := r.(*resident)
	return res
}

// requireResident guards the resident's space: anonymous visitors go to
// the login page, which brings them back to the page they asked for (a
// link from an email, such as a reminder's link to pay an invoice).
func requireResident(c *gin.Context) {
	if residentOf(c) == nil {
		to := "/"
		if c.Request.Method == http.MethodGet && c.Request.URL.Path != "/accueil" {
			to += "?" + url.Values{"suite": {c.Request.URL.RequestURI()}}.Encode()
		}
		c.Redirect(http.StatusSeeOther, to)
		c.Abort()
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Next()
}

// page builds the view data of a resident page.
func (s *Server) page(c *gin.Context, section, title string, data any) view.Page {
	p := view.Page{Title: title, Section: section, Data: data}
	if r := residentOf(c); r != nil {
		p.Viewer = &view.Viewer{DisplayName: r.Account.DisplayName}
		if msg := r.Session.Flags["flash"]; msg != "" {
			p.Flashes = append(p.Flashes, view.Flash{Kind: "ok", Text: msg})
			s.Sessions.SetFlag(c.Request.Context(), r.Account.TenantID, r.SessionID, "flash", "")
		}
	}
	return p
}

// flash keeps a confirmation for the next page of this session.
func (s *Server) flash(c *gin.Context, msg string) {
	if r := residentOf(c); r != nil {
		if err := s.Sessions.SetFlag(c.Request.Context(), r.Account.TenantID, r.SessionID, "flash", msg); err != nil {
			s.log.Warn("flash not kept", "error", err)
		}
	}
}

// maxReturnPath bounds the page a login returns to.
const maxReturnPath = 2048

// returnPath is next if it is a path of this portal to return to after
// logging in, "" otherwise: never another site ("//evil.example",
// "/\\evil.example", "https://…"), which would make the login page an open
// redirect.
func returnPath(next string) string {
	if next == "" || len(next) > maxReturnPath || next[0] != '/' || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\x00\r\n\t") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}

// tokenPage marks pages reached from emailed links: the token must not leak
// through the Referer header.
func tokenPage(c *gin.Context) {
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("Cache-Control", "no-store")
	c.Next()
}
