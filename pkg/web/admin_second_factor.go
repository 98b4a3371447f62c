package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// adminSecondFactorPage asks the code of the authenticator app (or a
// recovery code) of a member who gave their password.
func (s *Server) adminSecondFactorPage(c *gin.Context) {
	m := staffOf(c)
	if m == nil || m.Stage() != staff.StageSecondFactor {
		s.adminLoginPage(c)
		return
	}
	s.render(c, http.StatusOK, "admin/second_factor.html", s.staffPage(c, "", "Second facteur d'authentification", nil))
}

// adminSecondFactor checks the code; the session is then replaced by a
// new one (new id) past the second factor.
func (s *Server) adminSecondFactor(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	m := staffOf(c)
	if m == nil || m.Stage() != staff.StageSecondFactor {
		c.Redirect(http.StatusSeeOther, "/admin/connexion")
		return
	}
	err := s.Staff.VerifySecondFactor(c.Request.Context(), t, m.ID, c.PostForm("code"), c.ClientIP())
	if msg, status, ok := staffRefusal(c, err); ok {
		p := s.staffPage(c, "", "Second facteur d'authentification", nil)
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: msg})
		s.render(c, status, "admin/second_factor.html", p)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	raw, err := s.StaffSessions.Elevate(c.Request.Context(), t.ID, m.ID, m.SessionID)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.setStaffCookie(c, raw)
	c.Redirect(http.StatusSeeOther, "/admin")
}
