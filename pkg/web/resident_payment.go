package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/payfip"
	"portail/pkg/payment"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type payInfoData struct {
	IDs        []int64
	Numbers    []string
	Total      int64
	BackURL    string
	RetryDelay string
}

// payInfo is "Informations pour le paiement TIPI" before leaving for
// PayFiP. The selection is checked by Start's rules first, so that a
// refusal comes before the resident leaves, not after.
func (s *Server) payInfo(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	ids := selectedIDs(c.QueryArray("facture"), payment.BatchLimit(t)+1)
	if len(ids) == 0 {
		c.Redirect(http.StatusSeeOther, "/paiement")
		return
	}
	invs, err := s.Payments.Check(c.Request.Context(), t, a.ID, ids)
	var refused *payment.RefusedError
	switch {
	case errors.Is(err, payment.ErrNotFound):
		s.notFound(c)
		return
	case errors.As(err, &refused):
		s.renderPaySelect(c, t, a.ID, ids, 1, []view.Flash{{Kind: "error", Text: refused.Reason}}, http.StatusConflict)
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	d := payInfoData{BackURL: selectionURL(ids, 0), RetryDelay: frDuration(t.RetryDelay())}
	for _, inv := range invs {
		d.IDs = append(d.IDs, inv.ID)
		d.Numbers = append(d.Numbers, inv.Number)
		d.Total += inv.AmountCents
	}
	s.render(c, http.StatusOK, "resident/pay_info.html", s.page(c, "factures", "Informations pour le paiement TIPI", d))
}

// payStart stores the attempt, then sends the browser to PayFiP in the
// same window (no pop-up to be blocked).
func (s *Server) payStart(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	ids := selectedIDs(c.PostFormArray("facture"), payment.BatchLimit(t)+1)
	_, redirect, err := s.Payments.Start(c.Request.Context(), t, a.ID, ids)
	var refused *payment.RefusedError
	var unavailable *payment.UnavailableError
	switch {
	case err == nil:
		c.Redirect(http.StatusSeeOther, redirect)
	case errors.Is(err, payment.ErrNotFound):
		s.notFound(c)
	case errors.As(err, &refused):
		s.renderPaySelect(c, t, a.ID, ids, 1, []view.Flash{{Kind: "error", Text: refused.Reason}}, http.StatusConflict)
	case errors.As(err, &unavailable):
		s.log.Warn("payfip unavailable", "tenant", t.Slug, "error", err)
		s.renderPaySelect(c, t, a.ID, ids, 1, []view.Flash{{Kind: "error", Text: unavailable.Message}}, http.StatusServiceUnavailable)
	default:
		s.fail(c, err)
	}
}

type payResultData struct {
	Known    bool
	Own      bool
	Attempt  *payment.Attempt
	Numbers  []string
	Paid     bool
	Pending  bool
	Retry    string
	Receipt  string
	Finished string
}

// payReturnWS is urlredirect: PayFiP sends the browser back with the idOp;
// the result is asked to PayFiP (the only trusted answer). No session is
// needed: a cross-site return may come without cookies.
func (s *Server) payReturnWS(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	idOp, err := payfip.ParseNotification(c.Request)
	if err != nil {
		s.renderPayResult(c, t, nil, http.StatusBadRequest)
		return
	}
	a, _, err := s.Payments.ResolveWS(c.Request.Context(), t, idOp, payment.SourceReturn)
	s.afterResult(c, t, a, err)
}

// payReturnClassic is urlcl of the classic mode: PayFiP calls it
// server-side, then sends the browser to it, with the result in the query.
func (s *Server) payReturnClassic(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	values := c.Request.URL.Query()
	if c.Request.Method == http.MethodPost {
		c.Request.ParseForm()
		values = c.Request.Form
	}
	res, err := payfip.ParseClassicCallback(values)
	if err != nil {
		s.renderPayResult(c, t, nil, http.StatusBadRequest)
		return
	}
	source := payment.SourceCallback
	if c.GetHeader("Sec-Fetch-Mode") == "navigate" {
		source = payment.SourceReturn
	}
	a, _, err := s.Payments.ApplyResult(c.Request.Context(), t, res, source)
	s.afterResult(c, t, a, err)
}

func (s *Server) afterResult(c *gin.Context, t *tenant.Tenant, a *payment.Attempt, err error) {
	switch {
	case err == nil:
		s.renderPayResult(c, t, a, http.StatusOK)
	case errors.Is(err, payment.ErrNotFound), errors.Is(err, payment.ErrMismatch), errors.Is(err, payment.ErrUntrusted):
		s.log.Warn("payment result refused", "tenant", t.Slug, "error", err, "ip", c.ClientIP())
		s.renderPayResult(c, t, nil, http.StatusNotFound)
	default:
		// PayFiP unreachable: the attempt stays pending; reconciliation will settle it.
		s.log.Warn("payment result not known yet", "tenant", t.Slug, "error", err)
		s.renderPayResult(c, t, a, http.StatusOK)
	}
}

func (s *Server) renderPayResult(c *gin.Context, t *tenant.Tenant, a *payment.Attempt, status int) {
	d := payResultData{Attempt: a, Known: a != nil}
	r := residentOf(c)
	if a != nil {
		d.Own = r != nil && r.Account.ID == a.AccountID
		d.Paid = a.Status == payment.StatusPaid
		d.Pending = a.Status == payment.StatusPending
		if d.Own {
			if full, err := s.Payments.Get(c.Request.Context(), t.ID, a.AccountID, a.ID); err == nil {
				d.Numbers = full.Numbers()
			}
			if d.Paid {
				d.Receipt = fmt.Sprintf("/paiements/%d/attestation", a.ID)
			}
		}
		if !d.Paid && !d.Pending && a.ResolvedAt != nil && (a.Mode == payfip.ModeClassic || a.IdOp != "") {
			if at := a.ResolvedAt.Add(t.RetryDelay()); at.After(time.Now()) {
				d.Retry = payment.RetryReason(at, time.Now())
			}
		}
		if a.PaidAt != nil {
			d.Finished = payment.FormatDateTime(*a.PaidAt)
		}
	}
	p := s.page(c, "factures", "Résultat du paiement", d)
	p.Viewer = nil
	if r != nil {
		p.Viewer = &view.Viewer{DisplayName: r.Account.DisplayName}
	}
	c.Header("Cache-Control", "no-store")
	s.render(c, status, "resident/pay_result.html", p)
}

// payNotification is urlnotif: PayFiP's server POSTs the idOp. The answer
// is asked to PayFiP; replays change nothing.
func (s *Server) payNotification(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	idOp, err := payfip.ParseNotification(c.Request)
	if err != nil {
		c.String(http.StatusBadRequest, "bad notification\n")
		return
	}
	if _, _, err := s.Payments.ResolveWS(c.Request.Context(), t, idOp, payment.SourceNotification); err != nil {
		if errors.Is(err, payment.ErrNotFound) || errors.Is(err, payment.ErrMismatch) {
			s.log.Warn("payment notification refused", "tenant", t.Slug, "error", err, "ip", c.ClientIP())
			c.String(http.StatusNotFound, "unknown payment\n")
			return
		}
		// Not known yet or PayFiP unreachable: reconciliation will settle it.
		s.log.Warn("payment notification not resolved", "tenant", t.Slug, "error", err)
		c.String(http.StatusAccepted, "pending\n")
		return
	}
	c.String(http.StatusOK, "ok\n")
}

type paymentsData struct {
	Payments []payment.AttemptWithInvoices
	Pager    pager
}

// paymentsPerPage is the length of a page of "Mes paiements".
const paymentsPerPage = 20

// payments is "Mes paiements": the resident's history, most recent first,
// paginated.
func (s *Server) payments(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	page, _ := strconv.Atoi(c.Query("page"))
	page = max(page, 1)
	list, total, err := s.Payments.ListForAccount(c.Request.Context(), t.ID, a.ID, page, paymentsPerPage)
	if err != nil {
		s.fail(c, err)
		return
	}
	d := paymentsData{Payments: list, Pager: newPager(page, total, paymentsPerPage, func(n int) string {
		return "/paiements?page=" + strconv.Itoa(n)
	})}
	s.render(c, http.StatusOK, "resident/payments.html", s.page(c, "factures", "Mes paiements", d))
}

// paymentReceipt is the "attestation de paiement" PDF of a paid attempt.
func (s *Server) paymentReceipt(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	id, ok := invoiceID(c)
	if !ok {
		s.notFound(c)
		return
	}
	pdf, err := s.Payments.Receipt(c.Request.Context(), t, a.ID, id)
	if errors.Is(err, payment.ErrNotFound) {
		s.notFound(c)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Disposition", contentDisposition(fmt.Sprintf("attestation-paiement-%d.pdf", id)))
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/pdf", pdf)
}
