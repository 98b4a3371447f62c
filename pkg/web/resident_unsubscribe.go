package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
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
)

type unsubscribeData struct {
	Valid, Done bool
	Email       string
	List        emailList // what the link stops
	Other       emailList // the other kind, offered to stop too
}

// emailLists are the account's two kinds of email in commune t: the
// new-invoice alerts and the reminders before the due date.
func emailLists(t *tenant.Tenant, a *account.Account) (alerts, reminders emailList) {
	return emailList{Slug: listAlerts, On: a.InvoiceAlerts, Offered: t.InvoiceAlerts},
		emailList{Slug: listReminders, On: a.DueReminders, Offered: t.RemindersEnabled}
}

// setEmailList turns one kind of email on or off for an account.
func (s *Server) setEmailList(ctx context.Context, tenantID, accountID int64, slug string, on bool) error {
	if slug == listReminders {
		return s.Accounts.SetDueReminders(ctx, tenantID, accountID, on)
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
	alerts, reminders := emailLists(t, a)
	d := unsubscribeData{Valid: true, Email: a.Email, List: alerts, Other: reminders}
	if c.Query("liste") == listReminders {
		d.List, d.Other = reminders, alerts
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
	if d.List.Slug == listReminders {
		title = "Rappels avant l'échéance"
	}
	s.render(c, http.StatusOK, "resident/unsubscribe.html", view.Page{Title: title, Data: d})
}
