package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/message"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type contactData struct {
	Subject, Body string
	// The resident's threads with the service, most recent first.
	Conversations []message.Conversation
}

// contactPage is "Contact": the message form, "Informations générales"
// and the resident's exchanges with the service (their own threads only),
// whose replies are then counted as read.
func (s *Server) contactPage(c *gin.Context) {
	s.renderContact(c, http.StatusOK, contactData{}, nil)
}

func (s *Server) renderContact(c *gin.Context, status int, d contactData, problem *view.Flash) {
	t := tenant.FromContext(c.Request.Context())
	r := residentOf(c)
	var err error
	if d.Conversations, err = s.Messages.ResidentConversations(c.Request.Context(), t.ID, r.Account.ID); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.Messages.MarkRepliesRead(c.Request.Context(), t.ID, r.Account.ID); err != nil {
		s.log.Warn("replies not marked read", "error", err)
	}
	p := s.page(c, "contact", "Contact", d)
	if problem != nil {
		p.Flashes = append(p.Flashes, *problem)
	}
	s.render(c, status, "resident/contact.html", p)
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
		s.renderContact(c, http.StatusUnprocessableEntity, contactData{Subject: subject, Body: body},
			&view.Flash{Kind: "error", Text: input.Message, Fields: []string{input.Field}})
	case errors.Is(err, account.ErrTooManyRequests):
		s.renderContact(c, http.StatusTooManyRequests, contactData{Subject: subject, Body: body},
			&view.Flash{Kind: "error", Text: "Vous avez envoyé beaucoup de messages. Veuillez réessayer plus tard ou appeler le service."})
	default:
		s.fail(c, err)
	}
}
