package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

const msgResetSent = "Si un compte actif correspond à cette adresse, un message vient de vous être envoyé avec un lien pour choisir un nouveau mot de passe."

func (s *Server) forgotPage(c *gin.Context) {
	s.render(c, http.StatusOK, "resident/forgot.html", view.Page{Title: "Mot de passe oublié", Data: loginData{}})
}

// forgot answers the same for known and unknown addresses.
func (s *Server) forgot(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	email := c.PostForm("email")
	if !account.ValidEmail(account.NormalizeEmail(email)) {
		s.render(c, http.StatusOK, "resident/forgot.html", view.Page{Title: "Mot de passe oublié",
			Flashes: []view.Flash{{Kind: "error", Text: msgInvalidEmail, Fields: []string{"email"}}}, Data: loginData{Email: email}})
		return
	}
	if err := s.Accounts.RequestReset(c.Request.Context(), t, email, c.ClientIP()); err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "resident/forgot.html", view.Page{Title: "Mot de passe oublié",
		Flashes: []view.Flash{{Kind: "ok", Text: msgResetSent}}, Data: loginData{}})
}

type passwordSetData struct {
	Valid     bool
	Email     string
	Action    string
	MinLength int
}

// tokenPurpose maps the link's path to the token's purpose.
func tokenPurpose(c *gin.Context) account.Purpose {
	if c.FullPath() == "/mot-de-passe/:token" {
		return account.PurposeReset
	}
	return account.PurposeActivation
}

// passwordSetPage shows "Saisissez votre nouveau mot de passe" without
// consuming the token: mail scanners prefetch links.
func (s *Server) passwordSetPage(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	d := s.passwordSetData(c, t, tokenPurpose(c))
	status := http.StatusOK
	if !d.Valid {
		status = http.StatusNotFound
	}
	s.render(c, status, "resident/password_set.html", view.Page{Title: "Nouveau mot de passe", Data: d})
}

func (s *Server) passwordSetData(c *gin.Context, t *tenant.Tenant, p account.Purpose) passwordSetData {
	ctx := c.Request.Context()
	d := passwordSetData{Action: c.Request.URL.Path, MinLength: max(t.PasswordMinLength, 8)}
	tok, err := s.Accounts.PeekToken(ctx, t.ID, c.Param("token"), p)
	if err != nil {
		return d
	}
	a, err := s.Accounts.Get(ctx, t.ID, tok.AccountID)
	if err != nil {
		return d
	}
	d.Valid, d.Email = true, a.Email
	return d
}

// passwordSet consumes the token and stores the password; no auto-login.
func (s *Server) passwordSet(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	p := tokenPurpose(c)
	pw := c.PostForm("password")
	d := s.passwordSetData(c, t, p)
	if !d.Valid {
		s.render(c, http.StatusNotFound, "resident/password_set.html", view.Page{Title: "Nouveau mot de passe", Data: d})
		return
	}
	retry := func(msg, field string) {
		s.render(c, http.StatusUnprocessableEntity, "resident/password_set.html", view.Page{Title: "Nouveau mot de passe",
			Flashes: []view.Flash{{Kind: "error", Text: msg, Fields: []string{field}}}, Data: d})
	}
	if pw != c.PostForm("confirm") {
		retry("Les deux mots de passe saisis sont différents.", "confirm")
		return
	}
	err := s.Accounts.SetPasswordWithToken(c.Request.Context(), t, c.Param("token"), p, pw)
	var policy *account.PolicyError
	switch {
	case errors.As(err, &policy):
		retry(policy.Message, "password")
		return
	case errors.Is(err, account.ErrTokenInvalid):
		d.Valid = false
		s.render(c, http.StatusNotFound, "resident/password_set.html", view.Page{Title: "Nouveau mot de passe", Data: d})
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "resident/login.html", view.Page{Title: "Connexion",
		Flashes: []view.Flash{{Kind: "ok", Text: msgPasswordSaved}}, Data: loginData{Email: d.Email}})
}
