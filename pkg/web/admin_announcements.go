package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"portail/pkg/announce"
	"portail/pkg/mail"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// announcementsPerPage is the history's page size.
const announcementsPerPage = 20

type announcementsData struct {
	Announcements []announce.Announcement
	Total         int
	Pager         pager
}

// adminAnnouncements is "Annonces": the history of the commune's
// information emails with their progress.
func (s *Server) adminAnnouncements(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	page := pageParam(c)
	list, total, err := s.Announcements.List(c.Request.Context(), t.ID, page, announcementsPerPage)
	if last := lastPage(total, announcementsPerPage); err == nil && page > last {
		page = last
		list, total, err = s.Announcements.List(c.Request.Context(), t.ID, page, announcementsPerPage)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	l := readList(c, nil, "")
	l.Page = page
	s.render(c, http.StatusOK, "admin/announcements.html", s.staffPage(c, "annonces", "Annonces",
		announcementsData{Announcements: list, Total: total, Pager: l.Pager(total, announcementsPerPage)}))
}

type announcementFormData struct {
	Subject, Body string
	// RequestKey is the confirmation form's key: one announcement however
	// often the form is posted.
	RequestKey string
	Recipients int
	MaxSubject int
	MaxBody    int
	// The preview: the email as a resident receives it.
	Preview        bool
	PreviewSubject string
	PreviewText    string
}

// adminAnnouncementNew is the form of a new announcement.
func (s *Server) adminAnnouncementNew(c *gin.Context) {
	s.renderAnnouncementForm(c, http.StatusOK, announcementFormData{}, nil)
}

func (s *Server) renderAnnouncementForm(c *gin.Context, status int, d announcementFormData, problem *view.Flash) {
	t := tenant.FromContext(c.Request.Context())
	n, err := s.Announcements.Recipients(c.Request.Context(), t.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Recipients, d.MaxSubject, d.MaxBody = n, announce.MaxSubjectLength, announce.MaxBodyLength
	title := "Nouvelle annonce"
	if d.Preview {
		title = "Aperçu de l'annonce"
	}
	p := s.staffPage(c, "annonces", title, d)
	if problem != nil {
		p.Flashes = append(p.Flashes, *problem)
	}
	s.render(c, status, "admin/announcement_form.html", p)
}

// announcementRefusal is the form's error for a refused announcement.
func announcementRefusal(err error) (*view.Flash, bool) {
	var input *announce.InputError
	if errors.As(err, &input) {
		return &view.Flash{Kind: "error", Text: input.Message, Fields: []string{input.Field}}, true
	}
	return nil, false
}

// adminAnnouncementPreview shows the email exactly as a resident will
// receive it (rendered by the email templates, with a sample name) and
// the confirmation "Envoyer à N habitants". Nothing is stored.
func (s *Server) adminAnnouncementPreview(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	d := announcementFormData{Subject: c.PostForm("subject"), Body: c.PostForm("body")}
	subject, body, err := announce.Clean(d.Subject, d.Body)
	if problem, ok := announcementRefusal(err); ok {
		s.renderAnnouncementForm(c, http.StatusUnprocessableEntity, d, problem)
		return
	}
	base := s.cfg.HTTP.PublicBaseURL(t.PrimaryHost)
	m, err := mail.NewRenderer(s.Templates).Render(t, announce.Email(t, "", "Prénom NOM", subject, body,
		base+"/desabonnement/…?liste="+announce.UnsubscribeList, base+"/"))
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Subject, d.Body, d.RequestKey = subject, body, announce.NewRequestKey()
	d.Preview, d.PreviewSubject, d.PreviewText = true, m.Subject, m.Text
	s.renderAnnouncementForm(c, http.StatusOK, d, nil)
}

// adminAnnouncementSend records the announcement and starts its sending
// through the jobs; the sender follows it on its page.
func (s *Server) adminAnnouncementSend(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	d := announcementFormData{Subject: c.PostForm("subject"), Body: c.PostForm("body")}
	id, err := s.Announcements.Create(c.Request.Context(), t.ID, staffOf(c).ID, c.PostForm("cle"), d.Subject, d.Body)
	if problem, ok := announcementRefusal(err); ok {
		s.renderAnnouncementForm(c, http.StatusUnprocessableEntity, d, problem)
		return
	}
	if errors.Is(err, announce.ErrInvalidRequestKey) {
		// Not from the preview's confirmation: show the preview first.
		s.renderAnnouncementForm(c, http.StatusUnprocessableEntity, d, &view.Flash{Kind: "error",
			Text: "Vérifiez l'aperçu de l'annonce avant de l'envoyer."})
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.staffFlash(c, "L'annonce est en cours d'envoi. Vous pouvez suivre sa progression ici.")
	c.Redirect(http.StatusSeeOther, "/admin/annonces/"+strconv.FormatInt(id, 10))
}

// announcementOf finds the announcement of the URL in the request's
// commune; false (after a 404) when there is none.
func (s *Server) announcementOf(c *gin.Context) (*announce.Announcement, bool) {
	t := tenant.FromContext(c.Request.Context())
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(c)
		return nil, false
	}
	a, err := s.Announcements.Get(c.Request.Context(), t.ID, id)
	if errors.Is(err, announce.ErrNotFound) {
		s.notFound(c)
		return nil, false
	}
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	return a, true
}

// adminAnnouncement is an announcement's page: its text and its sending's
// progress (sent / total, failures), refreshed by the page's script.
func (s *Server) adminAnnouncement(c *gin.Context) {
	a, ok := s.announcementOf(c)
	if !ok {
		return
	}
	s.render(c, http.StatusOK, "admin/announcement.html", s.staffPage(c, "annonces", a.Subject, a))
}

// adminAnnouncementProgress is an announcement's progress as JSON, for
// its page's script.
func (s *Server) adminAnnouncementProgress(c *gin.Context) {
	a, ok := s.announcementOf(c)
	if !ok {
		return
	}
	total := -1 // the recipients are not chosen yet
	if a.Total != nil {
		total = *a.Total
	}
	c.JSON(http.StatusOK, gin.H{"total": total, "sent": a.Sent, "failed": a.Failed, "skipped": a.Skipped, "finished": a.Finished()})
}
