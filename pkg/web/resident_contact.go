package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type contactData struct{ Subject, Body string }

// contactPage is "Contact": the message form and "Informations générales".
func (s *Server) contactPage(c *gin.Context) {
	s.render(c, http.StatusOK, "resident/contact.html", s.page(c, "contact", "Contact", contactData{}))
}

// contact stores the message and emails it to the service.
func (s *Server) contact(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	r := residentOf(c)
	subject, body := c.PostForm("subject"), c.PostForm("body")
	_, err := s.Accounts.SendContactMessage(c.Request.Context(), t, r.Account.ID, subject, body)
	var input *account.InputError
	switch {
	case err == nil:
		s.flash(c, "Votre message a été envoyé au service.")
		c.Redirect(http.StatusSeeOther, "/contact")
		return
	case errors.As(err, &input):
		p := s.page(c, "contact", "Contact", contactData{Subject: subject, Body: body})
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: input.Message, Fields: []string{input.Field}})
		s.render(c, http.StatusUnprocessableEntity, "resident/contact.html", p)
	case errors.Is(err, account.ErrTooManyRequests):
		p := s.page(c, "contact", "Contact", contactData{Subject: subject, Body: body})
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: "Vous avez envoyé beaucoup de messages. Veuillez réessayer plus tard ou appeler le service."})
		s.render(c, http.StatusTooManyRequests, "resident/contact.html", p)
	default:
		s.fail(c, err)
	}
}
