package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/imports"
)

func TestLongHistoryIsPaginatedMostRecentFirst(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	ctx := context.Background()
	sistec, _ := e.App.Tenants.BySlug(ctx, "sistec")
	var b strings.Builder
	b.WriteString("Numéro;Référence redevable;Objet;Date;Echéance;Montant\n")
	for i := 1; i <= 45; i++ {
		fmt.Fprintf(&b, "H-%03d;SISTEC561;Cantine;%02d/%02d/2016;28/12/2016;%d,00\n", i, 1+i%28, 1+i/28*6, i)
	}
	if rep, err := e.App.Imports.ImportNow(ctx, sistec.ID, imports.KindInvoices, imports.Actor{Kind: imports.ActorSystem},
		imports.File{Name: "history.csv", Body: strings.NewReader(b.String())}, nil); err != nil || rep.Status != imports.StatusImported {
		t.Fatal(err, rep.Errors)
	}
	activateWithPassword(t, e, "sistec.localhost", "marie.durand@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "marie.durand@demo.fr", strongPassword, false)
	_, page1 := fetch(t, c, e.URL("sistec.localhost", "/factures"))
	if !strings.Contains(page1, "Non réglées (46)") || !strings.Contains(page1, "Page 1 sur 3") || !strings.Contains(page1, "Page suivante") {
		t.Fatalf("page 1 lacks counts or pager")
	}
	// The most recent first: the demo invoice of 2017 heads the list.
	if i, j := strings.Index(page1, "2017-020-002060"), strings.Index(page1, "H-0"); i < 0 || j < 0 || i > j {
		t.Fatalf("2017 invoice not first (%d, %d)", i, j)
	}
	seen := map[string]bool{}
	for p := 1; p <= 3; p++ {
		_, body := fetch(t, c, e.URL("sistec.localhost", fmt.Sprintf("/factures?statut=non-reglees&page=%d", p)))
		n := strings.Count(body, `<a href="/factures/`)
		if want := map[int]int{1: 20, 2: 20, 3: 6}[p]; n != want {
			t.Errorf("page %d: %d rows, want %d", p, n, want)
		}
		for _, f := range strings.Split(body, `">H-`)[1:] {
			seen["H-"+f[:3]] = true
		}
	}
	if len(seen) != 45 {
		t.Errorf("pages show %d distinct invoices of 45", len(seen))
	}
}
