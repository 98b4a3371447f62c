package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
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
		s.renderPaySelect(c, t, a.ID, ids, 1, []view.Flash{{Kind: "error", Text: refused.Reason}}, http.StatusConflict, nil)
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
		s.renderPaySelect(c, t, a.ID, ids, 1, []view.Flash{{Kind: "error", Text: refused.Reason}}, http.StatusConflict, nil)
	case errors.As(err, &unavailable):
		s.log.Warn("payfip unavailable", "tenant", t.Slug, "error", err)
		s.renderPaySelect(c, t, a.ID, ids, 1, []view.Flash{{Kind: "error", Text: unavailable.Message}}, http.StatusServiceUnavailable, nil)
	default:
		s.fail(c, err)
	}
}

type payResultData struct {
	// Own: the viewer is the resident who started the attempt. Anyone else
	// (another resident, an anonymous visitor) gets a neutral page.
	Own      bool
	SignedIn bool
	Attempt  *payment.Attempt
	Numbers  []string
	Paid     bool
	Pending  bool
	Classic  bool // the result is awaited from PayFiP's own call
	Retry    string
	Receipt  string
	Finished string
	// RefreshURL shows the attempt's state again (no JavaScript, no meta
	// refresh: the resident chooses when).
	RefreshURL string
}

// payReturnWS is urlredirect: PayFiP sends the browser back with the idOp;
// the result is asked to PayFiP (the only trusted answer). No session is
// needed: a cross-site return may come without cookies.
func (s *Server) payReturnWS(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	idOp, err := payfip.ParseNotification(c.Request)
	if err != nil {
		s.renderPayResult(c, t, nil, "", http.StatusBadRequest)
		return
	}
	a, _, err := s.Payments.ResolveWS(c.Request.Context(), t, idOp, payment.SourceReturn)
	s.afterResult(c, t, a, "/paiement/retour?"+url.Values{"idop": {idOp}}.Encode(), err)
}

// payReturnClassic is urlcl of the classic mode. PayFiP's server calls it
// with the result, then sends the browser to it with the same parameters,
// every one of them visible to the payer: only a call from PayFiP's
// networks is applied (payment.ReceiveClassic). Any other result, the
// payer's browser included, is recorded and sent on to the attempt's state
// (?refdet=… alone), which is all a browser is ever shown here.
func (s *Server) payReturnClassic(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	if err := c.Request.ParseForm(); err != nil {
		s.renderPayResult(c, t, nil, "", http.StatusBadRequest)
		return
	}
	params := c.Request.Form // query and body: PayFiP may use either method
	refdet := payfip.ClassicRefDet(params)
	if !payment.IsClassicResult(params) {
		s.classicState(c, t, refdet)
		return
	}
	call := payment.ClassicCall{Params: params, From: clientAddr(c)}
	if r := residentOf(c); r != nil {
		call.AccountID = r.Account.ID
	}
	a, _, err := s.Payments.ReceiveClassic(c.Request.Context(), t, call)
	switch {
	case errors.Is(err, payment.ErrUnverifiedSource):
		// Redirected, the parameters leave the address bar and the
		// history, and a refresh does not send them again.
		c.Redirect(http.StatusSeeOther, classicStateURL(refdet))
	case errors.Is(err, payment.ErrBadResult):
		s.renderPayResult(c, t, nil, "", http.StatusBadRequest)
	case err == nil, errors.Is(err, payment.ErrNotFound), errors.Is(err, payment.ErrMismatch), errors.Is(err, payment.ErrUntrusted):
		s.afterResult(c, t, a, classicStateURL(refdet), err)
	default:
		s.fail(c, err)
	}
}

// classicState shows the resident's own classic attempt named by refdet as
// it stands; anyone else gets the neutral page.
func (s *Server) classicState(c *gin.Context, t *tenant.Tenant, refdet string) {
	var a *payment.Attempt
	if r := residentOf(c); r != nil && refdet != "" {
		got, err := s.Payments.GetByRefDet(c.Request.Context(), t.ID, r.Account.ID, refdet)
		if err != nil && !errors.Is(err, payment.ErrNotFound) {
			s.fail(c, err)
			return
		}
		if got != nil {
			a = &got.Attempt
		}
	}
	s.renderPayResult(c, t, a, classicStateURL(refdet), http.StatusOK)
}

func classicStateURL(refdet string) string {
	if refdet == "" {
		return "/paiement/retour-classique"
	}
	return "/paiement/retour-classique?" + url.Values{"refdet": {refdet}}.Encode()
}

// clientAddr is the client IP as the rest of the server computes it: the
// direct peer, or X-Forwarded-For when the peer is a trusted proxy.
func clientAddr(c *gin.Context) netip.Addr {
	a, err := netip.ParseAddr(c.ClientIP())
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func (s *Server) afterResult(c *gin.Context, t *tenant.Tenant, a *payment.Attempt, refreshURL string, err error) {
	switch {
	case err == nil:
		s.renderPayResult(c, t, a, refreshURL, http.StatusOK)
	case errors.Is(err, payment.ErrNotFound), errors.Is(err, payment.ErrMismatch), errors.Is(err, payment.ErrUntrusted):
		s.log.Warn("payment result refused", "tenant", t.Slug, "error", err, "ip", c.ClientIP())
		s.renderPayResult(c, t, nil, "", http.StatusNotFound)
	default:
		// PayFiP unreachable: the attempt stays pending; reconciliation will settle it.
		s.log.Warn("payment result not known yet", "tenant", t.Slug, "error", err)
		s.renderPayResult(c, t, a, refreshURL, http.StatusOK)
	}
}

// renderPayResult shows attempt a to the resident who started it, and a
// neutral page (nothing about the attempt, not even whether it exists) to
// anyone else.
func (s *Server) renderPayResult(c *gin.Context, t *tenant.Tenant, a *payment.Attempt, refreshURL string, status int) {
	r := residentOf(c)
	d := payResultData{SignedIn: r != nil}
	if a != nil && r != nil && r.Account.ID == a.AccountID {
		d.Own, d.Attempt, d.RefreshURL = true, a, refreshURL
		d.Paid = a.Status == payment.StatusPaid
		d.Pending = a.Status == payment.StatusPending
		d.Classic = a.Mode == payfip.ModeClassic
		if full, err := s.Payments.Get(c.Request.Context(), t.ID, a.AccountID, a.ID); err == nil {
			d.Numbers = full.Numbers()
		}
		if d.Paid {
			d.Receipt = fmt.Sprintf("/paiements/%d/attestation", a.ID)
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
	page := pageParam(c)
	list, total, err := s.Payments.ListForAccount(c.Request.Context(), t.ID, a.ID, page, paymentsPerPage)
	if last := lastPage(total, paymentsPerPage); err == nil && page > last {
		page = last // past the end: the last page
		list, total, err = s.Payments.ListForAccount(c.Request.Context(), t.ID, a.ID, page, paymentsPerPage)
	}
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
