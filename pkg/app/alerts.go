package app

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"portail/pkg/mail"
	"portail/pkg/tenant"
)

// decorateEmail completes alert emails when they are sent: the link to the
// portal and a link that stops alerts without logging in (also offered as
// List-Unsubscribe, which mail clients show as a button).
func decorateEmail(d *sqlx.DB, links func(*tenant.Tenant, string) string) func(context.Context, *tenant.Tenant, *mail.Email) (map[string]string, error) {
	return func(ctx context.Context, t *tenant.Tenant, e *mail.Email) (map[string]string, error) {
		if e.Template != "new_invoices" {
			return nil, nil
		}
		id, ok := e.Data["AccountID"].(float64) // JSON numbers come back as float64
		if !ok {
			return nil, fmt.Errorf("alert without AccountID")
		}
		var token string
		if err := d.GetContext(ctx, &token, `SELECT unsubscribe_token FROM accounts WHERE tenant_id = $1 AND id = $2`, t.ID, int64(id)); err != nil {
			return nil, err
		}
		unsubscribe := links(t, "/desabonnement/"+token)
		e.Data["UnsubscribeLink"] = unsubscribe
		e.Data["PortalLink"] = links(t, "/factures")
		return map[string]string{"List-Unsubscribe": "<" + unsubscribe + ">"}, nil
	}
}
