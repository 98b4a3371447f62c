package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/announce"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// emailList is a kind of email a resident may stop from its unsubscribe
// link (/desabonnement/<token>, with ?liste=<Slug> but for the alerts) or
// in "Mes informations".
type emailList struct {
	Slug string
	On   bool // the account receives them
	// Offered: the commune sends them at all.
	Offered bool
}

const (
	listAlerts    = "alertes"
	listReminders = "rappels"
	// listAnnouncements: the commune's "informations diverses", which the
	// manual names apart from the new-invoice alerts.
	listAnnouncements = announce.UnsubscribeList
)

type unsubscribeData struct {
	Valid, Done bool
	Email       string
	List        emailList   // what the link stops
	Others      []emailList // the other kinds still received, offered to stop too
}

// emailLists are the account's kinds of email in commune t: the
// new-invoice alerts, the reminders before the due date and the
// commune's information emails (which every commune may send).
func emailLists(t *tenant.Tenant, a *account.Account) (alerts, reminders, announcements emailList) {
	return emailList{Slug: listAlerts, On: a.InvoiceAlerts, Offered: t.InvoiceAlerts},
		emailList{Slug: listReminders, On: a.DueReminders, Offered: t.RemindersEnabled},
		emailList{Slug: listAnnouncements, On: a.Announcements, Offered: true}
}

// setEmailList turns one kind of email on or off for an account.
func (s *Server) setEmailList(ctx context.Context, tenantID, accountID int64, slug string, on bool) error {
	switch slug {
	case listReminders:
		return s.Accounts.SetDueReminders(ctx, tenantID, accountID, on)
	case listAnnouncements:
		return s.Accounts.SetAnnouncements(ctx, tenantID, accountID, on)
	}
	return s.Accounts.SetAlerts(ctx, tenantID, accountID, on)
}

// unsubscribePage is reached from an alert or reminder email without
// logging in; the GET changes nothing (mail scanners open links), the
// button does (and so does a mail client's one-click POST).
func (s *Server) unsubscribePage(c *gin.Context) {
	s.unsubscribeAnswer(c, false)
}

func (s *Server) unsubscribe(c *gin.Context) {
	s.unsubscribeAnswer(c, true)
}

func (s *Server) unsubscribeAnswer(c *gin.Context, apply bool) {
	t := tenant.FromContext(c.Request.Context())
	a, err := s.Accounts.AlertsByToken(c.Request.Context(), t.ID, c.Param("token"))
	if errors.Is(err, account.ErrNotFound) {
		s.render(c, http.StatusNotFound, "resident/unsubscribe.html", view.Page{Title: "Désabonnement", Data: unsubscribeData{}})
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	alerts, reminders, announcements := emailLists(t, a)
	all := []emailList{alerts, reminders, announcements}
	d := unsubscribeData{Valid: true, Email: a.Email, List: alerts}
	for _, l := range all {
		if l.Slug == c.Query("liste") {
			d.List = l
		}
	}
	for _, l := range all {
		if l.Slug != d.List.Slug && l.Offered && l.On {
			d.Others = append(d.Others, l)
		}
	}
	if apply && d.List.On {
		if err := s.setEmailList(c.Request.Context(), t.ID, a.ID, d.List.Slug, false); err != nil {
			s.fail(c, err)
			return
		}
		d.List.On = false
	}
	d.Done = !d.List.On
	title := "Alertes de nouvelles factures"
	switch d.List.Slug {
	case listReminders:
		title = "Rappels avant l'échéance"
	case listAnnouncements:
		title = "Informations de la commune"
	}
	s.render(c, http.StatusOK, "resident/unsubscribe.html", view.Page{Title: title, Data: d})
}
