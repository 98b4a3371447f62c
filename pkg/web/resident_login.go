package web

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type loginData struct {
	Email string
	// Next is the page to go to once logged in ("" : the home page).
	Next string
}

// loginPage shows "LE PORTAIL DES FACTURES / Veuillez vous connecter".
func (s *Server) loginPage(c *gin.Context) {
	next := returnPath(c.Query("suite"))
	if residentOf(c) != nil {
		c.Redirect(http.StatusSeeOther, cmp.Or(next, "/accueil"))
		return
	}
	s.render(c, http.StatusOK, "resident/login.html", view.Page{Title: "Connexion", Data: loginData{Next: next}})
}

// login checks the credentials; unknown email and wrong password answer
// the same way (account.Authenticate also equalises timing).
func (s *Server) login(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	email := c.PostForm("email")
	next := returnPath(c.PostForm("suite"))
	a, err := s.Accounts.Authenticate(ctx, t, email, c.PostForm("password"), c.ClientIP())
	var throttled *account.ThrottledError
	switch {
	case errors.As(err, &throttled):
		secs := int(math.Ceil(throttled.RetryAfter.Seconds()))
		c.Header("Retry-After", fmt.Sprint(secs))
		s.render(c, http.StatusTooManyRequests, "resident/login.html", view.Page{Title: "Connexion",
			Flashes: []view.Flash{{Kind: "error", Text: fmt.Sprintf("Trop de tentatives de connexion. Veuillez réessayer dans %s.", frDuration(throttled.RetryAfter))}},
			Data:    loginData{Email: email, Next: next}})
		return
	case errors.Is(err, account.ErrInvalidCredentials):
		s.render(c, http.StatusUnauthorized, "resident/login.html", view.Page{Title: "Connexion",
			Flashes: []view.Flash{{Kind: "error", Text: "Adresse mail ou mot de passe incorrect.", Fields: []string{"email", "password"}}},
			Data:    loginData{Email: email, Next: next}})
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	// A new session id at every login (no fixation); the old one dies.
	if old, err := c.Cookie(s.cookieName(sessionCookie)); err == nil && old != "" {
		s.Sessions.Delete(ctx, t.ID, old)
	}
	sid, _, err := s.Sessions.Create(ctx, t.ID, a.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.setCookie(c, sessionCookie, sid, time.Time{})
	if c.PostForm("remember") != "" {
		v, expires, err := s.Accounts.IssueRemember(ctx, t.ID, a.ID)
		if err != nil {
			s.fail(c, err)
			return
		}
		s.setCookie(c, rememberCookie, v, expires)
	}
	c.Redirect(http.StatusSeeOther, cmp.Or(next, "/accueil"))
}

// logout ends the session and forgets this browser.
func (s *Server) logout(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	if r := residentOf(c); r != nil {
		s.Sessions.Delete(ctx, t.ID, r.SessionID)
		if err := s.Accounts.RecordLogout(ctx, t.ID, r.Account.ID); err != nil {
			s.log.Warn("logout not recorded", "error", err)
		}
	}
	if v, err := c.Cookie(s.cookieName(rememberCookie)); err == nil && v != "" {
		s.Accounts.ForgetRemember(ctx, t.ID, v)
	}
	s.clearCookie(c, sessionCookie)
	s.clearCookie(c, rememberCookie)
	c.Redirect(http.StatusSeeOther, "/")
}

// frDuration says a wait in French words.
func frDuration(d time.Duration) string {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 60 {
		if secs <= 1 {
			return "1 seconde"
		}
		return fmt.Sprintf("%d secondes", secs)
	}
	mins := (secs + 59) / 60
	if mins == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", mins)
}
