package app

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"portail/pkg/imports"
	"portail/pkg/mail"
	"portail/pkg/reminder"
	"portail/pkg/tenant"
)

// unsubscribeLists are the emails that a resident may stop without logging
// in, with what their link says to stop: the account's one unsubscribe
// link, for the new-invoice alerts (as it always was) or, with
// ?liste=rappels, the reminders before the due date.
var unsubscribeLists = map[string]string{
	imports.AlertTemplate: "",
	reminder.Template:     "?liste=rappels",
}

// decorateEmail completes alert and reminder emails when they are sent:
// the link to the portal and a link that stops them without logging in
// (also offered as List-Unsubscribe, which mail clients show as a button,
// with List-Unsubscribe-Post: the link's page unsubscribes on a POST).
func decorateEmail(d *sqlx.DB, links func(*tenant.Tenant, string) string) func(context.Context, *tenant.Tenant, *mail.Email) (map[string]string, error) {
	return func(ctx context.Context, t *tenant.Tenant, e *mail.Email) (map[string]string, error) {
		list, ok := unsubscribeLists[e.Template]
		if !ok {
			return nil, nil
		}
		id, ok := e.Data["AccountID"].(float64) // JSON numbers come back as float64
		if !ok {
			return nil, fmt.Errorf("%s email without AccountID", e.Template)
		}
		var token string
		if err := d.GetContext(ctx, &token, `SELECT unsubscribe_token FROM accounts WHERE tenant_id = $1 AND id = $2`, t.ID, int64(id)); err != nil {
			return nil, err
		}
		unsubscribe := links(t, "/desabonnement/"+token+list)
		e.Data["UnsubscribeLink"] = unsubscribe
		e.Data["PortalLink"] = links(t, "/factures")
		return map[string]string{
			"List-Unsubscribe":      "<" + unsubscribe + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		}, nil
	}
}
