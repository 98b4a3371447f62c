package web_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"portail/pkg/apptest"
	"portail/pkg/dbtest"
	"portail/pkg/invoice"
)

var (
	toggleRe   = regexp.MustCompile(`href="(/paiement\?[^"]*basculer=([0-9]+))"`)
	nextRe     = regexp.MustCompile(`href="([^"]+)" rel="next"`)
	prevRe     = regexp.MustCompile(`href="([^"]+)" rel="prev"`)
	selectedRe = regexp.MustCompile(`<tr [^>]*class="selected">`)
	hiddenIDRe = regexp.MustCompile(`<input type="hidden" name="facture" value="([0-9]+)">`)
)

// bigResident is the demo resident of sistec (demo@demo.fr) given 10,000
// more unpaid, payable invoices, on a portal whose queries are counted.
type bigResident struct {
	e       *apptest.Env
	c       *http.Client
	counter *dbtest.QueryCounter
	tenant  int64
	account int64
}

func newBigResident(t *testing.T) *bigResident {
	t.Helper()
	return newResidentWith(t, 10000)
}

// newResidentWith is newBigResident with n more unpaid invoices (at most
// 99,999).
func newResidentWith(t *testing.T, n int) *bigResident {
	t.Helper()
	d, counter := dbtest.NewCounted(t)
	// No scheduled job (reconciliation, reminders at start) beside the
	// requests whose statements are counted.
	e := apptest.Start(t, apptest.Options{Demo: true, DB: d, NoPeriodicJobs: true})
	b := &bigResident{e: e, counter: counter}
	if err := d.Get(&b.tenant, `SELECT id FROM tenants WHERE slug = 'sistec'`); err != nil {
		t.Fatal(err)
	}
	if err := d.Get(&b.account, `SELECT id FROM accounts WHERE tenant_id = $1 AND email = 'demo@demo.fr'`, b.tenant); err != nil {
		t.Fatal(err)
	}
	// One statement: n unpaid invoices over 2015–2016, all older than the
	// demo's 2017 ones.
	if _, err := d.Exec(`INSERT INTO invoices (tenant_id, account_id, number, object, issued_on, due_on, amount_cents)
		SELECT $1, $2, 'G-' || lpad(g::text, 5, '0'), 'Cantine', date '2015-01-01' + g % 700, date '2015-01-31' + g % 700, 1000 + g
		FROM generate_series(1, $3::int) g`, b.tenant, b.account, n); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(`ANALYZE invoices`); err != nil {
		t.Fatal(err)
	}
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	b.c = login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	return b
}

// get fetches path as the resident and returns the status, the page (HTML
// entities decoded) and the statements the portal ran for it.
func (b *bigResident) get(t *testing.T, path string) (int, string, []string) {
	t.Helper()
	b.counter.Reset()
	res, body := fetch(t, b.c, b.e.URL("sistec.localhost", path))
	return res.StatusCode, body, portalQueries(b.counter.Queries())
}

// portalQueries leaves out River's own polling, which runs beside requests.
func portalQueries(qs []string) []string {
	var out []string
	for _, q := range qs {
		if !strings.Contains(q, "river_") {
			out = append(out, q)
		}
	}
	return out
}

func (b *bigResident) amount(t *testing.T, ids ...string) string {
	t.Helper()
	var cents int64
	if err := b.e.App.DB.Get(&cents, `SELECT sum(amount_cents) FROM invoices WHERE tenant_id = $1 AND id::text = ANY ($2)`,
		b.tenant, "{"+strings.Join(ids, ",")+"}"); err != nil {
		t.Fatal(err)
	}
	return invoice.FormatAmount(cents)
}

func (b *bigResident) invoiceID(t *testing.T, number string) int64 {
	t.Helper()
	var id int64
	if err := b.e.App.DB.Get(&id, `SELECT id FROM invoices WHERE tenant_id = $1 AND number = $2`, b.tenant, number); err != nil {
		t.Fatal(err)
	}
	return id
}

// checkBounded fails when a page ran more statements than max, or read the
// invoices table more than maxInvoices times, or weighs more than maxBytes.
func checkBounded(t *testing.T, what, body string, queries []string, max, maxInvoices, maxBytes int) {
	t.Helper()
	n := 0
	for _, q := range queries {
		if strings.Contains(q, "invoices") {
			n++
		}
	}
	t.Logf("%s: %d statements (%d on invoices), %d bytes", what, len(queries), n, len(body))
	if len(queries) > max || n > maxInvoices {
		t.Errorf("%s ran %d statements (%d on invoices), want at most %d (%d):\n%s", what, len(queries), n, max, maxInvoices,
			strings.Join(queries[:min(len(queries), 12)], "\n---\n"))
	}
	if len(body) > maxBytes {
		t.Errorf("%s weighs %d bytes, want at most %d", what, len(body), maxBytes)
	}
}

