package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// The staff's back office lives under /admin on each commune's host, with
// a cookie of its own: a resident's session gives no staff access and a
// staff session none on the residents' pages, and a staff session of one
// commune is void on another (sessions are looked up by commune).

// staffCookie is the staff session's cookie (__Host- prefixed on TLS).
const staffCookie = "portail_admin"

// setStaffCookie sets the staff session cookie: HttpOnly, SameSite=Strict
// (the back office is never entered from another site's link with its
// session), a session cookie (no expiry: the server ends it).
func (s *Server) setStaffCookie(c *gin.Context, rawID string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: s.cookieName(staffCookie), Value: rawID, Path: "/",
		HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteStrictMode})
}

func (s *Server) clearStaffCookie(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: s.cookieName(staffCookie), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure(), SameSite: http.SameSiteStrictMode})
}

// staffMember is the staff session of a request.
type staffMember struct {
	*staff.Session
	SessionID string
}

const staffKey = "staff"

// loadStaff finds the staff session of the cookie, in the commune of the
// host. The session comes with the member's role and status as they are
// now (read in the same query, at every request).
func (s *Server) loadStaff(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	c.Header("Cache-Control", "no-store")
	raw, err := c.Cookie(s.cookieName(staffCookie))
	if err != nil || raw == "" {
		c.Next()
		return
	}
	sess, err := s.StaffSessions.Load(c.Request.Context(), t.ID, raw)
	switch {
	case errors.Is(err, auth.ErrSessionNotFound):
		s.clearStaffCookie(c)
	case err != nil:
		s.fail(c, err)
		return
	default:
		c.Set(staffKey, &staffMember{Session: sess, SessionID: raw})
		setActor(c, audit.KindStaff, sess.ID)
	}
	c.Next()
}

// staffOf returns the staff session of the request, or nil.
func staffOf(c *gin.Context) *staffMember {
	v, _ := c.Get(staffKey)
	m, _ := v.(*staffMember)
	return m
}

// stagePath is where a session of each stage belongs.
func stagePath(st staff.Stage) string {
	switch st {
	case staff.StageSecondFactor:
		return "/admin/second-facteur"
	case staff.StageEnrol:
		return "/admin/enrolement"
	}
	return "/admin"
}

// requireStaff lets through sessions at one of the stages; an anonymous
// request goes to the login page, a session at another stage to the page
// of its stage (the second factor, or its enrolment: nothing else first).
func requireStaff(stages ...staff.Stage) gin.HandlerFunc {
	return func(c *gin.Context) {
		m := staffOf(c)
		if m == nil {
			c.Redirect(http.StatusSeeOther, "/admin/connexion")
			c.Abort()
			return
		}
		if st := m.Stage(); !slices.Contains(stages, st) {
			c.Redirect(http.StatusSeeOther, stagePath(st))
			c.Abort()
			return
		}
		c.Next()
	}
}

// perm lets through staff whose role in this commune may use permission
// (Casbin, configs/rbac_policy.csv); others get a 403 page in French.
func (s *Server) perm(permission string) gin.HandlerFunc {
	return func(c *gin.Context) {
		m := staffOf(c)
		if m == nil || !s.Policy.Can(m.Role, permission) {
			s.forbidden(c)
			return
		}
		c.Next()
	}
}

// forbidden answers 403 with the staff layout.
func (s *Server) forbidden(c *gin.Context) {
	s.render(c, http.StatusForbidden, "admin/error.html", s.staffPage(c, "", "Accès refusé", map[string]string{
		"Title":   "Accès refusé",
		"Message": "Votre rôle ne permet pas d'ouvrir cette page ni de faire cette action. Adressez-vous à un administrateur de votre commune si vous en avez besoin.",
	}))
	c.Abort()
}

// staffRoutes registers the staff's routes, each with the permission it
// needs stated where it is registered:
//
//	a.GET("/factures", "invoices:read", s.adminInvoices)
//	a.POST("/factures/:id/statut", "invoices:write", s.adminInvoiceStatus)
//
// and records route → permission in Server.staffPermissions (a test fails
// when a route under /admin has none, or names one the policy lacks). A
// permission the policy does not know stops the server at start.
type staffRoutes struct {
	s      *Server
	g      *gin.RouterGroup
	stages []staff.Stage
}

// GET registers a page.
func (r staffRoutes) GET(path, permission string, h gin.HandlerFunc) {
	r.handle(http.MethodGet, path, permission, h)
}

