package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/imports"
	"portail/pkg/invoice"
	"portail/pkg/staff"
)

// The dashboard's figures are those of the commune's data, computed here
// independently from its rows: amounts due, paid online over 12 months, in
// treasury; payments per month and due vs paid by month (Paris months);
// activation and paperless rates; the last imports. Charts are accessible
// SVG with their data as tables.
func TestAdminDashboardFiguresMatchTheCommune(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	host := "sistec.localhost"
	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	loc := paris(t)
	now := time.Now().In(loc)
	thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	lastMonth := thisMonth.AddDate(0, -1, 0)
	day := func(m time.Time) string { return m.AddDate(0, 0, 2).Format("02/01/2006") }
	due := func(m time.Time) string { return m.AddDate(0, 0, 20).Format("02/01/2006") }
	file := invoicesHeader +
		fmt.Sprintf("DB-1;SISTEC560;Cantine;%s;%s;10,00\n", day(thisMonth), due(thisMonth)) +
		fmt.Sprintf("DB-2;SISTEC560;Garderie;%s;%s;20,50\n", day(lastMonth), due(lastMonth)) +
		fmt.Sprintf("DB-3;SISTEC560;Eau;%s;%s;7,25\n", day(lastMonth), due(lastMonth))
	if rep, err := e.App.Imports.ImportNow(ctx, sistec.ID, imports.KindInvoices, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "tableau.csv", Body: strings.NewReader(file)}, nil); err != nil || rep.Status != imports.StatusImported {
		t.Fatalf("import: %v %+v", err, rep)
	}
	e.App.DB.MustExec(`UPDATE invoices SET status = 'treasury' WHERE number = 'DB-3'`)
	activateWithPassword(t, e, host, "demo@demo.fr", strongPassword)
	e.App.DB.MustExec(`UPDATE accounts SET paperless = true, paperless_at = now() WHERE email = 'demo@demo.fr'`)
	resident := login(t, e, host, "demo@demo.fr", strongPassword, false)
	fetch(t, resident, payOnSimulator(t, e, startPayment(t, e, resident, host, "DB-1").String(), "P"))
	if n := countRows(t, e, `SELECT count(*) FROM invoices WHERE number = 'DB-1' AND status = 'paid'`); n != 1 {
		t.Fatal("DB-1 not paid")
	}

	// What the page must say, from the rows.
	type sum struct {
		n     int
		cents int64
	}
	var unpaid, treasury, online sum
	monthly := map[string]*struct{ payments, due, paid sum }{}
	var labels []string
	names := []string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."}
	for i := 11; i >= 0; i-- {
		m := thisMonth.AddDate(0, -i, 0)
		label := fmt.Sprintf("%s %d", names[m.Month()-1], m.Year())
		labels = append(labels, label)
		monthly[m.Format("2006-01")] = &struct{ payments, due, paid sum }{}
	}
	rows, err := e.App.DB.Query(`SELECT status, amount_cents, issued_on, paid_at FROM invoices WHERE tenant_id = $1`, sistec.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var status string
		var cents int64
		var issued time.Time
		var paidAt *time.Time
		rows.Scan(&status, &cents, &issued, &paidAt)
		switch status {
		case "unpaid":
			unpaid.n, unpaid.cents = unpaid.n+1, unpaid.cents+cents
		case "treasury":
			treasury.n, treasury.cents = treasury.n+1, treasury.cents+cents
		}
		if m := monthly[issued.Format("2006-01")]; m != nil && status != "cancelled" {
			m.due.n, m.due.cents = m.due.n+1, m.due.cents+cents
		}
		if paidAt != nil && status == "paid" {
			if m := monthly[paidAt.In(loc).Format("2006-01")]; m != nil {
				m.paid.n, m.paid.cents = m.paid.n+1, m.paid.cents+cents
			}
		}
	}
	rows.Close()
	prow, err := e.App.DB.Query(`SELECT amount_cents, paid_at FROM payments WHERE tenant_id = $1 AND status = 'paid'`, sistec.ID)
	if err != nil {
		t.Fatal(err)
	}
	for prow.Next() {
		var cents int64
		var paidAt time.Time
		prow.Scan(&cents, &paidAt)
		if m := monthly[paidAt.In(loc).Format("2006-01")]; m != nil {
			m.payments.n, m.payments.cents = m.payments.n+1, m.payments.cents+cents
			online.n, online.cents = online.n+1, online.cents+cents
		}
	}
	prow.Close()
	var accounts, active, paperless int
	e.App.DB.QueryRow(`SELECT count(*), count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'active' AND paperless)
		FROM accounts WHERE tenant_id = $1`, sistec.ID).Scan(&accounts, &active, &paperless)
	if online.n != 1 || treasury.n < 1 || active != 1 || paperless != 1 {
		t.Fatalf("test data: online %v, treasury %v, active %d, paperless %d", online, treasury, active, paperless)
	}
	rate := func(n, of int) string {
		return strings.Replace(fmt.Sprintf("%.1f", float64(n)*100/float64(of)), ".", ",", 1) + "\u00a0%"
	}

	viewer := newStaff(t, e, "sistec", "lecteur@sistec.fr", staff.RoleViewer)
	c, _ := staffLogin(t, e, host, viewer.Email, staffPassword)
	res, body := fetch(t, c, e.URL(host, "/admin"))
	if res.StatusCode != 200 {
		t.Fatalf("dashboard: %d", res.StatusCode)
	}
	for _, want := range []string{
		`id="figure-due">` + invoice.FormatAmount(unpaid.cents) + `<`,
		`id="figure-online">` + invoice.FormatAmount(online.cents) + `<`,
		`id="figure-treasury">` + invoice.FormatAmount(treasury.cents) + `<`,
		`id="figure-activation">` + rate(active, accounts) + `<`,
		`id="figure-paperless">` + rate(paperless, active) + `<`,
		`role="img" aria-labelledby="chart-payments-title chart-payments-desc"`, `<title id="chart-due-title">Montants dus et payés par mois</title>`,
		`<caption>Paiements en ligne acceptés, par mois</caption>`, "tableau.csv",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	for i, label := range labels {
		m := monthly[thisMonth.AddDate(0, i-11, 0).Format("2006-01")]
		payments := fmt.Sprintf(`<tr><th scope="row">%s</th><td class="num">%d</td><td class="num">%s</td></tr>`, label, m.payments.n, invoice.FormatAmount(m.payments.cents))
		dueRow := fmt.Sprintf(`<tr><th scope="row">%s</th><td class="num">%s</td><td class="num">%s</td></tr>`, label, invoice.FormatAmount(m.due.cents), invoice.FormatAmount(m.paid.cents))
		if !strings.Contains(body, payments) || !strings.Contains(body, dueRow) {
			t.Errorf("month %s: want %s and %s", label, payments, dueRow)
		}
	}
	if m := monthly[thisMonth.Format("2006-01")]; m.due.cents != 1000 || m.paid.cents < 1000 || m.payments.cents != 1000 {
		t.Errorf("this month's data: %+v", *m)
	}
}
