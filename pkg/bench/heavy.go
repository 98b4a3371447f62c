package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"portail/pkg/imports"
)

// A resident with heavyInvoices unpaid invoices must not make a page slow:
// list, selection and detail are measured for them beside the ordinary
// residents (residentInvoices each), and their p99 must stay within
// heavyMaxRatio times the ordinary one.
const (
	heavyInvoices = 10_000
	heavyMaxRatio = 2.0
	heavyRef      = "H1"
	heavySessions = 4 // sessions of the heavy resident the clients share
)

// heavyRow is one page measured for ordinary residents and for the heavy one.
type heavyRow struct {
	page, label     string
	ordinary, heavy measure
}

func (h heavyRow) ratio() float64 { return float64(h.heavy.p99) / float64(max(h.ordinary.p99, 1)) }

// heavyResident seeds, in the first commune, one more payer with
// heavyInvoices unpaid invoices through the real imports (payers, then one
// invoice file), and logs them in heavySessions times.
func (r *run) heavyResident(ctx context.Context, sd *seeder, base string) ([]*resident, error) {
	c := sd.communes[0]
	email := fmt.Sprintf("%s@%s.example.fr", strings.ToLower(heavyRef), c.slug)
	payers := fmt.Sprintf("reference;nom;email\n%s;%s;%s\n", heavyRef, heavyName(c), email)
	if rep, err := sd.a.Imports.ImportNow(ctx, c.t.ID, imports.KindPayers, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: c.slug + "-heavy-payer.csv", Body: strings.NewReader(payers)}, nil); err != nil || rep.Inserted != 1 {
		return nil, fmt.Errorf("bench: heavy resident's payer: %v (%+v)", err, rep)
	}
	if _, err := r.db.ExecContext(ctx, `UPDATE accounts SET status = 'active', password_changed_at = now(), invoice_alerts = false,
		password_hash = (SELECT password_hash FROM accounts WHERE tenant_id = $1 AND external_ref = 'P1')
		WHERE tenant_id = $1 AND external_ref = $2`, c.t.ID, heavyRef); err != nil {
		return nil, fmt.Errorf("bench: activate the heavy resident: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("numero;reference;objet;date;echeance;montant\n")
	line := make([]byte, 0, 128)
	for k := 1; k <= heavyInvoices; k++ {
		row := row{
			number: fmt.Sprintf("HV-%05d", k),
			payer:  heavyRef,
			object: "Restauration scolaire",
			issued: time.Date(2015, 1, 1+(k*37)%3650, 0, 0, 0, 0, time.UTC),
			cents:  int64(100 + (k*7919)%50000),
		}
		b.Write(row.csv(line[:0]))
	}
	t := time.Now()
	rep, err := sd.a.Imports.ImportNow(ctx, c.t.ID, imports.KindInvoices, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: c.slug + "-heavy.csv", Body: bytes.NewReader(b.Bytes())}, nil)
	if err != nil || rep.Inserted != heavyInvoices {
		return nil, fmt.Errorf("bench: heavy resident's invoices: %v (%d inserted)", err, rep.Inserted)
	}
	if _, err := r.db.ExecContext(ctx, `VACUUM (ANALYZE) invoices`); err != nil {
		return nil, fmt.Errorf("bench: vacuum: %w", err)
	}
	r.progress("heavy resident of %s: %s unpaid invoices imported in %s", c.slug, num(heavyInvoices), time.Since(t).Round(time.Millisecond))

	cl := newClient(2, 30*time.Second)
	var out []*resident
	for range heavySessions {
		ck, err := login(ctx, cl, base, c.host, email)
		if err != nil {
			return nil, err
		}
		res := &resident{c: c, cookie: ck}
		if err := r.db.GetContext(ctx, &res.accountID, `SELECT id FROM accounts WHERE tenant_id = $1 AND external_ref = $2`, c.t.ID, heavyRef); err != nil {
			return nil, err
		}
		// The detail pages of 500 invoices spread over the 10,000.
		if err := r.db.SelectContext(ctx, &res.invoices, `SELECT id FROM invoices WHERE tenant_id = $1 AND account_id = $2
			ORDER BY id`, c.t.ID, res.accountID); err != nil {
			return nil, err
		}
		spread := make([]int64, 0, 500)
		for i := 0; i < len(res.invoices); i += max(1, len(res.invoices)/500) {
			spread = append(spread, res.invoices[i])
		}
		res.invoices = spread
		out = append(out, res)
	}
	return out, nil
}

