package payment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"portail/pkg/invoice"
	"portail/pkg/jobs"
	"portail/pkg/mail"
	"portail/pkg/payfip"
	"portail/pkg/payfip/sim"
	"portail/pkg/tenant"
	"portail/templates"
)

func TestWSHappyPath(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)

	a, redirect := e.start(ten, acc, inv)
	if !strings.HasPrefix(redirect, e.payfip.URL+"/tpa/paiementws.web?idop=") || a.IdOp == "" {
		t.Fatalf("redirect %q, idOp %q", redirect, a.IdOp)
	}
	// Stored, pending, with its idOp, before the browser leaves.
	stored := e.attempt(ten, a.ID)
	if stored.Status != StatusPending || stored.IdOp != a.IdOp || stored.AmountCents != 24311 || stored.Mode != payfip.ModeWS {
		t.Fatalf("stored attempt: %+v", stored)
	}
	if v, err := e.svc.Verdict(e.ctx, ten, acc, inv); err != nil || v.Payable || v.Reason != ReasonPending {
		t.Fatalf("verdict while pending: %+v, %v", v, err)
	}
	sp, ok := e.sim.Payment(a.IdOp)
	if !ok || sp.Montant != 24311 || sp.NumCli != "004200" || sp.Mel != "support@sistec.fr" ||
		sp.Objet != "2017 020 002059" || sp.RefDet != a.RefDet || sp.Exer != "2026" ||
		sp.URLNotif != e.portal.URL+"/sistec/paiement/notification" || sp.URLRedirect != e.portal.URL+"/sistec/paiement/retour" {
		t.Fatalf("PayFiP got %+v", sp)
	}

	resp := e.pay(redirect, "Payer par carte bancaire", true)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "statut=paid" {
		t.Fatalf("return page: %d %s", resp.StatusCode, body)
	}
	got := e.waitResolved(ten, a.ID)
	sp, _ = e.sim.Payment(a.IdOp)
	wantPaidAt, err := payfip.Result{DatTrans: sp.DatTrans, HeurTrans: sp.HeurTrans}.PaidAt()
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusPaid || got.ResultTrans != "P" || got.NumAuto != sp.NumAuto || got.NumAuto == "" ||
		got.PaidAt == nil || !got.PaidAt.Equal(wantPaidAt) || got.RefundNeeded ||
		(got.ResolvedBy != SourceNotification && got.ResolvedBy != SourceReturn) {
		t.Fatalf("resolved attempt: %+v", got)
	}
	iv := e.invoice(ten, inv)
	if iv.Status != "paid" || iv.PaidHow != "online" || iv.PaidAt == nil || !iv.PaidAt.Equal(wantPaidAt) {
		t.Fatalf("invoice: %+v", iv)
	}
	if n := e.count(`SELECT count(*) FROM payment_invoices WHERE tenant_id = $1 AND status = 'paid'`, ten.ID); n != 1 {
		t.Fatalf("payment_invoices status not cascaded: %d paid rows", n)
	}
	// Wait for the notification too: whichever came second changed nothing.
	deadline := time.Now().Add(5 * time.Second)
	for len(e.hitsSnapshot()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	changed := 0
	for _, h := range e.hitsSnapshot() {
		if h.Err != nil {
			t.Fatalf("portal call failed: %+v", h)
		}
		if h.Changed {
			changed++
		}
	}
	if changed != 1 || len(e.hitsSnapshot()) != 2 {
		t.Fatalf("hits %+v", e.hitsSnapshot())
	}

	mails := e.emails(ten)
	if len(mails) != 1 {
		t.Fatalf("%d confirmation emails", len(mails))
	}
	m := mails[0]
	if m.To != "support@sistec.fr" || m.Data["DisplayName"] != "Test SISTEC560" || m.Data["Amount"] != float64(24311) ||
		m.Data["AmountText"] != "243,11 €" || m.Data["Reference"] != a.RefDet ||
		m.Data["Link"] != e.portal.URL+"/sistec/paiements" || m.Data["PaidAt"] != FormatDateTime(wantPaidAt) ||
		fmt.Sprint(m.Data["Numbers"]) != "[2017-020-002059]" {
		t.Fatalf("email: %+v", m)
	}
	// Replays change nothing.
	again, changedAgain, err := e.svc.ResolveWS(e.ctx, ten, a.IdOp, SourceReturn)
	if err != nil || changedAgain || again.Status != StatusPaid {
		t.Fatalf("replay: %+v %v %v", again, changedAgain, err)
	}
	if v, err := e.svc.Verdict(e.ctx, ten, acc, inv); err != nil || v.Reason != invoice.ReasonPaid {
		t.Fatalf("verdict after payment: %+v, %v", v, err)
	}
	if f, err := e.svc.ForInvoice(e.ctx, ten.ID, acc, inv); err != nil || f.ID != a.ID {
		t.Fatalf("ForInvoice: %+v %v", f, err)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'payment.paid'`, ten.ID); n != 1 {
		t.Fatalf("%d audit rows payment.paid", n)
	}
	// Paid: no new attempt.
	if r := e.refused(ten, acc, inv); r.Reason != invoice.ReasonPaid {
		t.Fatalf("reason %q", r.Reason)
	}
}

func TestClassicHappyPath(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{mode: "classic"})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)

	a, redirect := e.start(ten, acc, inv)
	if !strings.HasPrefix(redirect, e.payfip.URL+"/tpa/paiement.web?") || a.IdOp != "" {
		t.Fatalf("redirect %q", redirect)
	}
	if e.attempt(ten, a.ID).Status != StatusPending {
		t.Fatal("attempt not stored before the redirect")
	}
	resp := e.pay(redirect, "Payer par carte bancaire", true)
	if body, _ := io.ReadAll(resp.Body); string(body) != "statut=paid" {
		t.Fatalf("return page: %s", body)
	}
	got := e.attempt(ten, a.ID)
	if got.Status != StatusPaid || got.ResolvedBy != SourceCallback || got.NumAuto == "" {
		t.Fatalf("attempt %+v", got)
	}
	// PayFiP's server-side call applied the result; the browser's return
	// (same parameters, from outside PayFiP's networks) was only recorded.
	hits := e.hitsSnapshot()
	if len(hits) != 2 || hits[0].Source != SourceCallback || !hits[0].Changed || hits[0].Err != nil ||
		hits[1].Source != sourceBrowser || hits[1].Changed || !errors.Is(hits[1].Err, ErrUnverifiedSource) {
		t.Fatalf("hits %+v", hits)
	}
	if iv := e.invoice(ten, inv); iv.Status != "paid" || iv.PaidHow != "online" {
		t.Fatalf("invoice %+v", iv)
	}
	if n := len(e.emails(ten)); n != 1 {
		t.Fatalf("%d emails", n)
	}
}

func TestRefusedCardThenRetryDelay(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)

	a, redirect := e.start(ten, acc, inv) // 13:41:20 Paris
	e.pay(redirect, "Refuser le paiement", true)
	got := e.waitResolved(ten, a.ID)
	if got.Status != StatusRefused || got.ResultTrans != "R" || got.NumAuto != "" {
		t.Fatalf("attempt %+v", got)
	}
	if iv := e.invoice(ten, inv); iv.Status != "unpaid" || iv.PaidAt != nil {
		t.Fatalf("invoice %+v", iv)
	}
	if n := len(e.emails(ten)); n != 0 {
		t.Fatalf("%d emails for a refused payment", n)
	}
	// 13:41:20 + 2 h = 15:41:20, shown and enforced as 15h42.
	want := parisTime(2026, 11, 26, 15, 42, 0)
	r := e.refused(ten, acc, inv)
	if r.Reason != "Vous pourrez effectuer une nouvelle tentative à partir de 15h42." || !r.RetryAt.Equal(want) {
		t.Fatalf("refusal %q at %v", r.Reason, r.RetryAt)
	}
	if v, err := e.svc.Verdict(e.ctx, ten, acc, inv); err != nil || v.Payable || !v.RetryAt.Equal(want) || v.Reason != r.Reason {
		t.Fatalf("verdict %+v %v", v, err)
	}
	e.clock.Set(parisTime(2026, 11, 26, 15, 41, 59))
	e.refused(ten, acc, inv)
	e.clock.Set(want)
	if v, err := e.svc.Verdict(e.ctx, ten, acc, inv); err != nil || !v.Payable {
		t.Fatalf("still waiting at 15h42: %+v %v", v, err)
	}
	b, redirect := e.start(ten, acc, inv)
	e.pay(redirect, "Payer par carte bancaire", true)
	if got := e.waitResolved(ten, b.ID); got.Status != StatusPaid {
		t.Fatalf("second attempt %+v", got)
	}
}

func TestAbandonedClassicThenRetryDelay(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{mode: "classic", retryMinutes: 20})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)
	e.clock.Set(parisTime(2026, 11, 26, 23, 50, 0))

	a, redirect := e.start(ten, acc, inv)
	e.pay(redirect, "Annuler", true)
	if got := e.attempt(ten, a.ID); got.Status != StatusCancelled || got.ResultTrans != "A" {
		t.Fatalf("attempt %+v", got)
	}
	if iv := e.invoice(ten, inv); iv.Status != "unpaid" {
		t.Fatalf("invoice %+v", iv)
	}
	// Past midnight in Paris: the date is given.
	r := e.refused(ten, acc, inv)
	if r.Reason != "Vous pourrez effectuer une nouvelle tentative à partir du 27/11/2026 à 00h10." ||
		!r.RetryAt.Equal(parisTime(2026, 11, 27, 0, 10, 0)) {
		t.Fatalf("refusal %q at %v", r.Reason, r.RetryAt)
	}
	e.clock.Set(parisTime(2026, 11, 27, 0, 10, 0))
	e.start(ten, acc, inv)
}

func TestForgedResultsChangeNothing(t *testing.T) {
	e := newEnv(t)
	a1 := e.addTenant("sistec", tenantOpts{mode: "classic", numcli: "004200"})
	b1 := e.addTenant("autreville", tenantOpts{mode: "classic", numcli: "009999"})
	w1 := e.addTenant("wsville", tenantOpts{mode: "ws", numcli: "004201"})
	accA := e.addAccount(a1, "a@sistec.fr", "Payeur A")
	accW := e.addAccount(w1, "w@wsville.fr", "Payeur W")
	invA := e.addInvoice(a1, accA, "A-1", 24311)
	invW := e.addInvoice(w1, accW, "W-1", 5000)
	pa, _ := e.start(a1, accA, invA)
	pw, _ := e.start(w1, accW, invW)

	good := payfip.Result{ResultTrans: "P", NumAuto: "123456", DatTrans: "26112026", HeurTrans: "1342",
		NumCli: "004200", Exer: "2026", RefDet: pa.RefDet, Montant: 24311, Mel: "a@sistec.fr", Saisie: "T"}
	forge := func(f func(*payfip.Result)) payfip.Result {
		r := good
		f(&r)
		return r
	}
	cases := []struct {
		name string
		ten  *tenant.Tenant
		res  payfip.Result
		want error
	}{
		{"unknown refdet", a1, forge(func(r *payfip.Result) { r.RefDet = "UNKNOWN000REF" }), ErrNotFound},
		{"invalid refdet", a1, forge(func(r *payfip.Result) { r.RefDet = "<script>" }), ErrBadResult},
		{"other tenant", b1, forge(func(r *payfip.Result) { r.NumCli = "009999" }), ErrNotFound},
		{"other amount", a1, forge(func(r *payfip.Result) { r.Montant = 100 }), ErrMismatch},
		{"numcli mismatch", a1, forge(func(r *payfip.Result) { r.NumCli = "009999" }), ErrMismatch},
		// The attempt was sent with exer 2026, the year of its creation.
		{"exer mismatch", a1, forge(func(r *payfip.Result) { r.Exer = "2025" }), ErrMismatch},
		{"exer missing", a1, forge(func(r *payfip.Result) { r.Exer = "" }), ErrMismatch},
		{"unsigned result for a WS attempt", w1, payfip.Result{ResultTrans: "P", NumCli: "004201",
			RefDet: pw.RefDet, IdOp: pw.IdOp, Montant: 5000}, ErrUntrusted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Even from PayFiP's networks.
			got, changed, err := e.svc.ReceiveClassic(e.ctx, c.ten, ClassicCall{Params: classicParams(c.res), From: payfipAddr})
			if !errors.Is(err, c.want) || changed || got != nil {
				t.Fatalf("got %+v %v %v, want %v", got, changed, err, c.want)
			}
		})
	}
	// WS: an idOp unknown to the tenant is refused before asking PayFiP.
	for _, c := range []struct{ slug, idOp string }{{"wsville", "00000000-0000-4000-8000-000000000000"},
		{"sistec", pw.IdOp}, {"wsville", "../../etc"}} {
		if _, changed, err := e.svc.ResolveWS(e.ctx, e.tenant(c.slug), c.idOp, SourceNotification); !errors.Is(err, ErrNotFound) || changed {
			t.Fatalf("ResolveWS(%s, %s): %v %v", c.slug, c.idOp, changed, err)
		}
	}
	// Even PayFiP's own answer must match the attempt (defence in depth).
	trusted := payfip.Result{ResultTrans: "P", NumCli: "004201", RefDet: pw.RefDet, IdOp: pw.IdOp, Montant: 5000,
		DatTrans: "26112026", HeurTrans: "1342"}
	for name, f := range map[string]func(*payfip.Result){
		"amount": func(r *payfip.Result) { r.Montant = 4999 },
		"refdet": func(r *payfip.Result) { r.RefDet = pa.RefDet },
		"numcli": func(r *payfip.Result) { r.NumCli = "004200" },
	} {
		r := trusted
		f(&r)
		if _, changed, err := e.svc.apply(e.ctx, w1, r, SourceNotification, true); !errors.Is(err, ErrMismatch) || changed {
			t.Fatalf("trusted %s mismatch: %v %v", name, changed, err)
		}
	}
	if _, changed, err := e.svc.apply(e.ctx, a1, forge(func(r *payfip.Result) { r.IdOp = pw.IdOp }), SourceNotification, true); !errors.Is(err, ErrNotFound) || changed {
		t.Fatalf("trusted result of another tenant's idOp: %v %v", changed, err)
	}

	for _, p := range []struct {
		ten *tenant.Tenant
		id  int64
	}{{a1, pa.ID}, {w1, pw.ID}} {
		if got := e.attempt(p.ten, p.id); got.Status != StatusPending {
			t.Fatalf("forged result changed attempt %+v", got)
		}
	}
	if iv := e.invoice(a1, invA); iv.Status != "unpaid" {
		t.Fatalf("invoice %+v", iv)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'send_email'`); n != 0 {
		t.Fatalf("%d emails", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'payment.result_rejected'`); n < 10 {
		t.Fatalf("only %d rejected results audited", n)
	}
	// The genuine result still applies.
	if got, changed, err := e.svc.ReceiveClassic(e.ctx, a1, ClassicCall{Params: classicParams(good), From: payfipAddr}); err != nil || !changed || got.Status != StatusPaid {
		t.Fatalf("genuine result: %+v %v %v", got, changed, err)
	}
}

func TestRaceNotificationReturnReconciliation(t *testing.T) {
	t.Run("ws", func(t *testing.T) {
		e := newEnv(t)
		ten := e.addTenant("sistec", tenantOpts{})
		acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
		inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)
		c := sim.DefaultControl()
		c.DropNotifications = true
		e.control(c)
		a, redirect := e.start(ten, acc, inv)
		e.pay(redirect, "Payer par carte bancaire", false) // paid on PayFiP; nobody told yet
		if got := e.attempt(ten, a.ID); got.Status != StatusPending {
			t.Fatalf("attempt %+v", got)
		}
		e.clock.Advance(6 * time.Minute) // old enough for reconciliation

		var wg sync.WaitGroup
		var mu sync.Mutex
		transitions := 0
		var errs []error
		gate := make(chan struct{})
		for i := range 50 {
			wg.Go(func() {
				<-gate
				var n int
				var err error
				switch i % 3 {
				case 0:
					var ch bool
					_, ch, err = e.svc.ResolveWS(e.ctx, ten, a.IdOp, SourceNotification)
					if ch {
						n = 1
					}
				case 1:
					var ch bool
					_, ch, err = e.svc.ResolveWS(e.ctx, ten, a.IdOp, SourceReturn)
					if ch {
						n = 1
					}
				default:
					n, err = e.svc.Reconcile(e.ctx)
				}
				mu.Lock()
				defer mu.Unlock()
				transitions += n
				if err != nil {
					errs = append(errs, err)
				}
			})
		}
		close(gate)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatal(errors.Join(errs...))
		}
		if transitions != 1 {
			t.Fatalf("%d transitions", transitions)
		}
		if got := e.attempt(ten, a.ID); got.Status != StatusPaid {
			t.Fatalf("attempt %+v", got)
		}
		if n := len(e.emails(ten)); n != 1 {
			t.Fatalf("%d emails", n)
		}
		if n := e.count(`SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'payment.paid'`, ten.ID); n != 1 {
			t.Fatalf("%d audit rows", n)
		}
		if iv := e.invoice(ten, inv); iv.Status != "paid" {
			t.Fatalf("invoice %+v", iv)
		}
	})
	t.Run("classic", func(t *testing.T) {
		e := newEnv(t)
		ten := e.addTenant("sistec", tenantOpts{mode: "classic"})
		acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
		inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)
		a, _ := e.start(ten, acc, inv)
		res := payfip.Result{ResultTrans: "P", NumAuto: "654321", DatTrans: "26112026", HeurTrans: "1345",
			NumCli: ten.PayFiPNumcli, Exer: "2026", RefDet: a.RefDet, Montant: 24311}
		var wg sync.WaitGroup
		var mu sync.Mutex
		changed := 0
		gate := make(chan struct{})
		for i := range 50 {
			wg.Go(func() {
				<-gate
				// Half from PayFiP, half the same result from a browser.
				from := payfipAddr
				if i%2 == 1 {
					from = browserAddr
				}
				_, ch, err := e.svc.ReceiveClassic(e.ctx, ten, ClassicCall{Params: classicParams(res), From: from})
				mu.Lock()
				defer mu.Unlock()
				if err != nil && !(from == browserAddr && errors.Is(err, ErrUnverifiedSource)) {
					t.Error(err)
				}
				if ch {
					changed++
				}
			})
		}
		close(gate)
		wg.Wait()
		if changed != 1 || len(e.emails(ten)) != 1 || e.attempt(ten, a.ID).Status != StatusPaid {
			t.Fatalf("%d transitions, %d emails", changed, len(e.emails(ten)))
		}
		if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'payment.classic_result_unverified'`); n != 25 {
			t.Fatalf("%d browser results audited, want 25", n)
		}
	})
}

