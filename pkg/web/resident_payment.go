package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/invoice"
	"portail/pkg/payfip"
	"portail/pkg/payment"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type payRow struct {
	Invoice   invoice.Invoice
	Selected  bool
	ToggleURL string
}

type paySelectData struct {
	Rows     []payRow
	Selected []int64
	Count    int
	Total    int64
}

// selectedIDs reads the repeated "facture" parameter (form or query).
func selectedIDs(values []string) []int64 {
	var ids []int64
	for _, v := range values {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func selectionURL(path string, ids []int64) string {
	q := url.Values{}
	for _, id := range ids {
		q.Add("facture", strconv.FormatInt(id, 10))
	}
	return path + "?" + q.Encode()
}

// payableInvoices are the account's unpaid invoices that can be paid now.
func (s *Server) payableInvoices(ctx context.Context, t *tenant.Tenant, accountID int64) ([]invoice.Invoice, error) {
	var out []invoice.Invoice
	for page := 1; ; page++ {
		list, total, err := s.Invoices.List(ctx, t.ID, accountID, invoice.Filter{Status: invoice.StatusUnpaid}, page, invoice.MaxPerPage)
		if err != nil {
			return nil, err
		}
		for _, inv := range list {
			if ok, _ := s.canPayNow(ctx, t, accountID, inv); ok {
				out = append(out, inv)
			}
		}
		if page*invoice.MaxPerPage >= total {
			return out, nil
		}
	}
}

// canPayNow adds to invoice.Payability what payments know: an attempt in
// progress, or the retry delay after a failed one.
func (s *Server) canPayNow(ctx context.Context, t *tenant.Tenant, accountID int64, inv invoice.Invoice) (bool, string) {
	if ok, reason := invoice.Payability(inv, t); !ok {
		return false, reason
	}
	if a, err := s.Payments.PendingFor(ctx, t.ID, accountID, inv.ID); err == nil && a != nil {
		return false, payment.ReasonPending
	}
	if at, wait := s.Payments.RetryAt(ctx, t.ID, accountID, inv.ID); wait {
		return false, payment.RetryReason(at, time.Now())
	}
	return true, ""
}

// paySelect is the selection page: a click on an invoice number toggles it
// (no JavaScript needed); the first column shows X on selected rows.
func (s *Server) paySelect(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	selected := selectedIDs(c.QueryArray("facture"))
	var flashes []view.Flash
	if toggle, err := strconv.ParseInt(c.Query("basculer"), 10, 64); err == nil {
		switch {
		case slices.Contains(selected, toggle):
			selected = slices.DeleteFunc(selected, func(id int64) bool { return id == toggle })
		case len(selected) >= 1 && !t.BatchAllowed:
			flashes = append(flashes, view.Flash{Kind: "error", Text: payment.ReasonBatchNotAllowed})
		case len(selected) >= t.BatchMax:
			flashes = append(flashes, view.Flash{Kind: "error", Text: fmt.Sprintf("Vous pouvez régler au plus %d factures en un seul paiement.", t.BatchMax)})
		default:
			selected = append(selected, toggle)
		}
	}
	s.renderPaySelect(c, t, a.ID, selected, flashes, http.StatusOK)
}

func (s *Server) renderPaySelect(c *gin.Context, t *tenant.Tenant, accountID int64, selected []int64, flashes []view.Flash, status int) {
	invs, err := s.payableInvoices(c.Request.Context(), t, accountID)
	if err != nil {
		s.fail(c, err)
		return
	}
	d := paySelectData{}
	for _, inv := range invs {
		sel := slices.Contains(selected, inv.ID)
		d.Rows = append(d.Rows, payRow{Invoice: inv, Selected: sel,
			ToggleURL: selectionURL("/paiement", selected) + "&basculer=" + strconv.FormatInt(inv.ID, 10)})
		if sel {
			d.Selected = append(d.Selected, inv.ID)
			d.Count++
			d.Total += inv.AmountCents
		}
	}
	p := s.page(c, "factures", "Payer mes factures", d)
	p.Flashes = append(p.Flashes, flashes...)
	if len(d.Rows) == 0 {
		p.Flashes = append(p.Flashes, view.Flash{Kind: "info", Text: "Aucune facture ne peut être réglée en ligne pour le moment."})
	}
	s.render(c, status, "resident/pay_select.html", p)
}

type payInfoData struct {
	IDs        []int64
	Numbers    []string
	Total      int64
	BackURL    string
	RetryDelay string
}

// payInfo is "Informations pour le paiement TIPI" before leaving for PayFiP.
func (s *Server) payInfo(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	ids := selectedIDs(c.QueryArray("facture"))
	d := payInfoData{BackURL: selectionURL("/paiement", ids), RetryDelay: frDuration(t.RetryDelay())}
	for _, id := range ids {
		inv, err := s.Invoices.Get(c.Request.Context(), t.ID, a.ID, id)
		if errors.Is(err, invoice.ErrNotFound) {
			s.notFound(c)
			return
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		d.IDs = append(d.IDs, id)
		d.Numbers = append(d.Numbers, inv.Number)
		d.Total += inv.AmountCents
	}
	if len(ids) == 0 {
		c.Redirect(http.StatusSeeOther, "/paiement")
		return
	}
	s.render(c, http.StatusOK, "resident/pay_info.html", s.page(c, "factures", "Informations pour le paiement TIPI", d))
}

// payStart stores the attempt, then sends the browser to PayFiP in the
// same window (no pop-up to be blocked).
func (s *Server) payStart(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	ids := selectedIDs(c.PostFormArray("facture"))
	_, redirect, err := s.Payments.Start(c.Request.Context(), t, a.ID, ids)
	var refused *payment.RefusedError
	var unavailable *payment.UnavailableError
	switch {
	case err == nil:
		c.Redirect(http.StatusSeeOther, redirect)
	case errors.Is(err, payment.ErrNotFound):
		s.notFound(c)
	case errors.As(err, &refused):
		s.renderPaySelect(c, t, a.ID, ids, []view.Flash{{Kind: "error", Text: refused.Reason}}, http.StatusConflict)
	case errors.As(err, &unavailable):
		s.log.Warn("payfip unavailable", "tenant", t.Slug, "error", err)
		s.renderPaySelect(c, t, a.ID, ids, []view.Flash{{Kind: "error", Text: unavailable.Message}}, http.StatusServiceUnavailable)
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
}

// payments is "Mes paiements": the resident's history.
func (s *Server) payments(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	a := residentOf(c).Account
	list, err := s.Payments.ListForAccount(c.Request.Context(), t.ID, a.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "resident/payments.html", s.page(c, "factures", "Mes paiements", paymentsData{Payments: list}))
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
