package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/auth"
	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type adminLoginData struct {
	Email string
}

// adminLoginPage is the staff's login: email and password. A member
// already logged in goes where their session's stage belongs.
func (s *Server) adminLoginPage(c *gin.Context) {
	if m := staffOf(c); m != nil {
		c.Redirect(http.StatusSeeOther, stagePath(m.Stage()))
		return
	}
	s.render(c, http.StatusOK, "admin/login.html", s.staffPage(c, "", "Connexion à l'espace des agents", adminLoginData{}))
}

// adminLogin checks the credentials; every refusal reads the same
// (staff.Authenticate also equalises its cost). A new session is opened,
// at the stage of the second factor when the member has one.
func (s *Server) adminLogin(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	email := c.PostForm("email")
	m, err := s.Staff.Authenticate(c.Request.Context(), t, email, c.PostForm("password"), c.ClientIP())
	if msg, status, ok := staffRefusal(c, err); ok {
		p := s.staffPage(c, "", "Connexion à l'espace des agents", adminLoginData{Email: email})
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: msg})
		s.render(c, status, "admin/login.html", p)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.startStaffSession(c, m, false)
}

// adminLogout ends the staff session of this browser.
func (s *Server) adminLogout(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	if m := staffOf(c); m != nil {
		s.StaffSessions.Delete(c.Request.Context(), t.ID, m.SessionID)
	}
	s.clearStaffCookie(c)
	c.Redirect(http.StatusSeeOther, "/admin/connexion")
}

// staffRefusal turns the refusals of the staff's forms into a French
// message and status; ok false for any other error (a failure to report).
func staffRefusal(c *gin.Context, err error) (msg string, status int, ok bool) {
	var throttled *auth.ThrottledError
	var policy *auth.PolicyError
	switch {
	case err == nil:
		return "", 0, false
	case errors.As(err, &throttled):
		c.Header("Retry-After", fmt.Sprint(int(math.Ceil(throttled.RetryAfter.Seconds()))))
		return fmt.Sprintf("Trop de tentatives. Veuillez réessayer dans %s.", frDuration(throttled.RetryAfter)), http.StatusTooManyRequests, true
	case errors.As(err, &policy):
		return policy.Message, http.StatusUnprocessableEntity, true
	case errors.Is(err, staff.ErrInvalidCredentials):
		return "Adresse mail ou mot de passe incorrect.", http.StatusUnauthorized, true
	case errors.Is(err, staff.ErrWrongPassword):
		return "Le mot de passe actuel est incorrect.", http.StatusUnprocessableEntity, true
	case errors.Is(err, staff.ErrInvalidCode):
		return "Code incorrect, expiré ou déjà utilisé. Saisissez le code affiché en ce moment par votre application, ou un code de secours.", http.StatusUnprocessableEntity, true
	case errors.Is(err, staff.ErrInvalidName):
		return "Veuillez saisir votre nom (200 caractères au plus).", http.StatusUnprocessableEntity, true
	case errors.Is(err, staff.ErrTokenInvalid):
		return "Ce lien n'est plus valable : il a déjà servi ou il a expiré.", http.StatusGone, true
	case errors.Is(err, staff.ErrAdminNeedsTOTP):
		return "Un administrateur doit garder son second facteur d'authentification.", http.StatusUnprocessableEntity, true
	case errors.Is(err, staff.ErrAlreadyEnrolled):
		return "Un second facteur est déjà enregistré pour votre compte.", http.StatusConflict, true
	case errors.Is(err, staff.ErrNotEnrolled):
		return "Aucun second facteur n'est enregistré pour votre compte.", http.StatusConflict, true
	}
	return "", 0, false
}
