package invoice

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"portail/pkg/dbtest"
	"portail/pkg/tenant"
)

func TestTenantAndAccountIsolation(t *testing.T) {
	d := dbtest.New(t)
	a := fixtureOn(t, d, "sistec")
	b := fixtureOn(t, d, "autreville")
	mine := a.account(t, "SISTEC560", "Test SISTEC560")
	neighbour := a.account(t, "SISTEC561", "Voisin")
	foreign := b.account(t, "SISTEC560", "Même référence, autre commune")
	a.seed(t, csvOf(manualLine, "N-1;SISTEC561;Voisin;10/07/2017;21/07/2017;5,00"))
	// The same invoice number in another commune is another invoice.
	b.seed(t, csvOf(manualLine))

	own := a.invoiceByNumber(t, "2017-020-002059")
	theirs := a.invoiceByNumber(t, "N-1")
	other := b.invoiceByNumber(t, "2017-020-002059")
	if own.ID == other.ID && own.TenantID == other.TenantID {
		t.Fatal("one row for two tenants")
	}
	if got, err := a.store.Get(a.ctx, a.t.ID, mine, own.ID); err != nil || got.Number != own.Number {
		t.Fatalf("own invoice: %v", err)
	}
	for name, try := range map[string]func() error{
		"neighbour's invoice": func() error { _, err := a.store.Get(a.ctx, a.t.ID, mine, theirs.ID); return err },
		"other tenant's id":   func() error { _, err := a.store.Get(a.ctx, a.t.ID, mine, other.ID); return err },
		"other tenant's, from its account id": func() error {
			_, err := a.store.Get(a.ctx, a.t.ID, foreign, other.ID)
			return err
		},
		"own invoice through the other tenant": func() error { _, err := a.store.Get(a.ctx, b.t.ID, mine, own.ID); return err },
		"mark neighbour's":                     func() error { return a.store.MarkDeclaredPaid(a.ctx, a.t.ID, mine, theirs.ID, true) },
		"mark other tenant's":                  func() error { return a.store.MarkDeclaredPaid(a.ctx, a.t.ID, mine, other.ID, true) },
		"unmark neighbour's":                   func() error { return a.store.MarkDeclaredPaid(a.ctx, a.t.ID, mine, theirs.ID, false) },
	} {
		if err := try(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	if inv := a.invoiceByNumber(t, "N-1"); inv.DeclaredPaidAt != nil {
		t.Fatal("marked another account's invoice")
	}
	list, total, err := a.store.Search(a.ctx, a.t.ID, Query{AccountID: mine, PerPage: 50})
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != own.ID {
		t.Fatalf("Search = %+v %d %v", list, total, err)
	}
	if list, total, _ := a.store.Search(a.ctx, b.t.ID, Query{AccountID: mine, PerPage: 50}); total != 0 || len(list) != 0 {
		t.Fatal("an account id listed another tenant's invoices")
	}
	// The whole commune: its own invoices only, whatever is asked.
	if list, total, _ := a.store.Search(a.ctx, a.t.ID, Query{PerPage: 50}); total != 2 || len(list) != 2 {
		t.Fatalf("commune-wide search: %d of %d", len(list), total)
	}
	if _, err := a.store.GetInCommune(a.ctx, a.t.ID, other.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another commune's invoice by id: %v", err)
	}
	if got, err := a.store.GetInCommune(a.ctx, a.t.ID, theirs.ID); err != nil || got.PayerRef != "SISTEC561" || got.PayerName != "Voisin" {
		t.Fatalf("staff detail: %+v %v", got, err)
	}
	if c, _ := a.store.Counts(a.ctx, a.t.ID, neighbour); c[StatusUnpaid] != 1 {
		t.Fatalf("counts %v", c)
	}
	// A key outside the invoice's tenant is never served.
	forged := own
	forged.PDFKey, forged.PDFSHA256 = fmt.Sprintf("t/%d/invoices/x/y.pdf", b.t.ID), strings.Repeat("0", 64)
	if _, _, err := OpenPDF(a.ctx, nil, forged); err == nil || !strings.Contains(err.Error(), "outside tenant") {
		t.Fatalf("forged key: %v", err)
	}
	if _, _, err := OpenPDF(a.ctx, nil, own); !errors.Is(err, ErrNoPDF) {
		t.Fatalf("no PDF: %v", err)
	}
}

// residentStatuses are the invoices a resident's list shows.
var residentStatuses = []Status{StatusUnpaid, StatusPaid, StatusTreasury}

func TestListPaginationAndFilters(t *testing.T) {
	f := newFixture(t)
	acc := f.account(t, "P1", "Payeur")
	h := "numero;reference;objet;date;echeance;montant;statut\n"
	var b strings.Builder
	b.WriteString(h)
	day := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 45 {
		status := "non réglée"
		switch i % 3 {
		case 1:
			status = "réglée"
		case 2:
			status = "trésorerie"
		}
		d := day.AddDate(0, 0, i/2) // pairs share a date: id breaks ties
		fmt.Fprintf(&b, "L-%02d;P1;x;%s;%s;1,00;%s\n", i, FormatDate(d), FormatDate(d.AddDate(0, 1, 0)), status)
	}
	b.WriteString("L-cancel;P1;x;01/01/2015;01/02/2015;1,00;annulée\n")
	f.seed(t, b.String())

	var seen []string
	for page := 1; ; page++ {
		list, total, err := f.store.Search(f.ctx, f.t.ID, Query{AccountID: acc, Status: residentStatuses, Page: page, PerPage: 10})
		if err != nil || total != 45 {
			t.Fatalf("page %d: total %d, %v", page, total, err)
		}
		if len(list) == 0 {
			break
		}
		for _, inv := range list {
			seen = append(seen, inv.Number)
		}
	}
	if len(seen) != 45 || seen[0] != "L-44" || seen[1] != "L-43" || seen[44] != "L-00" {
		t.Fatalf("order: %v", seen)
	}
	for i := 1; i < len(seen); i++ {
		a, b := f.invoiceByNumber(t, seen[i-1]), f.invoiceByNumber(t, seen[i])
		if a.IssuedOn.Before(b.IssuedOn) || (a.IssuedOn.Equal(b.IssuedOn) && a.ID < b.ID) {
			t.Fatalf("%s before %s", seen[i-1], seen[i])
		}
	}
	for st, want := range map[Status]int{StatusUnpaid: 15, StatusPaid: 15, StatusTreasury: 15} {
		list, total, err := f.store.Search(f.ctx, f.t.ID, Query{AccountID: acc, Status: []Status{st}, Page: 2, PerPage: 10})
		if err != nil || total != want || len(list) != 5 {
			t.Fatalf("%s: %d %d %v", st, total, len(list), err)
		}
		for _, inv := range list {
			if inv.Status != st {
				t.Fatalf("%s listed under %s", inv.Status, st)
			}
		}
	}
	if _, _, err := f.store.Search(f.ctx, f.t.ID, Query{Sort: "issued_on; DROP TABLE invoices"}); err == nil {
		t.Fatal("unknown sort accepted")
	}
	// Page numbers past the end, up to the largest int, give an empty page:
	// (page-1)*perPage must not overflow into a negative OFFSET.
	for _, page := range []int{6, 1 << 40, math.MaxInt64/10 + 2, math.MaxInt} {
		list, total, err := f.store.Search(f.ctx, f.t.ID, Query{AccountID: acc, Status: residentStatuses, Page: page, PerPage: 10})
		if err != nil || total != 45 || len(list) != 0 {
			t.Fatalf("page %d: %d rows of %d, %v", page, len(list), total, err)
		}
	}
	if list, _, _ := f.store.Search(f.ctx, f.t.ID, Query{AccountID: acc, PerPage: 1000}); len(list) != MaxPerPage && len(list) != 46 {
		t.Fatalf("per page not bounded: %d", len(list))
	}
	counts, _ := f.store.Counts(f.ctx, f.t.ID, acc)
	if counts[StatusUnpaid] != 15 || counts[StatusPaid] != 15 || counts[StatusTreasury] != 15 || len(counts) != 3 {
		t.Fatalf("counts %v", counts)
	}
	cancelled := f.invoiceByNumber(t, "L-cancel")
	if _, err := f.store.Get(f.ctx, f.t.ID, acc, cancelled.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancelled invoice shown: %v", err)
	}
}

func TestMarkDeclaredPaid(t *testing.T) {
	f := newFixture(t)
	acc := f.account(t, "SISTEC560", "Test SISTEC560")
	f.seed(t, "numero;reference;objet;date;echeance;montant;statut\n"+
		"U;SISTEC560;x;10/07/2017;21/07/2017;1,00;\n"+
		"P;SISTEC560;x;10/07/2017;21/07/2017;1,00;réglée\n"+
		"T;SISTEC560;x;10/07/2017;21/07/2017;1,00;trésorerie\n")
	u, p, tr := f.invoiceByNumber(t, "U"), f.invoiceByNumber(t, "P"), f.invoiceByNumber(t, "T")
	if err := f.store.MarkDeclaredPaid(f.ctx, f.t.ID, acc, u.ID, true); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Get(f.ctx, f.t.ID, acc, u.ID)
	if got.DeclaredPaidAt == nil || got.Status != StatusUnpaid {
		t.Fatalf("after marking: %+v", got)
	}
	first := *got.DeclaredPaidAt
	if err := f.store.MarkDeclaredPaid(f.ctx, f.t.ID, acc, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if again, _ := f.store.Get(f.ctx, f.t.ID, acc, u.ID); !again.DeclaredPaidAt.Equal(first) {
		t.Fatal("marking twice moved the date")
	}
	if err := f.store.MarkDeclaredPaid(f.ctx, f.t.ID, acc, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Get(f.ctx, f.t.ID, acc, u.ID); got.DeclaredPaidAt != nil || got.Status != StatusUnpaid {
		t.Fatalf("after unmarking: %+v", got)
	}
	if err := f.store.MarkDeclaredPaid(f.ctx, f.t.ID, acc, u.ID, false); err != nil {
		t.Fatalf("unmarking twice: %v", err)
	}
	if err := f.store.MarkDeclaredPaid(f.ctx, f.t.ID, acc, tr.ID, true); err != nil {
		t.Fatalf("treasury: %v", err)
	}
	if err := f.store.MarkDeclaredPaid(f.ctx, f.t.ID, acc, p.ID, true); !errors.Is(err, ErrNotDeclarable) {
		t.Fatalf("paid: %v", err)
	}
	if err := f.store.MarkDeclaredPaid(f.ctx, f.t.ID, acc, 999999, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestGenerateInvoicePDF(t *testing.T) {
	tn := &tenant.Tenant{ID: 1, Name: "MAIRIE DE SISTEC", ServiceLabel: "Facturation Restauration scolaire", PrimaryHost: "sistec.localhost"}
	inv := Invoice{Number: "2017-020-002059", Object: "Multi Services – été", AmountCents: 24311,
		IssuedOn: time.Date(2017, 7, 10, 0, 0, 0, 0, time.UTC), DueOn: time.Date(2017, 7, 21, 0, 0, 0, 0, time.UTC)}
	b, err := GenerateInvoicePDF(tn, inv, "Test SISTEC560")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("%PDF-")) || !bytes.Contains(b, []byte("%%EOF")) {
		t.Fatal("not a PDF")
	}
	// Core fonts use Windows-1252: "é" is 0xE9 and "€" 0x80 in the page text.
	for _, s := range []string{"MAIRIE DE SISTEC", "Facture n\xb0 2017-020-002059", "10/07/2017", "21/07/2017",
		"243,11 \x80", "Multi Services \x96 \xe9t\xe9", "Test SISTEC560", "\xc9ch\xe9ance", "Restauration scolaire"} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("PDF lacks %q", s)
		}
	}
	again, _ := GenerateInvoicePDF(tn, inv, "Test SISTEC560")
	if !bytes.Equal(b, again) {
		t.Error("PDF not deterministic")
	}
	if _, err := GenerateInvoicePDF(nil, inv, ""); err == nil {
		t.Error("no tenant accepted")
	}
}
