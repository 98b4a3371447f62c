package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/paris"
	"portail/pkg/tenant"
)

type homeData struct {
	Notice       string
	CommuneLower string
	welcome      string
}

// homeNotice and homeWelcome are what the home's partials show
// (templates/layouts/home_texts.html), on the residents' home and in the
// staff's preview.
type homeNotice struct {
	Notice  string
	Preview bool
}

type homeWelcome struct {
	Welcome, CommuneLower string
}

// NoticeView is the notice partial's data.
func (d homeData) NoticeView() homeNotice { return homeNotice{Notice: d.Notice} }

// WelcomeView is the welcome partial's data.
func (d homeData) WelcomeView() homeWelcome {
	return homeWelcome{Welcome: d.welcome, CommuneLower: d.CommuneLower}
}

// home shows the commune's important notice first (until "Fermer", once per
// session), then the welcome text.
func (s *Server) home(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	r := residentOf(c)
	d := homeData{CommuneLower: communeLower(t.Name), welcome: t.WelcomeText}
	if t.NoticeShownOn(parisDay(time.Now())) && r.Session.Flags["notice_closed"] == "" {
		d.Notice = t.ImportantNotice
	}
	title := "Accueil"
	if d.Notice != "" {
		title = "Information importante"
	}
	s.render(c, http.StatusOK, "resident/home.html", s.page(c, "accueil", title, d))
}

// closeNotice is "Fermer" on the important notice. The welcome text that
// replaces it takes the focus (the fragment names a focusable section), so
// keyboard and screen reader users go on from there.
func (s *Server) closeNotice(c *gin.Context) {
	r := residentOf(c)
	if err := s.Sessions.SetFlag(c.Request.Context(), r.Account.TenantID, r.SessionID, "notice_closed", "1"); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/accueil#bienvenue")
}

// communeLower turns "MAIRIE DE SISTEC" into "mairie de SISTEC", as the
// manual's welcome text writes it.
func communeLower(name string) string {
	for _, prefix := range []string{"MAIRIE DE ", "MAIRIE D'", "MAIRIE DU ", "MAIRIE DES "} {
		if strings.HasPrefix(name, prefix) {
			return strings.ToLower(prefix) + name[len(prefix):]
		}
	}
	return name
}

// parisDay is the Paris day of at, as YYYY-MM-DD.
func parisDay(at time.Time) string {
	return at.In(paris.Location).Format("2006-01-02")
}
