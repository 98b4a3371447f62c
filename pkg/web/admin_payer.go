package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"portail/pkg/account"
	"portail/pkg/invoice"
	"portail/pkg/payment"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// payerAttempts is how many of a payer's latest payment attempts their
// page shows.
const payerAttempts = 20

type payerData struct {
	Payer    *account.Account
	State    string
	Invoices invoiceList
	Attempts []payment.Row
	// AttemptsTotal counts every attempt of the payer.
	AttemptsTotal int
	History       []event
}

// adminPayerID reads :id; anything else answers 404.
func (s *Server) adminPayerID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(c)
		return 0, false
	}
	return id, true
}

// adminPayer is a payer's page: identity, account state, paperless choice,
// their invoices (the table of "Factures", sortable and paginated here),
// their latest payment attempts, what happened to the account, and the
// staff's actions on it.
func (s *Server) adminPayer(c *gin.Context) {
	id, ok := s.adminPayerID(c)
	if !ok {
		return
	}
	s.renderPayer(c, http.StatusOK, id, nil)
}

func (s *Server) renderPayer(c *gin.Context, status int, id int64, problem *view.Flash) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	a, err := s.Accounts.Get(ctx, t.ID, id)
	if errors.Is(err, account.ErrNotFound) {
		s.notFound(c)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	d := payerData{Payer: a, State: accountStatusLabel(a.Status)}
	l := readList(c, invoice.Sorts(), invoice.DefaultSort)
	if d.Invoices, err = s.searchInvoiceList(c, t.ID, l, invoice.Query{AccountID: a.ID}, false); err != nil {
		s.fail(c, err)
		return
	}
	d.Attempts, d.AttemptsTotal, err = s.Payments.Search(ctx, t.ID, payment.Query{AccountID: a.ID, PerPage: payerAttempts})
	if err != nil {
		s.fail(c, err)
		return
	}
	entries, err := s.Accounts.History(ctx, t.ID, a.ID, historyLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	names, err := s.staffNames(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	for _, e := range entries {
		if e.Action == "login.ok" || e.Action == "login.failed" {
			continue // the resident's logins would drown the rest
		}
		ev := event{At: e.At, Who: actorLabel(e.ActorKind, e.ActorID, names)}
		ev.What, ev.Reason = auditEventText(e)
		d.History = append(d.History, ev)
	}
	slices.Reverse(d.History) // oldest first, as an invoice's
	p := s.staffPage(c, "redevables", a.DisplayName, d)
	if problem != nil {
		p.Flashes = append(p.Flashes, *problem)
	}
	s.render(c, status, "admin/payer.html", p)
}

// adminPayerActivation resends the activation email of a payer whose
// account is not activated yet (the resident's own activation email).
func (s *Server) adminPayerActivation(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	id, ok := s.adminPayerID(c)
	if !ok {
		return
	}
	err := s.Accounts.ResendActivation(c.Request.Context(), t, id)
	var msg string
	switch {
	case errors.Is(err, account.ErrNotFound):
		s.notFound(c)
		return
	case errors.Is(err, account.ErrAlreadyActive):
		msg = "Ce compte est déjà activé : il n'y a pas d'email d'activation à renvoyer. Le redevable peut utiliser « Mot de passe oublié ? »."
	case errors.Is(err, account.ErrAccountInactive):
		msg = "Ce compte est désactivé : réactivez-le avant de renvoyer l'email d'activation."
	case errors.Is(err, account.ErrTooManyRequests):
		msg = "Trop d'emails d'activation ont été envoyés à cette adresse dans l'heure. Réessayez plus tard."
	case err != nil:
		s.fail(c, err)
		return
	default:
		a, err := s.Accounts.Get(c.Request.Context(), t.ID, id)
		if err != nil {
			s.fail(c, err)
			return
		}
		s.staffFlash(c, "L'email d'activation a été renvoyé à "+a.Email+".")
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/admin/redevables/%d", id))
		return
	}
	s.renderPayer(c, http.StatusUnprocessableEntity, id, &view.Flash{Kind: "error", Text: msg})
}

// adminPayerState disables or enables a payer's account.
func (s *Server) adminPayerState(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	id, ok := s.adminPayerID(c)
	if !ok {
		return
	}
	var disable bool
	switch c.PostForm("action") {
	case "disable":
		disable = true
	case "enable":
	default:
		s.renderPayer(c, http.StatusUnprocessableEntity, id, &view.Flash{Kind: "error", Text: "Action inconnue."})
		return
	}
	_, after, err := s.Accounts.SetDisabled(c.Request.Context(), t, id, disable)
	switch {
	case errors.Is(err, account.ErrNotFound):
		s.notFound(c)
	case errors.Is(err, account.ErrAccountClosed):
		s.renderPayer(c, http.StatusUnprocessableEntity, id, &view.Flash{Kind: "error",
			Text: "Ce compte a été fermé : seul un nouvel import de ce redevable le rouvre."})
	case errors.Is(err, account.ErrStatusUnchanged):
		msg := "Ce compte n'est pas désactivé."
		if disable {
			msg = "Ce compte est déjà désactivé."
		}
		s.renderPayer(c, http.StatusUnprocessableEntity, id, &view.Flash{Kind: "error", Text: msg})
	case err != nil:
		s.fail(c, err)
	default:
		msg := "Le compte est réactivé (état : " + accountStatusLabel(after) + ")."
		if disable {
			msg = "Le compte est désactivé : le redevable ne peut plus se connecter et ses sessions ouvertes sont fermées."
		}
		s.staffFlash(c, msg)
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/admin/redevables/%d", id))
	}
}
