package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// The manual's three activation outcomes, word for word, and the neutral
// message a commune may prefer (it does not reveal which emails are known).
const (
	msgActivationUnknown = "Activation impossible, adresse inconnue"
	msgActivationActive  = "Activation impossible, il existe déjà un compte actif avec cette adresse mail."
	msgActivationSent    = "Un message d'activation du compte vous a été envoyé avec succès."
	msgActivationNeutral = "Si votre adresse est connue du service et que votre compte n'est pas encore activé, un message d'activation vient de vous être envoyé."
	msgPasswordSaved     = "Le nouveau mot de passe a été enregistré avec succès."
	msgTooManyRequests   = "Trop de demandes pour cette adresse. Veuillez réessayer dans une heure."
	msgInvalidEmail      = "Veuillez saisir une adresse mail valide."
)

func (s *Server) activationPage(c *gin.Context) {
	s.render(c, http.StatusOK, "resident/activation.html", view.Page{Title: "J'active mon compte", Data: loginData{}})
}

func (s *Server) activate(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	email := c.PostForm("email")
	outcome, err := s.Accounts.RequestActivation(c.Request.Context(), t, email)
	// Errors are about the address typed: the field is described by them.
	flash := view.Flash{Kind: "error", Fields: []string{"email"}}
	switch {
	case errors.Is(err, account.ErrInvalidEmail):
		flash.Text = msgInvalidEmail
	case errors.Is(err, account.ErrTooManyRequests):
		flash = view.Flash{Kind: "error", Text: msgTooManyRequests}
	case err != nil:
		s.fail(c, err)
		return
	case t.ActivationMessages == "neutral":
		flash = view.Flash{Kind: "info", Text: msgActivationNeutral}
	case outcome == account.ActivationSent:
		flash = view.Flash{Kind: "ok", Text: msgActivationSent}
	case outcome == account.ActivationAlreadyActive:
		flash.Text = msgActivationActive
	default:
		flash.Text = msgActivationUnknown
	}
	s.render(c, http.StatusOK, "resident/activation.html", view.Page{Title: "J'active mon compte",
		Flashes: []view.Flash{flash}, Data: loginData{Email: email}})
}