func TestTwoTabsPayingTheSameInvoice(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)

	const tabs = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, refused int
	gate := make(chan struct{})
	for range tabs {
		wg.Go(func() {
			<-gate
			_, _, err := e.svc.Start(e.ctx, ten, acc, []int64{inv})
			var r *RefusedError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &r) && r.Reason == ReasonPending:
				refused++
			default:
				t.Errorf("Start: %v", err)
			}
		})
	}
	close(gate)
	wg.Wait()
	if ok != 1 || refused != tabs-1 {
		t.Fatalf("%d started, %d refused", ok, refused)
	}
	if n := e.count(`SELECT count(*) FROM payments WHERE tenant_id = $1`, ten.ID); n != 1 {
		t.Fatalf("%d attempts stored", n)
	}
	if r := e.refused(ten, acc, inv); r.Reason != "Un paiement est déjà en cours pour cette facture." {
		t.Fatalf("reason %q", r.Reason)
	}
	// The partial unique index holds even if the lock were bypassed.
	var pid int64
	if err := e.d.Get(&pid, `INSERT INTO payments (tenant_id, account_id, refdet, mode, amount_cents, email, created_at)
		VALUES ($1, $2, 'BYPASS000001', 'ws', 24311, 'x@y.fr', now()) RETURNING id`, ten.ID, acc); err != nil {
		t.Fatal(err)
	}
	_, err := e.d.Exec(`INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents) VALUES ($1, $2, $3, 24311)`,
		ten.ID, pid, inv)
	if err == nil || !strings.Contains(err.Error(), "payment_invoices_one_pending") {
		t.Fatalf("second pending attempt on one invoice: %v", err)
	}
}

