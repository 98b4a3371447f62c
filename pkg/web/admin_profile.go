package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type profileData struct {
	MinLength     int
	TOTPEnrolled  bool
	CanDisable    bool // administrators keep their second factor
	RecoveryCodes int  // unused ones
}

// adminProfile is "Mon profil": the member's password and second factor.
func (s *Server) adminProfile(c *gin.Context) {
	s.renderProfile(c, http.StatusOK, "")
}

func (s *Server) renderProfile(c *gin.Context, status int, problem string) {
	t := tenant.FromContext(c.Request.Context())
	m := staffOf(c)
	d := profileData{MinLength: max(staff.PasswordFloor, t.PasswordMinLength), TOTPEnrolled: m.TOTPEnrolled,
		CanDisable: m.TOTPEnrolled && m.Role != staff.RoleAdmin}
	if m.TOTPEnrolled {
		n, err := s.Staff.RecoveryCodesLeft(c.Request.Context(), m.ID)
		if err != nil {
			s.fail(c, err)
			return
		}
		d.RecoveryCodes = n
	}
	p := s.staffPage(c, "profil", "Mon profil", d)
	if problem != "" {
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: problem})
	}
	s.render(c, status, "admin/profile.html", p)
}

// adminPasswordChange changes the member's password; their other sessions
// end, this one stays.
func (s *Server) adminPasswordChange(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	m := staffOf(c)
	if c.PostForm("password") != c.PostForm("confirm") {
		s.renderProfile(c, http.StatusUnprocessableEntity, "Les deux mots de passe saisis sont différents.")
		return
	}
	err := s.Staff.ChangePassword(c.Request.Context(), t, m.ID, c.PostForm("current"), c.PostForm("password"), m.SessionID)
	if msg, status, ok := staffRefusal(c, err); ok {
		s.renderProfile(c, status, msg)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.staffFlash(c, "Votre mot de passe a été changé. Vos autres sessions ont été fermées.")
	c.Redirect(http.StatusSeeOther, "/admin/profil")
}

// adminDisableTOTP removes a non-administrator's second factor.
func (s *Server) adminDisableTOTP(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	m := staffOf(c)
	err := s.Staff.DisableTOTP(c.Request.Context(), t, m.ID, c.PostForm("current"))
	if msg, status, ok := staffRefusal(c, err); ok {
		s.renderProfile(c, status, msg)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.staffFlash(c, "Le second facteur d'authentification est désactivé.")
	c.Redirect(http.StatusSeeOther, "/admin/profil")
}

// adminRecoveryCodes replaces the member's recovery codes and shows the
// new ones, once.
func (s *Server) adminRecoveryCodes(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	m := staffOf(c)
	codes, err := s.Staff.RegenerateRecoveryCodes(c.Request.Context(), t, m.ID, c.PostForm("current"))
	if msg, status, ok := staffRefusal(c, err); ok {
		s.renderProfile(c, status, msg)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "admin/recovery_codes.html", s.staffPage(c, "profil", "Codes de secours",
		recoveryCodesData{Codes: codes, Next: "/admin/profil"}))
}
