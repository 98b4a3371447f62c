package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"portail/pkg/audit"
	"portail/pkg/payment"
	"portail/pkg/tenant"
)

// paymentEventsShown bounds the history of one attempt on its page.
const paymentEventsShown = 100

// paymentEvent is an entry of an attempt's history.
type paymentEvent struct {
	audit.Entry
	Label string
	// Unverified: a classic result that did not come from PayFiP's
	// networks, refused and kept for staff: its claimed parameters.
	Unverified bool
	Params     string
}

// paymentEventLabels name the audit actions of an attempt.
var paymentEventLabels = map[string]string{
	"payment.started":                   "Paiement commencé",
	"payment.paid":                      "Paiement accepté",
	"payment.refused":                   "Paiement refusé",
	"payment.cancelled":                 "Paiement abandonné",
	"payment.expired":                   "Paiement non abouti",
	"payment.error":                     "Erreur technique",
	"payment.classic_result_unverified": "Résultat refusé : source non vérifiée",
	"payment.late_paid_result":          "Paiement accepté reçu après la clôture de la tentative",
}

type paymentData struct {
	*payment.Detail
	StatusLabel, Means, Mode string
	Events                   []paymentEvent
}

// adminPayment is one attempt as staff see it: PayFiP's data (idOp,
// numauto, dattrans and heurtrans, resultrans), the invoices it covers,
// a refund to make, and its history, including the classic results
// refused because they did not come from PayFiP.
func (s *Server) adminPayment(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	ctx := c.Request.Context()
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(c)
		return
	}
	p, err := s.Payments.GetInCommune(ctx, t.ID, id)
	if errors.Is(err, payment.ErrNotFound) {
		s.notFound(c)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	d := paymentData{Detail: p, StatusLabel: paymentStatusLabel(p.Status), Means: paymentMeans(p.ResultTrans), Mode: paymentModeLabel(p.Mode)}
	entries, _, err := audit.Search(ctx, s.DB, t.ID, audit.Filter{ObjectType: audit.ObjectPayment, ObjectID: strconv.FormatInt(id, 10), Sort: "at"},
		1, paymentEventsShown)
	if err != nil {
		s.fail(c, err)
		return
	}
	for _, e := range entries {
		ev := paymentEvent{Entry: e, Label: paymentEventLabels[e.Action]}
		if ev.Label == "" {
			ev.Label = e.Action
		}
		if e.Action == "payment.classic_result_unverified" {
			var details struct {
				Params map[string][]string `json:"params"`
			}
			if json.Unmarshal(e.Details, &details) == nil {
				ev.Unverified, ev.Params = true, formatParams(details.Params)
			}
		}
		d.Events = append(d.Events, ev)
	}
	s.render(c, http.StatusOK, "admin/payment.html", s.staffPage(c, "paiements", fmt.Sprintf("Paiement %s", p.RefDet), d))
}

// formatParams writes a request's claimed parameters as "k=v, k=v".
func formatParams(params map[string][]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := ""
	for _, k := range keys {
		for _, v := range params[k] {
			if out != "" {
				out += ", "
			}
			out += k + "=" + v
		}
	}
	return out
}
