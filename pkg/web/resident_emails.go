package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
)

// setEmailChoices saves the "Courriels" choices of "Mes informations":
// each kind of email the commune sends is on when its box is ticked. A
// kind the commune does not send is left as it is.
func (s *Server) setEmailChoices(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	r := residentOf(c)
	alerts, reminders, announcements := emailLists(t, r.Account)
	for _, l := range []emailList{alerts, reminders, announcements} {
		on := c.PostForm(l.Slug) == "1"
		if !l.Offered || on == l.On {
			continue
		}
		if err := s.setEmailList(c.Request.Context(), t.ID, r.Account.ID, l.Slug, on); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.flash(c, "Vos choix de courriels sont enregistrés.")
	c.Redirect(http.StatusSeeOther, "/informations")
}