func TestSelectionPageOfResidentWith10000UnpaidInvoices(t *testing.T) {
	b := newBigResident(t)

	// Page 1: 20 rows, the three demo invoices of 2017 first, then 17 of
	// the 10,000; 10,003 payable invoices make 501 pages.
	status, body, queries := b.get(t, "/paiement")
	if status != http.StatusOK {
		t.Fatalf("selection page: %d", status)
	}
	checkBounded(t, "selection page", body, queries, 8, 3, 40_000)
	toggles := toggleRe.FindAllStringSubmatch(body, -1)
	if len(toggles) != 20 {
		t.Fatalf("selection page: %d selectable rows, want one page of 20", len(toggles))
	}
	if !strings.Contains(body, "Page 1 sur 501") || !strings.Contains(body, "2017-020-002059") || strings.Contains(body, "G-00001<") {
		t.Fatal("selection page: not the first of 501 pages, most recent first")
	}
	for _, s := range []string{"Date", "Numéro", "Montant à régler", "Factures sélectionnées :", "Nombre de factures <strong>0</strong>"} {
		if !strings.Contains(body, s) {
			t.Errorf("selection page lacks %q", s)
		}
	}

	// Select the first row of page 1, then move to page 2: the selection
	// travels in the query string.
	first := toggles[0][2]
	status, body, queries = b.get(t, html.UnescapeString(toggles[0][1]))
	checkBounded(t, "selection page after a click", body, queries, 8, 3, 40_000)
	if status != http.StatusOK || len(selectedRe.FindAllString(body, -1)) != 1 || !strings.Contains(body, "Nombre de factures <strong>1</strong>") {
		t.Fatalf("after selecting %s: %d, %d rows marked", first, status, len(selectedRe.FindAllString(body, -1)))
	}
	next := nextRe.FindStringSubmatch(body)
	if next == nil {
		t.Fatal("no next page link")
	}
	_, body, queries = b.get(t, html.UnescapeString(next[1]))
	checkBounded(t, "selection page 2", body, queries, 8, 3, 40_000)
	if !strings.Contains(body, "Page 2 sur 501") || len(selectedRe.FindAllString(body, -1)) != 0 ||
		!strings.Contains(body, "Nombre de factures <strong>1</strong>") {
		t.Fatal("page 2 lost the selection or marks a row of page 1")
	}
	toggles2 := toggleRe.FindAllStringSubmatch(body, -1)
	if len(toggles2) != 20 || toggles2[0][2] == first {
		t.Fatalf("page 2: %d rows", len(toggles2))
	}
	second := toggles2[0][2]
	_, body, _ = b.get(t, html.UnescapeString(toggles2[0][1]))
	want := b.amount(t, first, second)
	if !strings.Contains(body, "Page 2 sur 501") || !strings.Contains(body, "Nombre de factures <strong>2</strong>") ||
		!strings.Contains(body, "Montant à régler <strong>"+want+"</strong>") {
		t.Fatalf("two invoices on two pages: totals wrong (want %s)", want)
	}
	// Back to page 1: its row is still marked X.
	prev := prevRe.FindStringSubmatch(body)
	if prev == nil {
		t.Fatal("no previous page link")
	}
	_, body, _ = b.get(t, html.UnescapeString(prev[1]))
	if !strings.Contains(body, "Page 1 sur 501") || len(selectedRe.FindAllString(body, -1)) != 1 ||
		!strings.Contains(body, "Nombre de factures <strong>2</strong>") {
		t.Fatal("page 1 does not show its selected row")
	}
	// "Payer la facture" carries both to the TIPI information page.
	q := url.Values{}
	for _, m := range hiddenIDRe.FindAllStringSubmatch(body, -1) {
		q.Add("facture", m[1])
	}
	if len(q["facture"]) != 2 {
		t.Fatalf("the payment form carries %v", q["facture"])
	}
	status, body, queries = b.get(t, "/paiement/informations?"+q.Encode())
	checkBounded(t, "TIPI information page", body, queries, 8, 2, 20_000)
	if status != http.StatusOK || !strings.Contains(body, "Montant du règlement :</dt><dd>"+want+"</dd>") {
		t.Fatalf("information page: %d, want %s", status, want)
	}

	// A forged selection of 60 invoices: bounded by the commune's maximum (10).
	var ids []string
	if err := b.e.App.DB.Select(&ids, `SELECT id::text FROM invoices WHERE tenant_id = $1 AND account_id = $2 AND number LIKE 'G-%'
		ORDER BY id LIMIT 60`, b.tenant, b.account); err != nil {
		t.Fatal(err)
	}
	status, body, queries = b.get(t, "/paiement?facture="+strings.Join(ids, "&facture="))
	checkBounded(t, "selection page with 60 ids", body, queries, 8, 3, 40_000)
	if status != http.StatusOK || !strings.Contains(body, "Nombre de factures <strong>10</strong>") ||
		!strings.Contains(body, "Montant à régler <strong>"+b.amount(t, ids[:10]...)+"</strong>") {
		t.Fatal("a selection above the batch maximum is not cut to it")
	}
	status, body, queries = b.get(t, "/paiement/informations?facture="+strings.Join(ids, "&facture="))
	if status != http.StatusConflict || len(queries) > 8 || !strings.Contains(body, "Vous pouvez régler au plus 10 factures en un seul paiement.") ||
		!strings.Contains(body, "Nombre de factures <strong>10</strong>") {
		t.Fatalf("information page for 60 invoices: %d, %d statements", status, len(queries))
	}
}

