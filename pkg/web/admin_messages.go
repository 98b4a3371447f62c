package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"portail/pkg/message"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// messagesPerPage is the inbox's page size.
const messagesPerPage = 25

type messagesData struct {
	Threads []message.Thread
	Total   int
	Pager   pager
	Columns []sortColumn
	// The filters, as given.
	Status, Payer string
	Statuses      []option
}

// threadStatuses are the inbox's status filter ("" is every thread).
var threadStatuses = []option{{message.StatusOpen, "Ouvertes"}, {message.StatusClosed, "Closes"}, {"tous", "Toutes"}}

// adminMessages is "Messages": the residents' Contact threads, open ones
// by default, those with unread messages first.
func (s *Server) adminMessages(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	l := readList(c, message.Sorts(), message.DefaultSort)
	d := messagesData{Status: l.Filter("etat"), Payer: l.Filter("redevable"), Statuses: threadStatuses}
	q := message.Query{Status: message.StatusOpen, Payer: d.Payer, Sort: l.Sort, Page: l.Page, PerPage: messagesPerPage}
	switch d.Status {
	case message.StatusClosed:
		q.Status = message.StatusClosed
	case "tous":
		q.Status = ""
	default:
		d.Status = message.StatusOpen
	}
	threads, total, err := s.Messages.Search(c.Request.Context(), t.ID, q)
	if last := lastPage(total, messagesPerPage); err == nil && l.Page > last {
		q.Page, l.Page = last, last
		threads, total, err = s.Messages.Search(c.Request.Context(), t.ID, q)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Threads, d.Total, d.Pager = threads, total, l.Pager(total, messagesPerPage)
	d.Columns = []sortColumn{{Label: "Redevable"}, {Label: "Objet"}, l.Column("Dernier message", "date"),
		l.Column("Non lus", "unread"), {Label: "État"}}
	s.render(c, http.StatusOK, "admin/messages.html", s.staffPage(c, "messages", "Messages", d))
}

type threadData struct {
	Thread   *message.Thread
	Messages []message.Message
	Reply    string // the reply, kept when refused
	Max      int
}

// threadID reads the :id of a thread's URL (0 when it is not one).
func threadID(c *gin.Context) int64 {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// adminThread is a thread: the resident's messages and the replies, in
// order, with the reply form.
func (s *Server) adminThread(c *gin.Context) {
	s.renderThread(c, http.StatusOK, "", "", "")
}

func (s *Server) renderThread(c *gin.Context, status int, reply, problem, field string) {
	t := tenant.FromContext(c.Request.Context())
	id := threadID(c)
	th, err := s.Messages.Thread(c.Request.Context(), t.ID, id)
	if errors.Is(err, message.ErrNotFound) || id == 0 {
		s.notFound(c)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	ms, err := s.Messages.Messages(c.Request.Context(), t.ID, th.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	title := "Message de " + th.PayerName
	p := s.staffPage(c, "messages", title, threadData{Thread: th, Messages: ms, Reply: reply, Max: message.MaxBodyLength})
	if problem != "" {
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: problem, Fields: fieldList(field)})
	}
	s.render(c, status, "admin/thread.html", p)
}

// adminThreadReply stores and emails a reply; the resident reads it on
// their Contact page too.
func (s *Server) adminThreadReply(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	id := threadID(c)
	body := c.PostForm("body")
	_, err := s.Messages.Reply(c.Request.Context(), t, id, staffOf(c).ID, body)
	var problem string
	switch {
	case err == nil:
		s.staffFlash(c, "Votre réponse a été envoyée au redevable par courriel ; elle est visible sur sa page Contact.")
		c.Redirect(http.StatusSeeOther, "/admin/messages/"+strconv.FormatInt(id, 10))
		return
	case errors.Is(err, message.ErrNotFound):
		s.notFound(c)
		return
	case errors.Is(err, message.ErrEmptyBody):
		problem = "Veuillez saisir votre réponse."
	case errors.Is(err, message.ErrBodyTooLong):
		problem = "La réponse ne doit pas dépasser " + strconv.Itoa(message.MaxBodyLength) + " caractères."
	case errors.Is(err, message.ErrInvalidText):
		problem = "La réponse contient des caractères non valides."
	default:
		s.fail(c, err)
		return
	}
	s.renderThread(c, http.StatusUnprocessableEntity, body, problem, "reply")
}

// adminThreadState closes or reopens a thread, or marks it read or unread.
func (s *Server) adminThreadState(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	id := threadID(c)
	ctx := c.Request.Context()
	var err error
	var msg string
	switch c.PostForm("action") {
	case "close":
		err, msg = s.Messages.SetStatus(ctx, t.ID, id, message.StatusClosed), "La conversation est close."
	case "open":
		err, msg = s.Messages.SetStatus(ctx, t.ID, id, message.StatusOpen), "La conversation est rouverte."
	case "read":
		err, msg = s.Messages.MarkRead(ctx, t.ID, id, true), "La conversation est marquée comme lue."
	case "unread":
		err, msg = s.Messages.MarkRead(ctx, t.ID, id, false), "La conversation est marquée comme non lue."
	default:
		s.renderThread(c, http.StatusUnprocessableEntity, "", "Action inconnue.", "")
		return
	}
	if errors.Is(err, message.ErrNotFound) {
		s.notFound(c)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.staffFlash(c, msg)
	c.Redirect(http.StatusSeeOther, "/admin/messages/"+strconv.FormatInt(id, 10))
}