func TestDroppedNotificationReconciled(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)
	c := sim.DefaultControl()
	c.DropNotifications = true
	e.control(c)

	a, redirect := e.start(ten, acc, inv)
	resp := e.pay(redirect, "Payer par carte bancaire", false) // the resident closes the tab on PayFiP's redirect
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("PayFiP answered %d", resp.StatusCode)
	}
	if n, err := e.svc.Reconcile(e.ctx); err != nil || n != 0 {
		t.Fatalf("early reconcile: %d %v", n, err)
	}
	if r := e.refused(ten, acc, inv); r.Reason != ReasonPending {
		t.Fatalf("reason %q", r.Reason)
	}
	e.clock.Advance(5 * time.Minute)
	if n, err := e.svc.Reconcile(e.ctx); err != nil || n != 1 {
		t.Fatalf("reconcile: %d %v", n, err)
	}
	got := e.attempt(ten, a.ID)
	if got.Status != StatusPaid || got.ResolvedBy != SourceReconciliation {
		t.Fatalf("attempt %+v", got)
	}
	if iv := e.invoice(ten, inv); iv.Status != "paid" || len(e.emails(ten)) != 1 {
		t.Fatalf("invoice %+v", iv)
	}
	if n, err := e.svc.Reconcile(e.ctx); err != nil || n != 0 {
		t.Fatalf("second reconcile: %d %v", n, err)
	}
}

