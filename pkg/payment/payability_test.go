package payment

import (
	"errors"
	"fmt"
	"testing"

	"portail/pkg/invoice"
	"portail/pkg/tenant"
)

// reload reads tenant id again after its settings were changed in SQL.
func (e *env) reload(id int64) *tenant.Tenant {
	e.t.Helper()
	t, err := tenant.NewStore(e.d).ByID(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

// Every case of the payability rule, each judged by the functions the pages
// use (the detail's Verdict, the selection's Offers and Judged) and enforced
// by Start: they must agree, Start refusing with the very reason shown.
func TestPayabilityPagesAndStartAgree(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{batchAllowed: true, batchMax: 10})
	suspended := e.addTenant("suspendue", tenantOpts{numcli: "004201", suspended: true})
	closed := e.addTenant("fermee", tenantOpts{numcli: "004202"})
	closedT := *closed
	closedT.Status = "suspended" // the commune's portal is closed
	capped := e.addTenant("plafond", tenantOpts{numcli: "004203"})
	if _, err := e.d.Exec(`UPDATE tenants SET payfip_max_cents = 50000 WHERE id = $1`, capped.ID); err != nil {
		t.Fatal(err)
	}
	capped = e.reload(capped.ID)
	uncapped := e.addTenant("sansplafond", tenantOpts{numcli: "004204"})
	if _, err := e.d.Exec(`UPDATE tenants SET payfip_max_cents = 0 WHERE id = $1`, uncapped.ID); err != nil {
		t.Fatal(err)
	}
	uncapped = e.reload(uncapped.ID)

	const (
		below   = "Le montant de cette facture est inférieur à 1,00 € : elle ne peut pas être réglée en ligne."
		above   = "Le montant de cette facture dépasse 500,00 € : elle ne peut pas être réglée en ligne."
		ceiling = "Le montant de cette facture dépasse 100 000,00 € : elle ne peut pas être réglée en ligne."
		retry   = "Vous pourrez effectuer une nouvelle tentative à partir de 15h42." // 13:41:20 + 2 h, rounded up
	)
	type kase struct {
		name   string
		t      *tenant.Tenant
		cents  int64
		opts   invoiceOpts
		before func(tn *tenant.Tenant, acc, inv int64) // attempts, markers
		reason string                                  // "" = payable
		listed bool                                    // offered on the selection page (payable, or refused by its attempts only)
	}
	cases := []kase{
		{name: "payable", t: ten, cents: 24311, listed: true},
		{name: "paid", t: ten, cents: 24311, opts: invoiceOpts{status: "paid"}, reason: invoice.ReasonPaid},
		{name: "treasury", t: ten, cents: 24311, opts: invoiceOpts{status: "treasury"}, reason: invoice.ReasonTreasury},
		{name: "cancelled", t: ten, cents: 24311, opts: invoiceOpts{status: "cancelled"}, reason: invoice.ReasonCancelled},
		{name: "direct debit", t: ten, cents: 24311, opts: invoiceOpts{directDebit: true}, reason: invoice.ReasonDirectDebit},
		{name: "suspended invoice", t: ten, cents: 24311, opts: invoiceOpts{suspended: true}, reason: invoice.ReasonSuspended},
		{name: "commune payments suspended", t: suspended, cents: 24311, reason: invoice.ReasonSuspended},
		{name: "paid, in a suspended commune", t: suspended, cents: 24311, opts: invoiceOpts{status: "paid"}, reason: invoice.ReasonPaid},
		{name: "commune closed", t: &closedT, cents: 24311, reason: invoice.ReasonUnavailable},
		{name: "below minimum", t: ten, cents: 99, reason: below},
		{name: "zero", t: ten, cents: 0, reason: below},
		{name: "above the commune's maximum", t: capped, cents: 50001, reason: above},
		{name: "at the commune's maximum", t: capped, cents: 50000, listed: true},
		{name: "above PayFiP's ceiling, no commune maximum", t: uncapped, cents: 10000001, reason: ceiling},
		{name: "pending attempt", t: ten, cents: 24311, reason: ReasonPending, listed: true,
			before: func(tn *tenant.Tenant, acc, inv int64) { e.start(tn, acc, inv) }},
		{name: "within retry delay", t: ten, cents: 24311, reason: retry, listed: true,
			before: func(tn *tenant.Tenant, acc, inv int64) {
				a, redirect := e.start(tn, acc, inv)
				e.pay(redirect, "Refuser le paiement", true)
				if got := e.waitResolved(tn, a.ID); got.Status != StatusRefused {
					t.Fatalf("attempt %+v", got)
				}
			}},
		{name: "declared paid by the resident", t: ten, cents: 24311, listed: true,
			before: func(tn *tenant.Tenant, acc, inv int64) {
				if err := (&invoice.Store{DB: e.d}).MarkDeclaredPaid(e.ctx, tn.ID, acc, inv, true); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			acc := e.addAccount(c.t, fmt.Sprintf("payeur%d@%s.fr", i, c.t.Slug), fmt.Sprintf("Payeur %d", i))
			// A neighbour's payable invoice: pages list only the account's own.
			e.addInvoice(c.t, e.addAccount(c.t, fmt.Sprintf("voisin%d@%s.fr", i, c.t.Slug), "Voisin"), fmt.Sprintf("V-%d", i), 1000)
			inv := e.addInvoice(c.t, acc, fmt.Sprintf("C-%d", i), c.cents, c.opts)
			if c.before != nil {
				c.before(c.t, acc, inv)
			}

			// The invoice page.
			v, err := e.svc.Verdict(e.ctx, c.t, acc, inv)
			if err != nil {
				t.Fatal(err)
			}
			if v.Payable != (c.reason == "") || v.Reason != c.reason {
				t.Fatalf("Verdict: %+v, want reason %q", v, c.reason)
			}
			// The selection page: its rows, and the selection's verdicts.
			offers, total, err := e.svc.Offers(e.ctx, c.t, acc, 1, 20)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1, false: 0}[c.listed]; len(offers) != want || total != want {
				t.Fatalf("Offers: %d rows (total %d), want %d", len(offers), total, want)
			}
			if c.listed && (offers[0].ID != inv || offers[0].Verdict != v) {
				t.Fatalf("Offers: %+v, want %+v", offers[0], v)
			}
			judged, err := e.svc.Judged(e.ctx, c.t, acc, []int64{inv})
			if err != nil || len(judged) != 1 || judged[0].Verdict != v {
				t.Fatalf("Judged: %+v %v, want %+v", judged, err, v)
			}
			// Start, last: it enforces the same verdict.
			_, checkErr := e.svc.Check(e.ctx, c.t, acc, []int64{inv})
			a, _, startErr := e.svc.Start(e.ctx, c.t, acc, []int64{inv})
			if c.reason == "" {
				if startErr != nil || a == nil || checkErr != nil {
					t.Fatalf("Start refused a payable invoice: %v (Check: %v)", startErr, checkErr)
				}
				return
			}
			for name, err := range map[string]error{"Start": startErr, "Check": checkErr} {
				var r *RefusedError
				if !errors.As(err, &r) {
					t.Fatalf("%s: want a refusal, got %v", name, err)
				}
				if r.Reason != v.Reason || !r.RetryAt.Equal(v.RetryAt) {
					t.Fatalf("%s refused with %q (retry %v); the page says %q (retry %v)", name, r.Reason, r.RetryAt, v.Reason, v.RetryAt)
				}
			}
		})
	}
	if n := e.count(`SELECT count(*) FROM payments WHERE status = 'pending' AND tenant_id = $1`, ten.ID); n != 3 {
		t.Fatalf("%d pending attempts, want those of the pending, payable and declared-paid cases", n)
	}
}

