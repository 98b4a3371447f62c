package payment

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"portail/pkg/invoice"
)

// The staff's status changes follow the written rule: each case is applied
// to a real invoice, and the invoice and its audit entry are read back.
func TestStaffStatusChangeRules(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{})
	acc := e.addAccount(ten, "payeur@example.fr", "Payeur")
	cases := []struct {
		from, paidHow, to string
		ok                bool
	}{
		{"unpaid", "", "paid", true},
		{"unpaid", "", "treasury", true},
		{"unpaid", "", "cancelled", true},
		{"unpaid", "", "unpaid", false},
		{"treasury", "", "paid", true},
		{"treasury", "", "cancelled", true},
		{"treasury", "", "unpaid", true},
		{"paid", "elsewhere", "unpaid", true},
		{"paid", "online", "unpaid", false},
		{"paid", "elsewhere", "cancelled", false},
		{"paid", "elsewhere", "treasury", false},
		{"cancelled", "", "unpaid", true},
		{"cancelled", "", "paid", false},
		{"unpaid", "", "perdue", false},
	}
	for i, c := range cases {
		id := e.addInvoice(ten, acc, fmt.Sprintf("R-%02d", i), 1000, invoiceOpts{status: c.from})
		if c.paidHow == "online" {
			e.d.MustExec(`UPDATE invoices SET paid_how = 'online' WHERE id = $1`, id)
		}
		err := e.svc.SetInvoiceStatus(e.ctx, ten, id, invoice.Status(c.to), "  Motif du test  ")
		got := e.invoice(ten, id)
		audited := e.count(`SELECT count(*) FROM audit_log WHERE object_type = 'invoice' AND object_id = $1
			AND details->>'reason' = 'Motif du test' AND details->'status'->>'after' = $2`, fmt.Sprint(id), c.to)
		var refused *ChangeRefusedError
		switch {
		case c.ok && err != nil:
			t.Errorf("%s → %s: %v", c.from, c.to, err)
		case c.ok && (got.Status != c.to || audited != 1 || (c.to == "paid") != (got.PaidAt != nil) || (c.to == "paid") != (got.PaidHow == "elsewhere")):
			t.Errorf("%s → %s: invoice %+v, %d audit entries", c.from, c.to, got, audited)
		case !c.ok && (!errors.As(err, &refused) || refused.Message == ""):
			t.Errorf("%s → %s allowed: %v", c.from, c.to, err)
		case !c.ok && (got.Status != c.from || audited != 0):
			t.Errorf("%s → %s refused but changed: %+v, %d audit entries", c.from, c.to, got, audited)
		}
	}
	// Another commune's invoice is not found, and a reason is required.
	other := e.addTenant("autre", tenantOpts{})
	id := e.addInvoice(ten, acc, "R-OTHER", 1000)
	if err := e.svc.SetInvoiceStatus(e.ctx, other, id, invoice.StatusPaid, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another commune's invoice: %v", err)
	}
	var refused *ChangeRefusedError
	if err := e.svc.SetInvoiceDirectDebit(e.ctx, ten, id, true, " \n "); !errors.As(err, &refused) || refused.Field != "reason" {
		t.Errorf("no reason: %v", err)
	}
	if e.invoice(ten, id).Status != "unpaid" || e.count(`SELECT count(*) FROM invoices WHERE id = $1 AND direct_debit`, id) != 0 {
		t.Error("a refused change was made")
	}
}

// A staff change and a resident's payment of the same invoice, at the same
// moment: they serialise on the invoice's lock, so that either the payment
// starts and the status change is refused, or the status changes and the
// payment is refused — never an invoice sent to the treasury while PayFiP
// collects it.
func TestStaffChangeAndPaymentStartSerialise(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{})
	acc := e.addAccount(ten, "payeur@example.fr", "Payeur")
	for i := range 20 {
		id := e.addInvoice(ten, acc, fmt.Sprintf("S-%02d", i), 1500)
		var wg sync.WaitGroup
		var startErr, changeErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _, startErr = e.svc.Start(e.ctx, ten, acc, []int64{id})
		}()
		go func() {
			defer wg.Done()
			changeErr = e.svc.SetInvoiceStatus(e.ctx, ten, id, invoice.StatusTreasury, "Transmise en trésorerie")
		}()
		wg.Wait()
		pending := e.count(`SELECT count(*) FROM payment_invoices WHERE invoice_id = $1 AND status = 'pending'`, id)
		status := e.invoice(ten, id).Status
		var refusedChange *ChangeRefusedError
		var refusedStart *RefusedError
		switch {
		case startErr == nil && errors.As(changeErr, &refusedChange) && refusedChange.Message == ReasonPendingChange:
			if pending != 1 || status != "unpaid" {
				t.Fatalf("round %d: payment won, but %d pending and status %s", i, pending, status)
			}
		case changeErr == nil && errors.As(startErr, &refusedStart):
			if pending != 0 || status != "treasury" {
				t.Fatalf("round %d: change won, but %d pending and status %s", i, pending, status)
			}
		default:
			t.Fatalf("round %d: start %v, change %v (%d pending, %s)", i, startErr, changeErr, pending, status)
		}
	}
}