func TestReconcileWorkerRunsPeriodically(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)
	c := sim.DefaultControl()
	c.DropNotifications = true
	e.control(c)
	a, redirect := e.start(ten, acc, inv)
	e.pay(redirect, "Payer par carte bancaire", false)
	e.clock.Advance(10 * time.Minute)

	workers := river.NewWorkers()
	river.AddWorker(workers, &ReconcileWorker{Service: e.svc})
	client, err := jobs.New(e.d, jobs.Options{Workers: workers, PollInterval: 50 * time.Millisecond,
		Periodic: []*river.PeriodicJob{NewReconcilePeriodicJob()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		client.Stop(sctx)
	}()
	if got := e.waitResolved(ten, a.ID); got.Status != StatusPaid || got.ResolvedBy != SourceReconciliation {
		t.Fatalf("attempt %+v", got)
	}
}

func TestUnopenedAndClassicAttemptsExpire(t *testing.T) {
	e := newEnv(t)
	ws := e.addTenant("wsville", tenantOpts{})
	cl := e.addTenant("sistec", tenantOpts{mode: "classic", numcli: "004201"})
	accW := e.addAccount(ws, "w@wsville.fr", "Payeur W")
	accC := e.addAccount(cl, "c@sistec.fr", "Payeur C")
	invW := e.addInvoice(ws, accW, "W-1", 5000)
	invC := e.addInvoice(cl, accC, "C-1", 5000)
	aw, _ := e.start(ws, accW, invW) // the resident never opens PayFiP's page
	ac, _ := e.start(cl, accC, invC)

	e.clock.Advance(30 * time.Minute)
	if n, err := e.svc.Reconcile(e.ctx); err != nil || n != 0 {
		t.Fatalf("reconcile: %d %v", n, err)
	}
	// PayFiP still answers P5 for an unopened idOp until its nightly purge.
	if got := e.attempt(ws, aw.ID); got.Status != StatusPending {
		t.Fatalf("WS attempt %+v", got)
	}
	e.sim.Advance(24 * time.Hour)
	e.clock.Advance(2 * time.Hour)
	if n, err := e.svc.Reconcile(e.ctx); err != nil || n != 2 {
		t.Fatalf("reconcile after purge and 2h30: %d %v", n, err)
	}
	if got := e.attempt(ws, aw.ID); got.Status != StatusExpired || got.ResolvedBy != SourceReconciliation {
		t.Fatalf("WS attempt %+v", got)
	}
	if got := e.attempt(cl, ac.ID); got.Status != StatusExpired || got.ResolvedBy != SourceReconciliation {
		t.Fatalf("classic attempt %+v", got)
	}
	// Expired means unknown: the retry delay applies.
	if r := e.refused(cl, accC, invC); r.RetryAt.IsZero() {
		t.Fatalf("no retry delay after expiry: %q", r.Reason)
	}
}

func TestPayFiPFaultsLeaveInvoicesFree(t *testing.T) {
	for _, fault := range []string{sim.Fault999, sim.FaultTimeout} {
		t.Run(fault, func(t *testing.T) {
			e := newEnv(t)
			ten := e.addTenant("sistec", tenantOpts{})
			acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
			inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)
			if fault == sim.FaultTimeout {
				e.svc.Config.Timeout = 300 * time.Millisecond
				e.svc.PayFiP = payfip.NewClient(e.svc.Config.SOAPURL, &http.Client{Timeout: 300 * time.Millisecond})
			}
			c := sim.DefaultControl()
			c.Fault = fault
			e.control(c)

			began := time.Now()
			a, redirect, err := e.svc.Start(e.ctx, ten, acc, []int64{inv})
			var u *UnavailableError
			if !errors.As(err, &u) || a != nil || redirect != "" || u.Message != MessageUnavailable || !payfip.IsTechnical(err) {
				t.Fatalf("Start: %v %q %v", a, redirect, err)
			}
			if fault == sim.FaultTimeout && (!errors.Is(err, payfip.ErrTimeout) || time.Since(began) > 3*time.Second) {
				t.Fatalf("timeout: %v after %v", err, time.Since(began))
			}
			var st struct {
				Status     string  `db:"status"`
				ResolvedBy string  `db:"resolved_by"`
				IdOp       *string `db:"id_op"`
				Msg        string  `db:"error_message"`
			}
			if err := e.d.Get(&st, `SELECT status, resolved_by, id_op, error_message FROM payments WHERE tenant_id = $1`, ten.ID); err != nil {
				t.Fatal(err)
			}
			if st.Status != "error" || st.ResolvedBy != "start" || st.IdOp != nil || st.Msg == "" {
				t.Fatalf("failed attempt %+v", st)
			}
			if v, err := e.svc.Verdict(e.ctx, ten, acc, inv); err != nil || !v.Payable {
				t.Fatalf("not payable after a technical failure (pending or retry delay): %+v %v", v, err)
			}
			b, redirect := e.start(ten, acc, inv)
			e.pay(redirect, "Payer par carte bancaire", true)
			if got := e.waitResolved(ten, b.ID); got.Status != StatusPaid {
				t.Fatalf("new attempt %+v", got)
			}
		})
	}
}