// POST registers an action.
func (r staffRoutes) POST(path, permission string, h gin.HandlerFunc) {
	r.handle(http.MethodPost, path, permission, h)
}

func (r staffRoutes) handle(method, path, permission string, h gin.HandlerFunc) {
	if !r.s.Policy.Known(permission) {
		panic(fmt.Sprintf("web: %s /admin%s requires %q, which configs/rbac_policy.csv does not grant", method, path, permission))
	}
	r.s.staffPermissions[method+" "+r.g.BasePath()+path] = permission
	r.g.Handle(method, path, requireStaff(r.stages...), r.s.perm(permission), h)
}

// duringEnrolment is r for routes an administrator who must still enrol a
// second factor may use (the enrolment itself).
func (r staffRoutes) duringEnrolment() staffRoutes {
	r.stages = []staff.Stage{staff.StageEnrol, staff.StageReady}
	return r
}

// StaffRoutePermissions returns the permission of each staff route
// ("GET /admin/journal" → "audit:read").
func (s *Server) StaffRoutePermissions() map[string]string {
	out := make(map[string]string, len(s.staffPermissions))
	for k, v := range s.staffPermissions {
		out[k] = v
	}
	return out
}

// adminMenu is the staff's menu: each screen shows to the roles that may
// open it (the layout asks `can`). Screens add their entry here.
var adminMenu = []view.MenuEntry{
	{Label: "Tableau de bord", Path: "/admin", Perm: "dashboard:read", Section: "dashboard"},
	{Label: "Redevables", Path: "/admin/redevables", Perm: "payers:read", Section: "redevables"},
	{Label: "Factures", Path: "/admin/factures", Perm: "invoices:read", Section: "factures"},
	{Label: "Messages", Path: "/admin/messages", Perm: "messages:read", Section: "messages"},
	{Label: "Dématérialisation", Path: "/admin/dematerialisation", Perm: "paperless:read", Section: "dematerialisation"},
	{Label: "Textes", Path: "/admin/textes", Perm: "texts:read", Section: "textes"},
	{Label: "Annonces", Path: "/admin/annonces", Perm: "announcements:read", Section: "annonces"},
	{Label: "Équipe", Path: "/admin/equipe", Perm: "staff:manage", Section: "equipe"},
	{Label: "Clés d'API", Path: "/admin/cles-api", Perm: "apikeys:manage", Section: "cles-api"},
	{Label: "Journal", Path: "/admin/journal", Perm: "audit:read", Section: "journal"},
	{Label: "Paramètres", Path: "/admin/parametres", Perm: "settings:write", Section: "parametres"},
	{Label: "Mon profil", Path: "/admin/profil", Perm: "profile:manage", Section: "profil"},
}

// staffPage builds the view data of a staff page.
func (s *Server) staffPage(c *gin.Context, section, title string, data any) view.Page {
	p := view.Page{Title: title, Section: section, Data: data}
	if m := staffOf(c); m != nil {
		p.Staff = &view.Staff{Name: m.Name, Email: m.Email, Role: m.Role, RoleLabel: staff.RoleLabel(m.Role),
			Ready: m.Stage() == staff.StageReady, Menu: adminMenu}
		if msg := m.Flags["flash"]; msg != "" {
			p.Flashes = append(p.Flashes, view.Flash{Kind: "ok", Text: msg})
			s.StaffSessions.SetFlag(c.Request.Context(), m.TenantID, m.SessionID, "flash", "")
		}
	}
	return p
}

// staffFlash keeps a confirmation for the next staff page of this session.
func (s *Server) staffFlash(c *gin.Context, msg string) {
	if m := staffOf(c); m != nil {
		if err := s.StaffSessions.SetFlag(c.Request.Context(), m.TenantID, m.SessionID, "flash", msg); err != nil {
			s.log.Warn("flash not kept", "error", err)
		}
	}
}

// startStaffSession opens a session (a new id at every login; the
// previous one of this browser ends) and sends the member where its stage
// belongs.
func (s *Server) startStaffSession(c *gin.Context, m *staff.Member, secondFactor bool) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	if old, err := c.Cookie(s.cookieName(staffCookie)); err == nil && old != "" {
		s.StaffSessions.Delete(ctx, t.ID, old)
	}
	raw, err := s.StaffSessions.Create(ctx, t.ID, m.ID, secondFactor)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.setStaffCookie(c, raw)
	c.Redirect(http.StatusSeeOther, stagePath(m.StageAfterLogin(secondFactor)))
}
