package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type informationsData struct {
	Email       string
	Paperless   bool
	PaperlessAt time.Time
	Confirm     bool
	// The emails the resident may choose to receive.
	Alerts, Reminders, Announcements emailList
	DaysBefore                       int
}

// informations is "Mes informations". ?papier=confirmer shows the manual's
// confirmation before the paperless request (works without JavaScript).
func (s *Server) informations(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	d := informationsData{Email: a.Email, Paperless: a.Paperless, Confirm: c.Query("papier") == "confirmer" && !a.Paperless,
		DaysBefore: t.RemindersDaysBefore}
	d.Alerts, d.Reminders, d.Announcements = emailLists(t, a)
	if a.PaperlessAt != nil {
		d.PaperlessAt = *a.PaperlessAt
	}
	s.render(c, http.StatusOK, "resident/informations.html", s.page(c, "informations", "Mes informations", d))
}

// setPaperless confirms (or withdraws) the paperless request; the service
// is emailed automatically.
func (s *Server) setPaperless(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	r := residentOf(c)
	on := c.PostForm("paperless") == "1"
	if err := s.Accounts.SetPaperless(c.Request.Context(), t, r.Account.ID, on); err != nil {
		if errors.Is(err, account.ErrPaperlessDisabled) {
			c.Redirect(http.StatusSeeOther, "/informations")
			return
		}
		s.fail(c, err)
		return
	}
	if on {
		s.flash(c, "Votre demande a été transmise au service : vous ne recevrez plus les factures au format papier.")
	} else {
		s.flash(c, "Votre demande a été transmise au service : vous recevrez de nouveau les factures au format papier.")
	}
	c.Redirect(http.StatusSeeOther, "/informations")
}

type emailChangeData struct{ Email string }

func (s *Server) emailChangePage(c *gin.Context) {
	s.render(c, http.StatusOK, "resident/email_change.html", s.page(c, "informations", "Changer l'adresse mail", emailChangeData{}))
}

func (s *Server) emailChange(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	r := residentOf(c)
	email := c.PostForm("email")
	err := s.Accounts.RequestEmailChange(c.Request.Context(), t, r.Account.ID, c.PostForm("password"), email)
	msg, field := "", "email"
	switch {
	case err == nil:
		s.flash(c, "Un message de validation a été envoyé à "+account.NormalizeEmail(email)+". Cliquez sur le lien qu'il contient pour utiliser cette nouvelle adresse.")
		c.Redirect(http.StatusSeeOther, "/informations")
		return
	case errors.Is(err, account.ErrWrongPassword):
		msg, field = "Le mot de passe actuel est incorrect.", "password"
	case errors.Is(err, account.ErrInvalidEmail):
		msg = msgInvalidEmail
	case errors.Is(err, account.ErrEmailTaken):
		msg = "Cette adresse mail est déjà utilisée par un autre compte."
	case errors.Is(err, account.ErrEmailUnchanged):
		msg = "C'est déjà votre adresse mail actuelle."
	case errors.Is(err, account.ErrTooManyRequests):
		msg, field = msgTooManyRequests, ""
	default:
		var throttled *account.ThrottledError
		if errors.As(err, &throttled) {
			msg, field = "Trop de tentatives. Veuillez réessayer dans "+frDuration(throttled.RetryAfter)+".", ""
			break
		}
		s.fail(c, err)
		return
	}
	p := s.page(c, "informations", "Changer l'adresse mail", emailChangeData{Email: email})
	p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: msg, Fields: fieldList(field)})
	s.render(c, http.StatusUnprocessableEntity, "resident/email_change.html", p)
}

type emailConfirmData struct {
	Valid    bool
	NewEmail string
}

// emailConfirmPage shows the confirmation button; the token is consumed by
// the POST only (mail scanners prefetch links).
func (s *Server) emailConfirmPage(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	tok, err := s.Accounts.PeekToken(c.Request.Context(), t.ID, c.Param("token"), account.PurposeEmailChange)
	d := emailConfirmData{}
	status := http.StatusNotFound
	if err == nil {
		d, status = emailConfirmData{Valid: true, NewEmail: tok.NewEmail}, http.StatusOK
	}
	s.render(c, status, "resident/email_confirm.html", view.Page{Title: "Nouvelle adresse mail", Data: d})
}

func (s *Server) emailConfirm(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	err := s.Accounts.ConfirmEmailChange(c.Request.Context(), t, c.Param("token"))
	switch {
	case errors.Is(err, account.ErrTokenInvalid):
		s.render(c, http.StatusNotFound, "resident/email_confirm.html", view.Page{Title: "Nouvelle adresse mail", Data: emailConfirmData{}})
		return
	case errors.Is(err, account.ErrEmailTaken):
		s.render(c, http.StatusConflict, "resident/email_confirm.html", view.Page{Title: "Nouvelle adresse mail",
			Flashes: []view.Flash{{Kind: "error", Text: "Cette adresse mail est déjà utilisée par un autre compte."}}, Data: emailConfirmData{}})
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "resident/login.html", view.Page{Title: "Connexion",
		Flashes: []view.Flash{{Kind: "ok", Text: "Votre nouvelle adresse mail est enregistrée. C'est elle qui vous sert désormais à vous connecter."}},
		Data:    loginData{}})
}

type passwordChangeData struct{ MinLength int }

func (s *Server) passwordChangePage(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	s.render(c, http.StatusOK, "resident/password_change.html", s.page(c, "informations", "Changer le mot de passe",
		passwordChangeData{MinLength: max(t.PasswordMinLength, 8)}))
}

// passwordChange needs the current password; other sessions are closed.
func (s *Server) passwordChange(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	r := residentOf(c)
	retry := func(msg, field string) {
		p := s.page(c, "informations", "Changer le mot de passe", passwordChangeData{MinLength: max(t.PasswordMinLength, 8)})
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: msg, Fields: fieldList(field)})
		s.render(c, http.StatusUnprocessableEntity, "resident/password_change.html", p)
	}
	pw := c.PostForm("password")
	if pw != c.PostForm("confirm") {
		retry("Les deux mots de passe saisis sont différents.", "confirm")
		return
	}
	err := s.Accounts.ChangePassword(c.Request.Context(), t, r.Account.ID, c.PostForm("current"), pw, r.SessionID)
	var policy *account.PolicyError
	var throttled *account.ThrottledError
	switch {
	case errors.Is(err, account.ErrWrongPassword):
		retry("Le mot de passe actuel est incorrect.", "current")
		return
	case errors.As(err, &policy):
		retry(policy.Message, "password")
		return
	case errors.As(err, &throttled):
		retry("Trop de tentatives. Veuillez réessayer dans "+frDuration(throttled.RetryAfter)+".", "")
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	// Remember-me tokens were revoked with the other sessions.
	s.clearCookie(c, rememberCookie)
	s.flash(c, "Votre mot de passe a été modifié. Vos autres connexions ont été fermées.")
	c.Redirect(http.StatusSeeOther, "/informations")
}