// In a batch each invoice is judged by the same rule, named; what refuses
// the whole commune is said once; the amount limits apply to the total.
func TestBatchJudgedByTheSameRule(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{batchAllowed: true, batchMax: 5})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	ok := e.addInvoice(ten, acc, "OK-1", 24311)
	small := e.addInvoice(ten, acc, "LO-1", 50) // under 1 €: may ride along
	busy := e.addInvoice(ten, acc, "BU-1", 1000)
	e.start(ten, acc, busy)
	if r := e.refused(ten, acc, ok, busy); r.Reason != "Facture BU-1 : "+ReasonPending {
		t.Fatalf("reason %q", r.Reason)
	}
	if _, err := e.svc.Check(e.ctx, ten, acc, []int64{ok, small}); err != nil {
		t.Fatalf("an invoice under 1 € alongside another: %v", err)
	}
	susp := *ten
	susp.PaymentsSuspended = true
	if r := e.refused(&susp, acc, ok, small); r.Reason != invoice.ReasonSuspended {
		t.Fatalf("reason %q", r.Reason)
	}
	if offers, total, err := e.svc.Offers(e.ctx, &susp, acc, 1, 20); err != nil || total != 0 || len(offers) != 0 {
		t.Fatalf("offers of a suspended commune: %d %v", total, err)
	}
	a, _ := e.start(ten, acc, ok, small)
	if a.AmountCents != 24361 {
		t.Fatalf("amount %d", a.AmountCents)
	}
}
