package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type invitationData struct {
	Valid      bool
	Invitation *staff.Invitation
	RoleLabel  string
	Name       string
	MinLength  int
	Action     string
}

// adminInvitationPage shows an invitation (GET never uses the link: mail
// scanners prefetch it): someone new chooses their name and password;
// someone who already has a staff user accepts with their password (and
// second factor).
func (s *Server) adminInvitationPage(c *gin.Context) {
	s.renderInvitation(c, http.StatusOK, "", "")
}

func (s *Server) renderInvitation(c *gin.Context, status int, name, problem string) {
	t := tenant.FromContext(c.Request.Context())
	inv, err := s.Staff.PeekInvitation(c.Request.Context(), t, c.Param("token"))
	if err != nil && !errors.Is(err, staff.ErrTokenInvalid) {
		s.fail(c, err)
		return
	}
	d := invitationData{Valid: err == nil, Invitation: inv, MinLength: max(staff.PasswordFloor, t.PasswordMinLength),
		Action: c.Request.URL.Path}
	if inv != nil {
		d.RoleLabel, d.Name = staff.RoleLabel(inv.Role), inv.Name
		if name != "" {
			d.Name = name
		}
	} else if status == http.StatusOK {
		status = http.StatusGone
	}
	p := s.staffPage(c, "", "Invitation", d)
	if problem != "" {
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: problem})
	}
	s.render(c, status, "admin/invitation.html", p)
}

// adminInvitation accepts an invitation and opens a session (an
// administrator then enrols a second factor before anything else).
func (s *Server) adminInvitation(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	raw := c.Param("token")
	inv, err := s.Staff.PeekInvitation(ctx, t, raw)
	if errors.Is(err, staff.ErrTokenInvalid) {
		s.renderInvitation(c, http.StatusGone, "", "")
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	var m *staff.Member
	secondFactor := false
	if inv.ExistingUser {
		m, secondFactor, err = s.Staff.AcceptInvitationAsUser(ctx, t, raw, c.PostForm("password"), c.PostForm("code"), c.ClientIP())
	} else {
		name, password := c.PostForm("name"), c.PostForm("password")
		if password != c.PostForm("confirm") {
			s.renderInvitation(c, http.StatusUnprocessableEntity, name, "Les deux mots de passe saisis sont différents.")
			return
		}
		m, err = s.Staff.AcceptInvitation(ctx, t, raw, name, password)
	}
	if msg, status, ok := staffRefusal(c, err); ok {
		s.renderInvitation(c, status, c.PostForm("name"), msg)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.startStaffSession(c, m, secondFactor)
}
