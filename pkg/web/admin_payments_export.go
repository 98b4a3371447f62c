package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/csvexport"
	"portail/pkg/paris"
	"portail/pkg/payment"
	"portail/pkg/tenant"
)

// paymentsExportHeader are the columns of the payments CSV, for
// reconciliation with the billing software.
var paymentsExportHeader = []string{
	"Date", "Heure", "Référence de paiement", "Identifiant PayFiP (idOp)", "Numéro d'autorisation",
	"Facture", "Référence redevable", "Redevable", "Montant", "Montant total du paiement",
	"Moyen de paiement", "Mode PayFiP", "Résultat", "Code résultat PayFiP", "Remboursement à faire",
}

// adminPaymentsExport streams the attempts of the search's filters as CSV
// (pkg/csvexport: UTF-8 with BOM, ';', decimal comma): one line per
// invoice of each attempt, since the billing software reconciles
// invoices — an attempt paying three invoices gives three lines sharing its
// references, each with that invoice's share ("Montant") and the attempt's
// total. The date and time are PayFiP's (dattrans, heurtrans) once it
// answered, else when the attempt started, in Paris.
func (s *Server) adminPaymentsExport(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	l := readList(c, payment.Sorts(), payment.DefaultSort)
	f, q := readPaymentFilters(l)
	if f.Invalid != "" {
		s.adminPayments(c) // the list shows the filter's error
		return
	}
	now := time.Now().In(paris.Location)
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, csvexport.Filename("paiements", t.Slug, now)))
	c.Status(http.StatusOK)
	w, err := csvexport.New(c.Writer, paymentsExportHeader...)
	if err != nil {
		s.log.Warn("payments export", "error", err)
		return
	}
	rows := 0
	err = s.Payments.Each(c.Request.Context(), t.ID, q, func(r payment.Row) error {
		day, hour := paymentDayHour(r.Attempt)
		numbers, amounts := []string(r.InvoiceNumbers), []int64(r.InvoiceAmounts)
		if len(numbers) == 0 {
			numbers, amounts = []string{""}, []int64{r.AmountCents}
		}
		refund := ""
		if r.RefundNeeded {
			refund = csvexport.Amount(r.RefundCents)
		}
		for i, number := range numbers {
			share := r.AmountCents
			if i < len(amounts) {
				share = amounts[i]
			}
			if err := w.Write(day, hour, r.RefDet, r.IdOp, r.NumAuto, number, r.PayerRef, r.PayerName,
				csvexport.Amount(share), csvexport.Amount(r.AmountCents), paymentMeans(r.ResultTrans), paymentModeLabel(r.Mode),
				paymentStatusLabel(r.Status), r.ResultTrans, refund); err != nil {
				return err
			}
		}
		// Streams to the client as it goes: memory stays one row.
		if rows++; rows%1000 == 0 {
			return w.Flush()
		}
		return nil
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		// The header is sent: the truncated file is all the client gets.
		s.log.Warn("payments export interrupted", "tenant", t.Slug, "error", err)
		c.Error(err)
	}
}

// paymentDayHour is when an attempt happened for the treasurer: PayFiP's
// dattrans (DDMMYYYY) and heurtrans (HHMM), Paris time, once it answered;
// else the attempt's start, in Paris.
func paymentDayHour(a payment.Attempt) (string, string) {
	if len(a.DatTrans) == 8 && len(a.HeurTrans) == 4 {
		return a.DatTrans[:2] + "/" + a.DatTrans[2:4] + "/" + a.DatTrans[4:], a.HeurTrans[:2] + ":" + a.HeurTrans[2:]
	}
	at := a.CreatedAt.In(paris.Location)
	return at.Format("02/01/2006"), at.Format("15:04")
}