func TestSecondPaymentOfPaidInvoiceIsFlaggedForRefund(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{batchAllowed: true, batchMax: 3})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	inv1 := e.addInvoice(ten, acc, "F-1", 10000)
	inv2 := e.addInvoice(ten, acc, "F-2", 2500)

	a, redirect := e.start(ten, acc, inv1, inv2)
	// Meanwhile the counter records a cheque for F-2.
	if _, err := e.d.Exec(`UPDATE invoices SET status = 'paid', paid_at = now(), paid_how = 'elsewhere'
		WHERE tenant_id = $1 AND id = $2`, ten.ID, inv2); err != nil {
		t.Fatal(err)
	}
	e.pay(redirect, "Payer par carte bancaire", true)
	got := e.waitResolved(ten, a.ID)
	if got.Status != StatusPaid || !got.RefundNeeded || got.RefundCents != 2500 || got.AmountCents != 12500 {
		t.Fatalf("attempt %+v", got)
	}
	if iv := e.invoice(ten, inv1); iv.Status != "paid" || iv.PaidHow != "online" {
		t.Fatalf("F-1 %+v", iv)
	}
	if iv := e.invoice(ten, inv2); iv.Status != "paid" || iv.PaidHow != "elsewhere" {
		t.Fatalf("F-2 %+v", iv)
	}
	mails := e.emails(ten)
	if len(mails) != 1 || mails[0].Data["RefundNeeded"] != true {
		t.Fatalf("emails %+v", mails)
	}
}

