package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/audit"
	"portail/pkg/imports"
	"portail/pkg/invoice"
	"portail/pkg/payment"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// historyLimit bounds the entries of a history read at once.
const historyLimit = 200

// event is one line of an invoice's or a payer's history.
type event struct {
	At     time.Time
	What   string
	Who    string
	Reason string
}

type invoiceDetailData struct {
	Invoice invoice.Row
	// As the resident reads it: the status, and why it cannot be paid
	// online ("" when the resident sees "Payer la facture").
	Status   string
	Verdict  payment.Verdict
	Pending  bool
	Batch    *imports.Batch
	Attempts []payment.Row
	History  []event
	// The status change form: the statuses the invoice may take now.
	Targets []option
	// What was typed, kept when refused.
	Form struct{ Status, StatusReason, DebitReason, SuspendReason string }
}

// adminInvoiceID reads :id; anything else answers 404.
func (s *Server) adminInvoiceID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(c)
		return 0, false
	}
	return id, true
}

// adminInvoice is an invoice's page: what residents read of it, its
// history (imports, staff changes, payment attempts and PayFiP's results,
// the resident's "paid by other means" marker) in time order, and the
// staff's changes.
func (s *Server) adminInvoice(c *gin.Context) {
	id, ok := s.adminInvoiceID(c)
	if !ok {
		return
	}
	s.renderInvoice(c, http.StatusOK, id, invoiceDetailData{}, nil)
}

