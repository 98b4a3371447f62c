package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// accountClosePage is "Fermer mon compte": what is erased, what the
// commune keeps, and the password to confirm.
func (s *Server) accountClosePage(c *gin.Context) {
	s.render(c, http.StatusOK, "resident/account_close.html", s.page(c, "informations", "Fermer mon compte", nil))
}

// accountClose closes the resident's account once the password is checked
// (account.Service.Close), ends the browser's session and remember-me
// cookie, and sends them to a public page saying it is done.
func (s *Server) accountClose(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	r := residentOf(c)
	err := s.Accounts.Close(c.Request.Context(), t, r.Account.ID, c.PostForm("password"))
	msg := ""
	var throttled *account.ThrottledError
	switch {
	case err == nil:
		s.clearCookie(c, sessionCookie)
		s.clearCookie(c, rememberCookie)
		c.Redirect(http.StatusSeeOther, "/compte-ferme")
		return
	case errors.Is(err, account.ErrWrongPassword):
		msg = "Le mot de passe est incorrect. Votre compte n'a pas été fermé."
	case errors.As(err, &throttled):
		msg = "Trop de tentatives. Veuillez réessayer dans " + frDuration(throttled.RetryAfter) + "."
	default:
		s.fail(c, err)
		return
	}
	p := s.page(c, "informations", "Fermer mon compte", nil)
	p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: msg, Fields: fieldList("password")})
	s.render(c, http.StatusUnprocessableEntity, "resident/account_close.html", p)
}
