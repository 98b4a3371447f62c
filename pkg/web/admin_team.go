package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type teamData struct {
	Members []staff.Member
	Roles   []option
	Self    int64
	// The invitation form, kept when refused.
	Email, Name, Role string
}

func roleOptions() []option {
	var out []option
	for _, r := range staff.Roles() {
		out = append(out, option{r, staff.RoleLabel(r)})
	}
	return out
}

// adminTeam is "Équipe": the commune's staff, their roles, invitations.
func (s *Server) adminTeam(c *gin.Context) {
	s.renderTeam(c, http.StatusOK, teamData{Role: staff.RoleAgent}, "")
}

func (s *Server) renderTeam(c *gin.Context, status int, d teamData, problem string) {
	t := tenant.FromContext(c.Request.Context())
	members, err := s.Staff.Members(c.Request.Context(), t.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Members, d.Roles, d.Self = members, roleOptions(), staffOf(c).ID
	p := s.staffPage(c, "equipe", "Équipe", d)
	if problem != "" {
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: problem})
	}
	s.render(c, status, "admin/team.html", p)
}

// adminInvite invites someone by email, with a role.
func (s *Server) adminInvite(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	d := teamData{Email: c.PostForm("email"), Name: c.PostForm("name"), Role: c.PostForm("role")}
	_, err := s.Staff.Invite(c.Request.Context(), t, d.Email, d.Role, d.Name)
	if msg, ok := teamRefusal(err); ok {
		s.renderTeam(c, http.StatusUnprocessableEntity, d, msg)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.staffFlash(c, "Une invitation a été envoyée à "+d.Email+" (valable 72 heures).")
	c.Redirect(http.StatusSeeOther, "/admin/equipe")
}

// adminTeamMember changes a member's role, or disables or enables them
// in this commune; the change applies at their next request.
func (s *Server) adminTeamMember(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(c)
		return
	}
	ctx := c.Request.Context()
	var msg string
	switch c.PostForm("action") {
	case "role":
		err, msg = s.Staff.SetRole(ctx, t, id, c.PostForm("role")), "Le rôle a été changé."
	case "disable":
		err, msg = s.Staff.SetMembershipActive(ctx, t, id, false), "L'accès de ce membre à la commune est désactivé."
	case "enable":
		err, msg = s.Staff.SetMembershipActive(ctx, t, id, true), "L'accès de ce membre à la commune est rétabli."
	default:
		s.renderTeam(c, http.StatusUnprocessableEntity, teamData{Role: staff.RoleAgent}, "Action inconnue.")
		return
	}
	if errors.Is(err, staff.ErrNotFound) {
		s.notFound(c)
		return
	}
	if refusal, ok := teamRefusal(err); ok {
		s.renderTeam(c, http.StatusUnprocessableEntity, teamData{Role: staff.RoleAgent}, refusal)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.staffFlash(c, msg)
	c.Redirect(http.StatusSeeOther, "/admin/equipe")
}

func teamRefusal(err error) (string, bool) {
	switch {
	case errors.Is(err, staff.ErrInvalidEmail):
		return "L'adresse mail n'est pas valide.", true
	case errors.Is(err, staff.ErrInvalidRole):
		return "Choisissez un rôle.", true
	case errors.Is(err, staff.ErrInvalidName):
		return "Le nom ne doit pas dépasser 200 caractères.", true
	case errors.Is(err, staff.ErrAlreadyMember):
		return "Cette personne est déjà membre de l'équipe de la commune.", true
	case errors.Is(err, staff.ErrLastAdmin):
		return "La commune doit garder au moins un administrateur actif : nommez-en un autre d'abord.", true
	}
	return "", false
}
