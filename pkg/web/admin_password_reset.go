package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type adminForgotData struct {
	Sent bool
}

// adminForgotPage asks the address of a staff member who forgot their
// password.
func (s *Server) adminForgotPage(c *gin.Context) {
	s.render(c, http.StatusOK, "admin/forgot.html", s.staffPage(c, "", "Mot de passe oublié", adminForgotData{}))
}

// adminForgot answers the same for any address: a link is emailed when it
// is an active member's of this commune.
func (s *Server) adminForgot(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	if err := s.Staff.RequestReset(c.Request.Context(), t, c.PostForm("email"), c.ClientIP()); err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "admin/forgot.html", s.staffPage(c, "", "Mot de passe oublié", adminForgotData{Sent: true}))
}

type adminResetData struct {
	Valid     bool
	Done      bool
	Email     string
	MinLength int
	Action    string
}

// adminResetPage shows the form of a reset link (GET never uses it).
func (s *Server) adminResetPage(c *gin.Context) {
	s.renderReset(c, http.StatusOK, "")
}

func (s *Server) renderReset(c *gin.Context, status int, problem string) {
	t := tenant.FromContext(c.Request.Context())
	email, err := s.Staff.PeekReset(c.Request.Context(), t, c.Param("token"))
	if err != nil && !errors.Is(err, staff.ErrTokenInvalid) {
		s.fail(c, err)
		return
	}
	d := adminResetData{Valid: err == nil, Email: email, MinLength: max(staff.PasswordFloor, t.PasswordMinLength), Action: c.Request.URL.Path}
	if !d.Valid && status == http.StatusOK {
		status = http.StatusGone
	}
	p := s.staffPage(c, "", "Nouveau mot de passe", d)
	if problem != "" {
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: problem})
	}
	s.render(c, status, "admin/password_reset.html", p)
}

// adminReset sets the new password; every session of the member ends and
// they log in again (with their second factor).
func (s *Server) adminReset(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	password := c.PostForm("password")
	if password != c.PostForm("confirm") {
		s.renderReset(c, http.StatusUnprocessableEntity, "Les deux mots de passe saisis sont différents.")
		return
	}
	err := s.Staff.ResetPassword(c.Request.Context(), t, c.Param("token"), password)
	if msg, status, ok := staffRefusal(c, err); ok {
		s.renderReset(c, status, msg)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.clearStaffCookie(c)
	s.render(c, http.StatusOK, "admin/password_reset.html", s.staffPage(c, "", "Nouveau mot de passe", adminResetData{Done: true}))
}
