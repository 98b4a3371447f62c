package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"portail/pkg/tenant"
)

// LoginActions are the audit actions of a resident's login history, as
// the data download lists them.
var LoginActions = []string{"login.ok", "login.remembered", "login.failed", "logout", "remember.replayed"}

// Export writes, as one JSON document, everything the portal holds about
// the account of t: the account and its choices, its invoices, its payment
// attempts (with what PayFiP answered and the invoices each paid), its
// messages with the service both ways, and its login history from the
// audit trail. Only this account's rows are read (every query filters on
// the commune and the account).
//
// The lists are streamed row by row, one json.Encoder call per element,
// from one read-only snapshot: a resident with tens of thousands of
// invoices costs no more memory than one with ten.
func (s *Service) Export(ctx context.Context, t *tenant.Tenant, accountID int64, w io.Writer) error {
	tx, err := s.DB.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	defer tx.Rollback()
	a, err := getAccount(ctx, tx, t.ID, accountID)
	if err != nil {
		return err
	}
	x := &exporter{ctx: ctx, tx: tx, w: w, enc: json.NewEncoder(w)}
	x.enc.SetEscapeHTML(false)
	x.raw("{\n\"commune\": ")
	x.encode(map[string]any{"nom": t.Name, "service": t.ServiceLabel, "adresse_du_portail": t.PrimaryHost})
	x.raw(",\n\"genere_le\": ")
	x.encode(s.now().Format(time.RFC3339))
	x.raw(",\n\"compte\": ")
	x.encode(exportedAccount(a))
	x.raw(",\n\"choix\": ")
	x.encode(exportedChoices(a))

	x.raw(",\n\"factures\": ")
	x.list(`SELECT json_build_object(
			'numero', number, 'objet', object, 'date', issued_on, 'echeance', due_on,
			'montant_cents', amount_cents, 'statut', status, 'reglee_le', paid_at, 'reglee_par', nullif(paid_how, ''),
			'prelevement', direct_debit, 'paiement_suspendu', payment_suspended,
			'declaree_reglee_par_vous_le', declared_paid_at, 'mise_en_ligne_le', created_at)
		FROM invoices WHERE tenant_id = $1 AND account_id = $2 ORDER BY issued_on, id`, t.ID, a.ID)

	x.raw(",\n\"paiements\": ")
	x.list(`SELECT json_build_object(
			'reference_payfip', p.refdet, 'identifiant_operation', p.id_op, 'mode', p.mode,
			'montant_cents', p.amount_cents, 'adresse_mail_transmise', nullif(p.email, ''), 'statut', p.status,
			'commence_le', p.created_at, 'termine_le', p.resolved_at, 'paye_le', p.paid_at,
			'payfip', json_build_object('resultrans', p.resultrans, 'numauto', p.numauto,
				'dattrans', p.dattrans, 'heurtrans', p.heurtrans),
			'remboursement_cents', p.refund_cents,
			'factures', coalesce((SELECT json_agg(json_build_object('numero', i.number, 'montant_cents', pi.amount_cents) ORDER BY i.number)
				FROM payment_invoices pi JOIN invoices i ON i.tenant_id = pi.tenant_id AND i.id = pi.invoice_id
				WHERE pi.tenant_id = p.tenant_id AND pi.payment_id = p.id), '[]'::json))
		FROM payments p WHERE p.tenant_id = $1 AND p.account_id = $2 ORDER BY p.created_at, p.id`, t.ID, a.ID)

	x.raw(",\n\"messages\": ")
	x.list(`SELECT json_build_object(
			'conversation', m.thread_id, 'sujet_de_la_conversation', th.subject,
			'de', CASE m.direction WHEN 'resident' THEN 'vous' ELSE 'le service' END,
			'objet', m.subject, 'message', m.body, 'envoye_le', m.created_at, 'lu_le', m.read_at)
		FROM messages m JOIN message_threads th ON th.tenant_id = m.tenant_id AND th.id = m.thread_id
		WHERE m.tenant_id = $1 AND m.account_id = $2 ORDER BY m.created_at, m.id`, t.ID, a.ID)

	x.raw(",\n\"connexions\": ")
	x.list(`SELECT json_build_object('evenement', CASE action
				WHEN 'login.ok' THEN 'connexion'
				WHEN 'login.remembered' THEN 'connexion automatique (se souvenir de moi)'
				WHEN 'login.failed' THEN 'échec de connexion'
				WHEN 'logout' THEN 'déconnexion'
				ELSE 'connexions fermées (cookie de connexion réutilisé)' END,
			'le', at, 'adresse_ip', host(ip))
		FROM audit_log WHERE tenant_id = $1 AND object_type = 'account' AND object_id = $2::text
		  AND action = ANY($3) ORDER BY at, id`, t.ID, a.ID, pq.Array(LoginActions))
	x.raw("\n}\n")
	return x.err
}

// exporter writes JSON to w, stopping at the first error.
type exporter struct {
	ctx context.Context
	tx  *sqlx.Tx
	w   io.Writer
	enc *json.Encoder
	err error
}

func (x *exporter) raw(s string) {
	if x.err == nil {
		_, x.err = io.WriteString(x.w, s)
	}
}

func (x *exporter) encode(v any) {
	if x.err == nil {
		if err := x.enc.Encode(v); err != nil {
			x.err = fmt.Errorf("account: export: %w", err)
		}
	}
}

// list writes a JSON array of the rows of query, each a json value built by
// PostgreSQL, one at a time.
func (x *exporter) list(query string, args ...any) {
	if x.err != nil {
		return
	}
	rows, err := x.tx.QueryContext(x.ctx, query, args...)
	if err != nil {
		x.err = fmt.Errorf("account: export: %w", err)
		return
	}
	defer rows.Close()
	x.raw("[")
	first := true
	for rows.Next() && x.err == nil {
		var v json.RawMessage
		if err := rows.Scan(&v); err != nil {
			x.err = fmt.Errorf("account: export: %w", err)
			return
		}
		if !first {
			x.raw(",")
		}
		first = false
		x.encode(v)
	}
	if err := rows.Err(); err != nil && x.err == nil {
		x.err = fmt.Errorf("account: export: %w", err)
	}
	x.raw("]")
}

func exportedAccount(a *Account) map[string]any {
	return map[string]any{
		"reference":              a.ExternalRef,
		"nom":                    a.DisplayName,
		"adresse_mail":           a.Email,
		"statut":                 a.Status,
		"cree_le":                a.CreatedAt,
		"modifie_le":             a.UpdatedAt,
		"mot_de_passe_change_le": a.PasswordChangedAt,
		"derniere_connexion_le":  a.LastLoginAt,
	}
}

func exportedChoices(a *Account) map[string]any {
	return map[string]any{
		"factures_papier":            !a.Paperless,
		"factures_papier_choix_le":   a.PaperlessAt,
		"alertes_nouvelles_factures": a.InvoiceAlerts,
		"rappels_avant_echeance":     a.DueReminders,
		"informations_de_la_commune": a.Announcements,
	}
}