func TestResidentPagesStayCheapWith10000UnpaidInvoices(t *testing.T) {
	b := newBigResident(t)
	for _, p := range []struct {
		path, want  string
		maxInvoices int
	}{
		{"/accueil", "Information importante", 0},
		{"/factures", "Non réglées (10006)", 2},
		{"/factures?statut=non-reglees&page=501", "Page 501 sur 501", 2},
		{"/paiements", "Aucun paiement en ligne pour le moment.", 1},
		{fmt.Sprintf("/factures/%d", b.invoiceID(t, "G-05000")), "Payer la facture", 2},
	} {
		status, body, queries := b.get(t, p.path)
		if status != http.StatusOK || !strings.Contains(body, p.want) {
			t.Errorf("%s: %d, lacks %q", p.path, status, p.want)
		}
		checkBounded(t, p.path, body, queries, 8, p.maxInvoices, 40_000)
	}
}

func TestInvoicePageSaysWhyItCannotBePaid(t *testing.T) {
	b := newBigResident(t)
	detail := func(number string) string {
		t.Helper()
		status, body, queries := b.get(t, fmt.Sprintf("/factures/%d", b.invoiceID(t, number)))
		if status != http.StatusOK {
			t.Fatalf("%s: %d", number, status)
		}
		checkBounded(t, "invoice "+number, body, queries, 8, 3, 20_000)
		return html.UnescapeString(body)
	}
	db := b.e.App.DB
	// Above PayFiP's ceiling (the commune sets none lower).
	if _, err := db.Exec(`INSERT INTO invoices (tenant_id, account_id, number, object, issued_on, due_on, amount_cents)
		VALUES ($1, $2, 'BIG-1', 'Travaux', '2017-11-01', '2017-11-30', 10000001)`, b.tenant, b.account); err != nil {
		t.Fatal(err)
	}
	// A payment in progress on 2017-020-002059, started as the resident does.
	res, body := post(t, b.c, b.e.URL("sistec.localhost", "/paiement"), url.Values{"facture": {fmt.Sprint(b.invoiceID(t, "2017-020-002059"))}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("payment start: %d %s", res.StatusCode, body)
	}
	// A card refused on G-00001 five minutes ago: the commune's delay is 2 h.
	resolved := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	var pid int64
	if err := db.Get(&pid, `INSERT INTO payments (tenant_id, account_id, refdet, id_op, mode, amount_cents, email, status,
			created_at, resolved_at, resolved_by, resultrans)
		VALUES ($1, $2, 'REFUSE0000001', 'op-refused-1', 'ws', 1001, 'demo@demo.fr', 'refused', $3, $4, 'notification', 'R')
		RETURNING id`, b.tenant, b.account, resolved.Add(-time.Minute), resolved); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents, status)
		VALUES ($1, $2, $3, 1001, 'refused')`, b.tenant, pid, b.invoiceID(t, "G-00001")); err != nil {
		t.Fatal(err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	at := resolved.Add(2 * time.Hour).Add(time.Minute - time.Nanosecond).Truncate(time.Minute).In(paris)
	retry := "Vous pourrez effectuer une nouvelle tentative à partir de " + at.Format("15h04") + "."
	if now := time.Now().In(paris); now.YearDay() != at.YearDay() {
		retry = "Vous pourrez effectuer une nouvelle tentative à partir du " + at.Format("02/01/2006 à 15h04") + "."
	}

	for number, reason := range map[string]string{
		"2017-020-001850": "Cette facture est déjà réglée.",
		"2017-020-001402": "Cette facture n'a pas été réglée dans les délais imposés : elle a été transmise en trésorerie.",
		"2017-020-002300": "Ma facture est en prélèvement automatique.",
		"2017-020-002350": "Le paiement a été temporairement suspendu.",
		"2017-020-002360": "Le montant de cette facture est inférieur à 1,00 € : elle ne peut pas être réglée en ligne.",
		"BIG-1":           "Le montant de cette facture dépasse 100 000,00 € : elle ne peut pas être réglée en ligne.",
		"2017-020-002059": "Un paiement est déjà en cours pour cette facture.",
		"G-00001":         retry,
	} {
		page := detail(number)
		if !strings.Contains(page, reason) || strings.Contains(page, `<button type="submit" class="primary">Payer la facture</button>`) {
			t.Errorf("invoice %s: reason %q not shown, or payable", number, reason)
		}
	}
	if page := detail("2017-020-002187"); !strings.Contains(page, `<button type="submit" class="primary">Payer la facture</button>`) {
		t.Error("payable invoice without its button")
	}
	// Invoices held by their attempts stay on the selection page, with the reason.
	_, sel, _ := b.get(t, "/paiement")
	sel = html.UnescapeString(sel)
	if !strings.Contains(sel, "2017-020-002059<br><span class=\"hint\">Un paiement est déjà en cours pour cette facture.</span>") ||
		strings.Contains(sel, "2017-020-002300") || strings.Contains(sel, "2017-020-002360") || strings.Contains(sel, "BIG-1") {
		t.Error("selection page: held invoice not explained, or unpayable ones listed")
	}

	// The whole commune suspended.
	if _, err := db.Exec(`UPDATE tenants SET payments_suspended = true WHERE id = $1`, b.tenant); err != nil {
		t.Fatal(err)
	}
	b.e.App.Tenants.Invalidate()
	if page := detail("2017-020-002187"); !strings.Contains(page, "Le paiement a été temporairement suspendu.") {
		t.Error("suspended commune: reason not shown")
	}
	if page := detail("2017-020-001850"); !strings.Contains(page, "Cette facture est déjà réglée.") {
		t.Error("suspended commune: a paid invoice must still say it is paid")
	}
	_, sel, queries := b.get(t, "/paiement")
	if !strings.Contains(sel, "Le paiement a été temporairement suspendu.") || toggleRe.MatchString(sel) || len(queries) > 6 {
		t.Errorf("suspended commune: selection page offers invoices (%d statements)", len(queries))
	}
}

func TestMesPaiementsIsPaginated(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	// 25 abandoned attempts, one a day.
	if _, err := e.App.DB.Exec(`INSERT INTO payments (tenant_id, account_id, refdet, id_op, mode, amount_cents, email, status,
			created_at, resolved_at, resolved_by, resultrans)
		SELECT a.tenant_id, a.id, 'ABANDON' || lpad(g::text, 6, '0'), 'op-' || g, 'ws', 1000 + g, a.email, 'cancelled',
			timestamptz '2026-01-01 10:00+01' + g * interval '1 day', timestamptz '2026-01-01 10:05+01' + g * interval '1 day', 'notification', 'A'
		FROM accounts a, generate_series(1, 25) g WHERE a.email = 'demo@demo.fr'`); err != nil {
		t.Fatal(err)
	}
	rows := func(body string) int { return strings.Count(body, `<td role="cell" class="num">`) }
	_, page1 := fetch(t, c, e.URL("sistec.localhost", "/paiements"))
	if rows(page1) != 20 || !strings.Contains(page1, "Page 1 sur 2") || !strings.Contains(page1, "10,25 €") || strings.Contains(page1, "10,05 €") {
		t.Fatalf("page 1: %d rows, or not the most recent first", rows(page1))
	}
	next := nextRe.FindStringSubmatch(page1)
	if next == nil {
		t.Fatal("no next page link")
	}
	_, page2 := fetch(t, c, e.URL("sistec.localhost", html.UnescapeString(next[1])))
	if rows(page2) != 5 || !strings.Contains(page2, "Page 2 sur 2") || !strings.Contains(page2, "10,01 €") {
		t.Fatalf("page 2: %d rows", rows(page2))
	}
}
