package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// textsData is the Textes form and its preview.
type textsData struct {
	Texts   tenant.Texts
	Version int64
	// The preview's data, for the residents' partials.
	Notice  homeNotice
	Welcome homeWelcome
	// Shown: whether residents see the notice today (its dates).
	Shown bool
}

// adminTexts is "Textes": the important notice (with optional dates) and
// the welcome text, with a preview drawn by the residents' own partials.
func (s *Server) adminTexts(c *gin.Context) {
	t, err := s.freshTenant(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.renderTexts(c, http.StatusOK, t, t.Settings().Texts, t.Version, nil)
}

func (s *Server) renderTexts(c *gin.Context, status int, t *tenant.Tenant, texts tenant.Texts, version int64, flashes []view.Flash) {
	preview := *t
	preview.ImportantNotice, preview.NoticeFrom, preview.NoticeUntil = texts.Notice, texts.NoticeFrom, texts.NoticeUntil
	d := textsData{Texts: texts, Version: version,
		Notice:  homeNotice{Notice: texts.Notice, Preview: true},
		Welcome: homeWelcome{Welcome: texts.Welcome, CommuneLower: communeLower(t.Name)},
		Shown:   preview.NoticeShownOn(parisDay(time.Now()))}
	p := s.staffPage(c, "textes", "Textes", d)
	p.Tenant = t
	p.Flashes = append(p.Flashes, flashes...)
	s.render(c, status, "admin/texts.html", p)
}

// adminTextsSave previews (action=apercu) or saves the texts.
func (s *Server) adminTextsSave(c *gin.Context) {
	t, err := s.freshTenant(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	texts := tenant.Texts{
		Welcome:     strings.TrimSpace(c.PostForm("welcome")),
		Notice:      strings.TrimSpace(c.PostForm("notice")),
		NoticeFrom:  strings.TrimSpace(c.PostForm("notice_from")),
		NoticeUntil: strings.TrimSpace(c.PostForm("notice_until")),
	}
	version := formVersion(c)
	if c.PostForm("action") == "apercu" {
		s.renderTexts(c, http.StatusOK, t, texts, version, []view.Flash{{Kind: "info",
			Text: "Aperçu : les textes ne sont pas encore enregistrés."}})
		return
	}
	next := t.Settings()
	next.Texts = texts
	_, err = s.TenantService.Update(c.Request.Context(), t.ID, version, next, tenant.GroupTexts)
	if flashes, ok := settingsRefusal(err); ok {
		s.renderTexts(c, http.StatusUnprocessableEntity, t, texts, t.Version, flashes)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.staffFlash(c, "Les textes ont été enregistrés : les redevables les voient dès maintenant.")
	c.Redirect(http.StatusSeeOther, "/admin/textes")
}