func heavyName(c *commune) string { return fmt.Sprintf("Dominique Lourd %03d", c.n) }

// heavyRows measures list, selection and detail for the ordinary residents
// rs and then for the heavy resident, at the same concurrency, one after
// the other, and adds them to the report.
func (r *run) heavyRows(ctx context.Context, srv *server, sd *seeder, base string, rs []*resident) error {
	heavy, err := r.heavyResident(ctx, sd, base)
	if err != nil {
		return err
	}
	has := func(s string) func([]byte) bool { return func(b []byte) bool { return bytes.Contains(b, []byte(s)) } }
	pages := []struct {
		page, label, path string
		ordinary, heavy   func([]byte) bool
	}{
		{"list", "GET /factures", "/factures", r.hasName(rs[0]), has(fmt.Sprintf("Non réglées (%d)", heavyInvoices))},
		{"selection", "GET /paiement", "/paiement", has("Factures sélectionnées"), has(fmt.Sprintf("Page 1 sur %d", heavyInvoices/20))},
		{"detail", "GET /factures/:id", "", r.hasName(rs[0]), has("Payer la facture")},
	}
	for _, p := range pages {
		paths := func(*resident) []string { return []string{p.path} }
		if p.path == "" {
			paths = func(res *resident) []string { return pathsOf(res.invoices, "/factures/%d") }
		}
		om, err := r.measureScenario(ctx, srv, r.pageScenario(p.page+" (ordinary)", p.label, base, rs, paths), p.ordinary)
		if err != nil {
			return err
		}
		hm, err := r.measureScenario(ctx, srv, r.pageScenario(p.page+" (10k)", p.label, base, heavy, paths), p.heavy)
		if err != nil {
			return err
		}
		h := heavyRow{page: p.page, label: p.label, ordinary: om, heavy: hm}
		r.progress("%s: p99 ordinary %s, 10k resident %s (ratio %.2f)", p.page, ms(om.p99), ms(hm.p99), h.ratio())
		r.rep.heavy = append(r.rep.heavy, h)
	}
	return nil
}

// printHeavy writes the heavy resident's rows.
func (rep *report) printHeavy(w io.Writer, line string, clients int) {
	if len(rep.heavy) == 0 {
		return
	}
	fmt.Fprintf(w, "10k resident  one resident with %s unpaid invoices beside the ordinary residents (%d invoices each), %d clients each, one after the other\n",
		num(heavyInvoices), residentInvoices, clients)
	fmt.Fprintf(w, "  %-10s %-20s %22s %22s %15s %7s │ %-22s %s\n", "page", "request", "ordinary p50/p99", "10k p50/p99", "req/s ord/10k", "ratio", "target", "")
	for _, h := range rep.heavy {
		ok := h.ratio() <= heavyMaxRatio && h.ordinary.errors == 0 && h.heavy.errors == 0
		fmt.Fprintf(w, "  %-10s %-20s %22s %22s %15s %7.2f │ %-22s %s\n", h.page, h.label,
			ms(h.ordinary.p50)+" / "+ms(h.ordinary.p99), ms(h.heavy.p50)+" / "+ms(h.heavy.p99),
			fmt.Sprintf("%.0f / %.0f", h.ordinary.rps, h.heavy.rps), h.ratio(),
			fmt.Sprintf("p99 ≤ %.0f× ordinary", heavyMaxRatio), verdict(ok))
		if h.ordinary.errors+h.heavy.errors > 0 {
			fmt.Fprintf(w, "  %-10s errors: ordinary %d, 10k %d\n", "", h.ordinary.errors, h.heavy.errors)
		}
	}
	fmt.Fprintln(w, line)
}