// F2 of the probe after issue 9: the billing side changed an invoice's
// amount while its payment was pending (through a race with an import, or
// any other write), then PayFiP confirmed the amount collected. The
// invoice is marked paid only when its amount still equals the share paid
// for it; otherwise it keeps its state, and the share is flagged for refund,
// audited and logged, as for an invoice no longer payable.
func TestAmountChangedWhilePendingIsNotSettled(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{batchAllowed: true, batchMax: 3})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	changed := e.addInvoice(ten, acc, "F-1", 5640)
	kept := e.addInvoice(ten, acc, "F-2", 2500)
	alone := e.addInvoice(ten, acc, "F-3", 9812)
	setAmount := func(id, cents int64) {
		t.Helper()
		if _, err := e.d.Exec(`UPDATE invoices SET amount_cents = $3 WHERE tenant_id = $1 AND id = $2`, ten.ID, id, cents); err != nil {
			t.Fatal(err)
		}
	}

	// A batch: F-1's amount changes meanwhile, F-2's does not.
	a, redirect := e.start(ten, acc, changed, kept)
	setAmount(changed, 99999)
	e.pay(redirect, "Payer par carte bancaire", true)
	got := e.waitResolved(ten, a.ID)
	if got.Status != StatusPaid || !got.RefundNeeded || got.RefundCents != 5640 || got.AmountCents != 8140 {
		t.Fatalf("attempt %+v", got)
	}
	if iv := e.invoice(ten, changed); iv.Status != "unpaid" || iv.PaidAt != nil {
		t.Fatalf("F-1, whose amount changed, was settled: %+v", iv)
	}
	if iv := e.invoice(ten, kept); iv.Status != "paid" || iv.PaidHow != "online" {
		t.Fatalf("F-2 %+v", iv)
	}
	var details string
	if err := e.d.Get(&details, `SELECT details::text FROM audit_log WHERE tenant_id = $1 AND action = 'payment.paid'
		AND (details->>'payment_id')::bigint = $2`, ten.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	var audited struct {
		RefundCents int64 `json:"refund_cents"`
		Unsettled   []struct {
			Number       string `json:"number"`
			Reason       string `json:"reason"`
			InvoiceCents int64  `json:"invoice_cents"`
			PaidCents    int64  `json:"paid_cents"`
		} `json:"unsettled"`
	}
	if err := json.Unmarshal([]byte(details), &audited); err != nil {
		t.Fatal(err)
	}
	if audited.RefundCents != 5640 || len(audited.Unsettled) != 1 || audited.Unsettled[0].Number != "F-1" ||
		audited.Unsettled[0].Reason != "amount" || audited.Unsettled[0].InvoiceCents != 99999 || audited.Unsettled[0].PaidCents != 5640 {
		t.Fatalf("audit details: %s", details)
	}
	mails := e.emails(ten)
	if len(mails) != 1 || mails[0].Data["RefundNeeded"] != true || fmt.Sprint(mails[0].Data["Numbers"]) != "[F-2]" ||
		fmt.Sprint(mails[0].Data["Unsettled"]) != "[F-1]" {
		t.Fatalf("emails %+v", mails)
	}
	// The resident reads which invoice was settled and which was not.
	msg, err := mail.NewRenderer(templates.FS).Render(ten, mails[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Text, "Factures réglées :\n- facture n° F-2\n") ||
		!strings.Contains(msg.Text, "Facture non réglée par ce paiement :\n- facture n° F-1\n") ||
		!strings.Contains(msg.Text, "procédera au remboursement du montant correspondant") ||
		strings.Contains(msg.Text, "déjà réglée : le service") || !strings.Contains(msg.HTML, "<li>facture n° F-1</li>") {
		t.Fatalf("confirmation email:\n%s", msg.Text)
	}

	// One invoice, lowered meanwhile: a smaller amount is no more paid
	// than a larger one.
	a, redirect = e.start(ten, acc, alone)
	setAmount(alone, 5000)
	e.pay(redirect, "Payer par carte bancaire", true)
	if got := e.waitResolved(ten, a.ID); got.Status != StatusPaid || got.RefundCents != 9812 {
		t.Fatalf("attempt %+v", got)
	}
	if iv := e.invoice(ten, alone); iv.Status != "unpaid" {
		t.Fatalf("F-3, whose amount changed, was settled: %+v", iv)
	}
}

func TestBatchRules(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{batchAllowed: true, batchMax: 3})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	ids := []int64{
		e.addInvoice(ten, acc, "2017-020-002059", 24311),
		e.addInvoice(ten, acc, "2017-020-002060", 1250),
		e.addInvoice(ten, acc, "2017-020-002061", 50), // under 1 €, fine inside a batch
		e.addInvoice(ten, acc, "2017-020-002062", 900),
	}
	if r := e.refused(ten, acc, ids...); r.Reason != "Vous pouvez régler au plus 3 factures en un seul paiement." {
		t.Fatalf("reason %q", r.Reason)
	}
	a, redirect := e.start(ten, acc, ids[:3]...)
	if a.AmountCents != 25611 {
		t.Fatalf("amount %d", a.AmountCents)
	}
	sp, _ := e.sim.Payment(a.IdOp)
	if sp.Montant != 25611 || sp.Objet != "2017 020 002059 2017 020 002060 2017 020 002061" {
		t.Fatalf("PayFiP got %+v", sp)
	}
	e.pay(redirect, "Payer par carte bancaire", true)
	if got := e.waitResolved(ten, a.ID); got.Status != StatusPaid {
		t.Fatalf("attempt %+v", got)
	}
	for _, id := range ids[:3] {
		if iv := e.invoice(ten, id); iv.Status != "paid" {
			t.Fatalf("invoice %d %+v", id, iv)
		}
	}
	list, total, err := e.svc.ListForAccount(e.ctx, ten.ID, acc, 1, 20)
	if err != nil || len(list) != 1 || total != 1 || len(list[0].Invoices) != 3 ||
		strings.Join(list[0].Numbers(), ",") != "2017-020-002059,2017-020-002060,2017-020-002061" {
		t.Fatalf("list %+v %v", list, err)
	}
	// A batch whose total is under 1 €.
	small := e.addInvoice(ten, acc, "S-1", 40)
	small2 := e.addInvoice(ten, acc, "S-2", 40)
	if r := e.refused(ten, acc, small, small2); !strings.Contains(r.Reason, "inférieur à 1,00 €") {
		t.Fatalf("reason %q", r.Reason)
	}

	one := e.addTenant("unitaire", tenantOpts{numcli: "004202"})
	acc1 := e.addAccount(one, "x@unitaire.fr", "Payeur")
	i1 := e.addInvoice(one, acc1, "U-1", 1000)
	i2 := e.addInvoice(one, acc1, "U-2", 1000)
	if r := e.refused(one, acc1, i1, i2); r.Reason != ReasonBatchNotAllowed {
		t.Fatalf("reason %q", r.Reason)
	}
	e.start(one, acc1, i1, i1) // the same invoice twice is one invoice
}

