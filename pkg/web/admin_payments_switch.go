package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type paymentsSwitchData struct {
	Suspended bool
	Version   int64
}

// adminPaymentsSwitch is the confirmation step of "suspend (or resume)
// every online payment of the commune".
func (s *Server) adminPaymentsSwitch(c *gin.Context) {
	t, err := s.freshTenant(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.renderPaymentsSwitch(c, http.StatusOK, t, nil)
}

func (s *Server) renderPaymentsSwitch(c *gin.Context, status int, t *tenant.Tenant, flashes []view.Flash) {
	p := s.staffPage(c, "parametres", "Paiements en ligne", paymentsSwitchData{Suspended: t.PaymentsSuspended, Version: t.Version})
	p.Tenant = t
	p.Flashes = append(p.Flashes, flashes...)
	s.render(c, status, "admin/payments_switch.html", p)
}

// adminPaymentsSwitchSave suspends (suspend=1) or resumes (suspend=0) every
// online payment of the commune; residents then read "Le paiement a été
// temporairement suspendu." on every invoice.
func (s *Server) adminPaymentsSwitchSave(c *gin.Context) {
	t, err := s.freshTenant(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	next := t.Settings()
	switch c.PostForm("suspend") {
	case "1":
		next.Payments.Suspended = true
	case "0":
		next.Payments.Suspended = false
	default:
		s.renderPaymentsSwitch(c, http.StatusUnprocessableEntity, t, []view.Flash{{Kind: "error", Text: "Action inconnue."}})
		return
	}
	_, err = s.TenantService.Update(c.Request.Context(), t.ID, formVersion(c), next, tenant.GroupPayments)
	if flashes, ok := settingsRefusal(err); ok {
		s.renderPaymentsSwitch(c, http.StatusConflict, t, flashes)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	msg := "Les paiements en ligne sont rétablis pour toutes les factures de la commune."
	if next.Payments.Suspended {
		msg = "Les paiements en ligne sont suspendus : les redevables lisent « Le paiement a été temporairement suspendu. »"
	}
	s.staffFlash(c, msg)
	c.Redirect(http.StatusSeeOther, "/admin/parametres")
}
