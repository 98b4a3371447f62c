package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type unsubscribeData struct {
	Valid, Done bool
	Email       string
}

// unsubscribePage is reached from an alert email without logging in; the
// GET changes nothing (mail scanners open links), the button does.
func (s *Server) unsubscribePage(c *gin.Context) {
	s.unsubscribeAnswer(c, false)
}

func (s *Server) unsubscribe(c *gin.Context) {
	s.unsubscribeAnswer(c, true)
}

func (s *Server) unsubscribeAnswer(c *gin.Context, apply bool) {
	t := tenant.FromContext(c.Request.Context())
	a, err := s.Accounts.AlertsByToken(c.Request.Context(), t.ID, c.Param("token"))
	if errors.Is(err, account.ErrNotFound) {
		s.render(c, http.StatusNotFound, "resident/unsubscribe.html", view.Page{Title: "Alertes", Data: unsubscribeData{}})
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	d := unsubscribeData{Valid: true, Email: a.Email, Done: !a.InvoiceAlerts}
	if apply && a.InvoiceAlerts {
		if err := s.Accounts.SetAlerts(c.Request.Context(), t.ID, a.ID, false); err != nil {
			s.fail(c, err)
			return
		}
		d.Done = true
	}
	s.render(c, http.StatusOK, "resident/unsubscribe.html", view.Page{Title: "Alertes", Data: d})
}