func TestRefusalReasons(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{batchAllowed: true, batchMax: 5})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	other := e.addAccount(ten, "voisin@sistec.fr", "Voisin")
	ok := e.addInvoice(ten, acc, "OK-1", 24311)
	cases := []struct {
		name   string
		id     int64
		reason string
		batch  bool // also refused inside a batch (under 1 € is not: the total counts)
	}{
		{"direct debit", e.addInvoice(ten, acc, "DD-1", 5000, invoiceOpts{directDebit: true}), "Ma facture est en prélèvement automatique.", true},
		{"suspended", e.addInvoice(ten, acc, "SU-1", 5000, invoiceOpts{suspended: true}), "Le paiement a été temporairement suspendu.", true},
		{"treasury", e.addInvoice(ten, acc, "TR-1", 5000, invoiceOpts{status: "treasury"}), invoice.ReasonTreasury, true},
		{"paid", e.addInvoice(ten, acc, "PA-1", 5000, invoiceOpts{status: "paid"}), invoice.ReasonPaid, true},
		{"cancelled", e.addInvoice(ten, acc, "CA-1", 5000, invoiceOpts{status: "cancelled"}), invoice.ReasonCancelled, true},
		{"under 1 €", e.addInvoice(ten, acc, "LO-1", 99), "Le montant de cette facture est inférieur à 1,00 € : elle ne peut pas être réglée en ligne.", false},
		{"zero", e.addInvoice(ten, acc, "ZE-1", 0), "Le montant de cette facture est inférieur à 1,00 € : elle ne peut pas être réglée en ligne.", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r := e.refused(ten, acc, c.id); r.Reason != c.reason {
				t.Fatalf("reason %q, want %q", r.Reason, c.reason)
			}
			if !c.batch {
				return
			}
			// In a batch the invoice is named.
			if r := e.refused(ten, acc, ok, c.id); !strings.HasSuffix(r.Reason, " : "+c.reason) || !strings.HasPrefix(r.Reason, "Facture ") {
				t.Fatalf("batch reason %q", r.Reason)
			}
		})
	}
	if r := e.refused(ten, acc); r.Reason != ReasonNoSelection {
		t.Fatalf("reason %q", r.Reason)
	}
	// Another account's, another tenant's, or no invoice: not found.
	ten2 := e.addTenant("autreville", tenantOpts{numcli: "004201"})
	acc2 := e.addAccount(ten2, "support@autreville.fr", "Autre")
	inv2 := e.addInvoice(ten2, acc2, "OK-1", 24311)
	for name, f := range map[string]func() error{
		"other account": func() error { _, _, err := e.svc.Start(e.ctx, ten, other, []int64{ok}); return err },
		"other tenant":  func() error { _, _, err := e.svc.Start(e.ctx, ten, acc, []int64{inv2}); return err },
		"across":        func() error { _, _, err := e.svc.Start(e.ctx, ten2, acc2, []int64{ok}); return err },
		"mixed":         func() error { _, _, err := e.svc.Start(e.ctx, ten, acc, []int64{ok, inv2}); return err },
		"no such id":    func() error { _, _, err := e.svc.Start(e.ctx, ten, acc, []int64{999999}); return err },
	} {
		if err := f(); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// The whole commune suspended.
	if _, err := e.d.Exec(`UPDATE tenants SET payments_suspended = true WHERE id = $1`, ten.ID); err != nil {
		t.Fatal(err)
	}
	susp := *ten
	susp.PaymentsSuspended = true
	if r := e.refused(&susp, acc, ok); r.Reason != "Le paiement a été temporairement suspendu." {
		t.Fatalf("reason %q", r.Reason)
	}
	if n := e.count(`SELECT count(*) FROM payments`); n != 0 {
		t.Fatalf("%d attempts stored by refused starts", n)
	}
}

func TestReceipt(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("sistec", tenantOpts{})
	acc := e.addAccount(ten, "support@sistec.fr", "Test SISTEC560")
	other := e.addAccount(ten, "voisin@sistec.fr", "Voisin")
	inv := e.addInvoice(ten, acc, "2017-020-002059", 24311)
	a, redirect := e.start(ten, acc, inv)
	if _, err := e.svc.Receipt(e.ctx, ten, acc, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("receipt of a pending attempt: %v", err)
	}
	e.pay(redirect, "Payer par carte bancaire", true)
	got := e.waitResolved(ten, a.ID)

	pdf, err := e.svc.Receipt(e.ctx, ten, acc, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf, []byte("%%EOF")) {
		t.Fatalf("not a PDF: %q", pdf[:min(len(pdf), 20)])
	}
	for _, s := range []string{"Attestation de paiement", "243,11 \x80", "2017-020-002059", a.RefDet, got.NumAuto,
		"MAIRIE DE SISTEC", "Test SISTEC560", "Multi Services", "R\xe9f\xe9rence du paiement", FormatDateTime(*got.PaidAt)[:10]} {
		if !bytes.Contains(pdf, []byte(s)) {
			t.Errorf("receipt lacks %q", s)
		}
	}
	if _, err := e.svc.Receipt(e.ctx, ten, other, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another account's receipt: %v", err)
	}
	ten2 := e.addTenant("autreville", tenantOpts{numcli: "004201"})
	if _, err := e.svc.Receipt(e.ctx, ten2, acc, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant's receipt: %v", err)
	}
	if _, err := e.svc.Get(e.ctx, ten.ID, other, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another account's attempt: %v", err)
	}
}

func TestObjetAndRetryReason(t *testing.T) {
	if got := objet([]string{"2017-020-002059", "A_B.C"}); got != "2017 020 002059 ABC" {
		t.Fatalf("objet %q", got)
	}
	long := make([]string, 10)
	for i := range long {
		long[i] = fmt.Sprintf("2017-020-%06d", i)
	}
	if got := objet(long); got != "10 factures" {
		t.Fatalf("objet %q", got)
	}
	now := parisTime(2026, 3, 29, 1, 30, 0) // the night clocks go forward
	at := ceilMinute(now.Add(2*time.Hour + 10*time.Second))
	if got := RetryReason(at, now); got != "Vous pourrez effectuer une nouvelle tentative à partir de 04h31." {
		t.Fatalf("%q", got)
	}
}