func (s *Server) renderInvoice(c *gin.Context, status int, id int64, d invoiceDetailData, problem *view.Flash) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	inv, err := s.Invoices.GetInCommune(ctx, t.ID, id)
	if errors.Is(err, invoice.ErrNotFound) {
		s.notFound(c)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	st, err := s.Payments.InvoiceState(ctx, t.ID, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	// The resident's verdict, on the payment service's clock.
	verdict, err := s.Payments.Verdict(ctx, t, inv.AccountID, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Invoice, d.Pending, d.Status, d.Verdict = inv, st.Pending, inv.Status.Label(), verdict
	for _, to := range invoiceStatusOptions {
		if payment.StatusChangeRefusal(inv.Status, inv.PaidHow, to) == "" {
			d.Targets = append(d.Targets, option{string(to), to.Label()})
		}
	}
	if inv.ImportBatchID != nil {
		b, err := s.Imports.Batch(ctx, t.ID, *inv.ImportBatchID)
		if err != nil && !errors.Is(err, imports.ErrNotFound) {
			s.fail(c, err)
			return
		}
		d.Batch = b
	}
	d.Attempts, _, err = s.Payments.Search(ctx, t.ID, payment.Query{InvoiceNumber: inv.Number, Sort: "created", PerPage: historyLimit})
	if err != nil {
		s.fail(c, err)
		return
	}
	if d.History, err = s.invoiceHistory(c, inv, d.Batch, d.Attempts); err != nil {
		s.fail(c, err)
		return
	}
	p := s.staffPage(c, "factures", "Facture "+inv.Number, d)
	if problem != nil {
		p.Flashes = append(p.Flashes, *problem)
	}
	s.render(c, status, "admin/invoice.html", p)
}

// invoiceHistory merges what happened to an invoice, oldest first.
func (s *Server) invoiceHistory(c *gin.Context, inv invoice.Row, b *imports.Batch, attempts []payment.Row) ([]event, error) {
	t := tenant.FromContext(c.Request.Context())
	entries, _, err := audit.Search(c.Request.Context(), s.DB, t.ID,
		audit.Filter{ObjectType: audit.ObjectInvoice, ObjectID: strconv.FormatInt(inv.ID, 10)}, 1, historyLimit)
	if err != nil {
		return nil, err
	}
	names, err := s.staffNames(c)
	if err != nil {
		return nil, err
	}
	var out []event
	if b != nil && b.FinishedAt != nil {
		what := fmt.Sprintf("Écrite par l'import n° %d", b.ID)
		if b.Filename != "" {
			what += " (fichier " + b.Filename + ")"
		}
		out = append(out, event{At: *b.FinishedAt, What: what, Who: importActorLabel(b)})
	} else {
		out = append(out, event{At: inv.CreatedAt, What: "Facture créée"})
	}
	declared := false
	for _, e := range entries {
		ev := event{At: e.At, Who: actorLabel(e.ActorKind, e.ActorID, names)}
		ev.What, ev.Reason = auditEventText(e)
		declared = declared || e.Action == "invoice.declared_paid"
		out = append(out, ev)
	}
	if inv.DeclaredPaidAt != nil && !declared {
		out = append(out, event{At: *inv.DeclaredPaidAt, What: "Le redevable a indiqué l'avoir réglée par un autre moyen", Who: "Redevable"})
	}
	for _, a := range attempts {
		out = append(out, event{At: a.CreatedAt, Who: "Redevable",
			What: fmt.Sprintf("Paiement en ligne commencé (référence %s, %s, %s)", a.RefDet, a.Amount(), modeLabel(string(a.Mode)))})
		if a.ResolvedAt != nil {
			what := "Résultat PayFiP : " + a.Status.Label()
			if a.ResultTrans != "" {
				what += " (résultat " + a.ResultTrans + ")"
			}
			if a.NumAuto != "" {
				what += ", autorisation " + a.NumAuto
			}
			if a.RefundNeeded {
				what += ", à rembourser : " + invoice.FormatAmount(a.RefundCents)
			}
			out = append(out, event{At: *a.ResolvedAt, What: what, Who: "PayFiP"})
		}
	}
	slices.SortStableFunc(out, func(a, b event) int { return a.At.Compare(b.At) })
	return out, nil
}

func modeLabel(mode string) string {
	if mode == "classic" {
		return "mode classique"
	}
	return "mode web-service"
}

func importActorLabel(b *imports.Batch) string {
	switch b.ActorKind {
	case imports.ActorAPIKey:
		return "Clé d'API"
	case imports.ActorStaff:
		return "Agent"
	}
	return "Système"
}

// staffNames maps the commune's staff ids to their names, for histories.
func (s *Server) staffNames(c *gin.Context) (map[int64]string, error) {
	t := tenant.FromContext(c.Request.Context())
	members, err := s.Staff.Members(c.Request.Context(), t.ID)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(members))
	for _, m := range members {
		out[m.ID] = m.Name
		if m.Name == "" {
			out[m.ID] = m.Email
		}
	}
	return out, nil
}

// actorLabel names who acted in a history.
func actorLabel(kind string, id int64, staffNames map[int64]string) string {
	switch kind {
	case audit.KindStaff:
		if n, ok := staffNames[id]; ok {
			return "Agent " + n
		}
		return "Agent"
	case audit.KindResident:
		return "Redevable"
	}
	for _, o := range actorLabels {
		if o.Value == kind {
			return o.Label
		}
	}
	return kind
}

// auditEventText describes an audit entry of an invoice or an account in
// French, with its reason when it has one.
func auditEventText(e audit.Entry) (what, reason string) {
	var d struct {
		Reason string `json:"reason"`
		Status struct {
			Before string `json:"before"`
			After  string `json:"after"`
		} `json:"status"`
		DirectDebit struct {
			After bool `json:"after"`
		} `json:"direct_debit"`
		Suspended struct {
			After bool `json:"after"`
		} `json:"payment_suspended"`
	}
	_ = json.Unmarshal(e.Details, &d) // details are the portal's own JSON; unreadable ones show the action alone
	switch e.Action {
	case "invoice.status_changed":
		return "État changé : « " + invoice.Status(d.Status.Before).Label() + " » → « " + invoice.Status(d.Status.After).Label() + " »", d.Reason
	case "invoice.direct_debit_changed":
		if d.DirectDebit.After {
			return "Mise en prélèvement automatique", d.Reason
		}
		return "Retrait du prélèvement automatique", d.Reason
	case "invoice.payment_suspension_changed":
		if d.Suspended.After {
			return "Paiement en ligne suspendu", d.Reason
		}
		return "Paiement en ligne rétabli", d.Reason
	case "invoice.declared_paid":
		return "Le redevable a indiqué l'avoir réglée par un autre moyen", ""
	case "invoice.declared_unpaid":
		return "Le redevable a retiré son indication « réglée par un autre moyen »", ""
	case "account.disabled", "account.enabled":
		return "Compte " + accountStatusLabel(d.Status.Before) + " → " + accountStatusLabel(d.Status.After), ""
	case "account.activation_resent":
		return "Email d'activation renvoyé", ""
	case "account.activated":
		return "Compte activé par le redevable", ""
	case "activation.requested":
		return "Email d'activation demandé", ""
	case "password.changed":
		return "Mot de passe changé par le redevable", ""
	case "password.reset_requested":
		return "Lien de nouveau mot de passe demandé", ""
	case "password.reset":
		return "Mot de passe réinitialisé par le redevable", ""
	case "email_change.requested":
		return "Changement d'adresse mail demandé", ""
	case "email.changed":
		return "Adresse mail changée", ""
	case "remember.replayed":
		return "Cookie « Se souvenir de moi » réutilisé : sessions fermées", ""
	case "paperless.on":
		return "Choix : ne plus recevoir les factures papier", ""
	case "paperless.off":
		return "Choix : recevoir de nouveau les factures papier", ""
	}
	return e.Action, d.Reason
}

// adminInvoiceChange is one of the staff's changes to an invoice (status,
// direct debit, online payment), each with its reason; a refusal shows
// the page again with the reason why and what was typed.
func (s *Server) adminInvoiceChange(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	id, ok := s.adminInvoiceID(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	var d invoiceDetailData
	var err error
	var done, reasonField string
	switch c.Param("change") {
	case "etat":
		d.Form.Status, d.Form.StatusReason, reasonField = c.PostForm("status"), c.PostForm("reason"), "reason-status"
		to := invoice.Status(d.Form.Status)
		err = s.Payments.SetInvoiceStatus(ctx, t, id, to, d.Form.StatusReason)
		done = "L'état de la facture est maintenant « " + to.Label() + " »."
	case "prelevement":
		on := c.PostForm("on") == "1"
		d.Form.DebitReason, reasonField = c.PostForm("reason"), "reason-debit"
		err = s.Payments.SetInvoiceDirectDebit(ctx, t, id, on, d.Form.DebitReason)
		done = "La facture n'est plus en prélèvement automatique."
		if on {
			done = "La facture est maintenant en prélèvement automatique."
		}
	case "paiement-en-ligne":
		on := c.PostForm("suspended") == "1"
		d.Form.SuspendReason, reasonField = c.PostForm("reason"), "reason-suspend"
		err = s.Payments.SetInvoicePaymentSuspended(ctx, t, id, on, d.Form.SuspendReason)
		done = "Le paiement en ligne de la facture est rétabli."
		if on {
			done = "Le paiement en ligne de la facture est suspendu."
		}
	default:
		s.notFound(c)
		return
	}
	var refused *payment.ChangeRefusedError
	switch {
	case errors.Is(err, payment.ErrNotFound):
		s.notFound(c)
	case errors.As(err, &refused):
		f := view.Flash{Kind: "error", Text: refused.Message}
		switch refused.Field {
		case "reason":
			f.Fields = []string{reasonField}
		case "status":
			f.Fields = []string{"status"}
		}
		s.renderInvoice(c, http.StatusUnprocessableEntity, id, d, &f)
	case err != nil:
		s.fail(c, err)
	default:
		s.staffFlash(c, done)
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/admin/factures/%d", id))
	}
}