func TestClassicResultAppliesOnlyFromPayFiPNetworks(t *testing.T) {
	e := newEnv(t)
	ten := e.addTenant("belcastel", tenantOpts{mode: "classic", numcli: "012345"})
	acc := e.addAccount(ten, "demo@demo.fr", "Payeur")
	inv := e.addInvoice(ten, acc, "EAU-1", 9812)
	a, _ := e.start(ten, acc, inv)
	paid := classicParams(payfip.Result{ResultTrans: "P", NumAuto: "FAKE01", DatTrans: "26112026", HeurTrans: "1342",
		NumCli: "012345", Exer: "2026", RefDet: a.RefDet, Montant: 9812, Mel: "demo@demo.fr", Saisie: "T"})
	// What a forger adds: a huge value, NUL bytes and invalid UTF-8, many parameters.
	forged := url.Values{}
	for k, v := range paid {
		forged[strings.ToUpper(k)] = v
	}
	forged.Set("objet", strings.Repeat("x", 100_000))
	forged.Set("note", "a\x00b\xffc")
	for i := range 40 {
		forged.Set(fmt.Sprintf("z%02d", i), "1")
	}
	for _, from := range []netip.Addr{browserAddr, netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.3"), {}} {
		got, changed, err := e.svc.ReceiveClassic(e.ctx, ten, ClassicCall{Params: forged, From: from, AccountID: acc})
		if !errors.Is(err, ErrUnverifiedSource) || changed || got != nil {
			t.Fatalf("result from %v: %+v %v %v", from, got, changed, err)
		}
	}
	if got := e.attempt(ten, a.ID); got.Status != StatusPending || got.NumAuto != "" {
		t.Fatalf("attempt changed by results from outside PayFiP: %+v", got)
	}
	if iv := e.invoice(ten, inv); iv.Status != "unpaid" || len(e.emails(ten)) != 0 {
		t.Fatalf("invoice %+v, %d emails", iv, len(e.emails(ten)))
	}
	var row struct {
		IP      *string `db:"ip"`
		Actor   string  `db:"actor_kind"`
		ActorID *int64  `db:"actor_id"`
		Details string  `db:"details"`
	}
	if err := e.d.Get(&row, `SELECT host(ip) AS ip, actor_kind, actor_id, details::text AS details FROM audit_log
		WHERE tenant_id = $1 AND action = 'payment.classic_result_unverified' ORDER BY id LIMIT 1`, ten.ID); err != nil {
		t.Fatal(err)
	}
	var details struct {
		PaymentID     int64               `json:"payment_id"`
		AttemptStatus string              `json:"attempt_status"`
		Params        map[string][]string `json:"params"`
		Dropped       int                 `json:"params_dropped"`
	}
	if err := json.Unmarshal([]byte(row.Details), &details); err != nil {
		t.Fatal(err)
	}
	if row.IP == nil || *row.IP != "127.0.0.1" || row.Actor != "resident" || row.ActorID == nil || *row.ActorID != acc {
		t.Fatalf("audit row: ip %v actor %s %v", row.IP, row.Actor, row.ActorID)
	}
	if details.PaymentID != a.ID || details.AttemptStatus != "pending" || details.Params["NUMAUTO"][0] != "FAKE01" ||
		details.Params["MONTANT"][0] != "9812" || details.Dropped == 0 || len(details.Params) > 24 {
		t.Fatalf("audit details: %s", row.Details)
	}
	if len(row.Details) > 24*(40+4*300) {
		t.Fatalf("audit details not bounded: %d bytes", len(row.Details))
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'payment.classic_result_unverified'`); n != 4 {
		t.Fatalf("%d unverified results audited, want 4", n)
	}

	// A commune with its own PayFiP trusts its own networks instead.
	own := *ten
	own.PayFiPCallbackNetworks = []string{"192.0.2.0/24"}
	if _, _, err := e.svc.ReceiveClassic(e.ctx, &own, ClassicCall{Params: paid, From: payfipAddr}); !errors.Is(err, ErrUnverifiedSource) {
		t.Fatalf("deployment's network for a commune with its own list: %v", err)
	}
	got, changed, err := e.svc.ReceiveClassic(e.ctx, &own, ClassicCall{Params: paid, From: netip.MustParseAddr("::ffff:192.0.2.10")})
	if err != nil || !changed || got.Status != StatusPaid || got.NumAuto != "FAKE01" {
		t.Fatalf("result from the commune's PayFiP: %+v %v %v", got, changed, err)
	}
	// A genuine "A" afterwards does not undo it.
	cancel := classicParams(payfip.Result{ResultTrans: "A", NumCli: "012345", Exer: "2026", RefDet: a.RefDet, Montant: 9812})
	if got, changed, err := e.svc.ReceiveClassic(e.ctx, &own, ClassicCall{Params: cancel, From: netip.MustParseAddr("192.0.2.10")}); err != nil || changed || got.Status != StatusPaid {
		t.Fatalf("later cancellation: %+v %v %v", got, changed, err)
	}
}

func TestClassicPaymentNeedsCallbackNetworks(t *testing.T) {
	e := newEnv(t)
	classic := e.addTenant("belcastel", tenantOpts{mode: "classic", numcli: "012345"})
	ws := e.addTenant("sistec", tenantOpts{mode: "ws", numcli: "004200"})
	accC := e.addAccount(classic, "c@belcastel.fr", "Payeur C")
	accW := e.addAccount(ws, "w@sistec.fr", "Payeur W")
	invC := e.addInvoice(classic, accC, "EAU-1", 9812)
	invW := e.addInvoice(ws, accW, "CANT-1", 4410)
	e.svc.Config.CallbackNetworks = nil

	if err := e.svc.CheckClassicNetworks([]*tenant.Tenant{classic, ws}); err == nil ||
		!strings.Contains(err.Error(), "belcastel") || !strings.Contains(err.Error(), "payfip.callback_networks") || strings.Contains(err.Error(), "sistec") {
		t.Fatalf("check: %v", err)
	}
	_, _, err := e.svc.Start(e.ctx, classic, accC, []int64{invC})
	var u *UnavailableError
	if !errors.As(err, &u) || !errors.Is(err, ErrNoCallbackNetworks) || u.Message != MessageUnavailable {
		t.Fatalf("classic start without callback networks: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM payments WHERE tenant_id = $1`, classic.ID); n != 0 {
		t.Fatalf("%d attempts stored", n)
	}
	e.start(ws, accW, invW) // web-service mode does not need them

	suspended := *classic
	suspended.Status = "suspended"
	withOwn := *classic
	withOwn.PayFiPCallbackNetworks = []string{"192.0.2.0/24"}
	if err := e.svc.CheckClassicNetworks([]*tenant.Tenant{&suspended, &withOwn, ws}); err != nil {
		t.Fatalf("suspended commune, or one with its own networks: %v", err)
	}
}
