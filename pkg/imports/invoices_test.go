package imports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"portail/pkg/dbtest"
	"portail/pkg/invoice"
)

func TestImportManualInvoice(t *testing.T) {
	f := newFixture(t)
	acc := f.account(t, "SISTEC560", "Test SISTEC560")
	pdf := fakePDF("facture 2017-020-002059")
	rep := f.mustImport(t, csvOf(manualLine),
		zipOf(t, map[string][]byte{"factures/2017-020-002059.PDF": pdf, "autre/9999.pdf": fakePDF("x")}))
	if rep.Status != StatusImported || rep.Lines != 1 || rep.Inserted != 1 || rep.Updated != 0 || rep.Unchanged != 0 ||
		rep.PDFs != 1 || rep.Alerts != 1 || rep.Encoding != EncodingUTF8 || rep.BatchID == 0 || len(rep.FileSHA256) != 64 ||
		rep.Rejected != 0 || rep.Progress.Done != 1 || rep.Progress.Stage != StageDone || rep.Uploader.Kind != ActorCLI {
		t.Fatalf("report %+v", rep)
	}

	store := &invoice.Store{DB: f.d}
	list, total, err := store.Search(f.ctx, f.t.ID, invoice.Query{AccountID: acc, Status: []invoice.Status{invoice.StatusUnpaid}})
	if err != nil || total != 1 || len(list) != 1 {
		t.Fatalf("List = %v, %d, %v", list, total, err)
	}
	inv := list[0]
	if inv.Number != "2017-020-002059" || inv.Object != "Multi Services" || invoice.FormatDate(inv.IssuedOn) != "10/07/2017" ||
		invoice.FormatDate(inv.DueOn) != "21/07/2017" || inv.AmountCents != 24311 || inv.Amount() != "243,11 €" ||
		inv.Status != invoice.StatusUnpaid || inv.AccountID != acc || inv.TenantID != f.t.ID || inv.DirectDebit ||
		inv.PaymentSuspended || inv.PaidAt != nil || inv.ImportBatchID == nil || *inv.ImportBatchID != rep.BatchID {
		t.Fatalf("invoice %+v", inv)
	}
	wantKey := fmt.Sprintf("t/%d/invoices/2017-020-002059/%s.pdf", f.t.ID, inv.PDFSHA256)
	if inv.PDFKey != wantKey || inv.PDFSize != int64(len(pdf)) {
		t.Fatalf("pdf %q %d, want %q", inv.PDFKey, inv.PDFSize, wantKey)
	}
	rc, _, err := invoice.OpenPDF(f.ctx, f.s3.store, inv.Invoice)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, pdf) {
		t.Fatal("PDF differs")
	}
	if keys := f.s3.keys(fmt.Sprintf("t/%d/invoices/", f.t.ID)); len(keys) != 1 {
		t.Fatalf("PDF of a number not in the file stored: %v", keys)
	}
	// The upload itself is kept, under the batch, for the record.
	staged := f.s3.keys(fmt.Sprintf("t/%d/imports/%d/", f.t.ID, rep.BatchID))
	if len(staged) != 2 {
		t.Fatalf("staged files %v", staged)
	}

	es := emails(t, f.d)
	if len(es) != 1 {
		t.Fatalf("emails %+v", es)
	}
	e := es[0]
	if e.TenantID != f.t.ID || e.To != "sistec560@example.fr" || e.Template != "new_invoices" ||
		e.Data["Count"] != float64(1) || e.Data["DisplayName"] != "Test SISTEC560" || e.Data["AccountID"] != float64(acc) ||
		fmt.Sprint(e.Data["Numbers"]) != "[2017-020-002059]" {
		t.Fatalf("email %+v", e)
	}
	b, err := f.s.Batch(f.ctx, f.t.ID, rep.BatchID)
	if err != nil || b.Status != StatusImported || b.Inserted != 1 || b.Filename != "factures.csv" || b.ZipFilename != "pdfs.zip" ||
		b.ActorKind != ActorCLI || b.FinishedAt == nil || b.StartedAt == nil {
		t.Fatalf("batch %+v %v", b, err)
	}
}

func TestImportRejectsBadFiles(t *testing.T) {
	f := newFixture(t)
	f.account(t, "P1", "Payeur Un")
	f.account(t, "P2", "Payeur Deux")
	f.mustImport(t, csvOf(
		"OLD-1;P1;Ancienne;01/06/2017;30/06/2017;10,00",
		"OLD-2;P2;Ancienne;01/06/2017;30/06/2017;20,00",
	), nil)
	if _, err := f.d.Exec(`UPDATE invoices SET status = 'paid', paid_at = now(), paid_how = 'online' WHERE number = 'OLD-2'`); err != nil {
		t.Fatal(err)
	}
	latin, _ := charmap.Windows1252.NewEncoder().String("é")
	good := "NEW-1;P1;Bonne ligne;10/07/2017;21/07/2017;5,00"
	many := header
	for i := range 4 {
		many += fmt.Sprintf("M-%d;P1;x;10/07/2017;21/07/2017;1,00\n", i)
	}

	type want struct {
		line   int
		reason string
	}
	cases := []struct {
		name  string
		csv   string
		zip   []byte
		max   int
		wants []want
	}{
		{"empty file", "", nil, 0, []want{{0, "Fichier vide"}}},
		{"header only", header, nil, 0, []want{{0, "Fichier vide"}}},
		{"blank lines only", header + ";;;;;\n\n", nil, 0, []want{{0, "Fichier vide"}}},
		{"utf-16", "\xFF\xFEN\x00u\x00", nil, 0, []want{{0, "UTF-16"}}},
		{"spreadsheet", "PK\x03\x04\x14\x00", nil, 0, []want{{0, "Excel"}}},
		{"binary", "numero;x\x00\x01\x02", nil, 0, []want{{0, "illisible"}}},
		{"mixed encodings", header + "X;P1;é" + latin + ";10/07/2017;21/07/2017;1\n", nil, 0, []want{{0, "incohérent"}}},
		{"comma separated", "numero,reference,objet,date,echeance,montant\nA,P1,x,10/07/2017,21/07/2017,1\n", nil, 0, []want{{0, "Séparateur"}}},
		{"tab separated", "numero\treference\tobjet\tdate\techeance\tmontant\nA\tP1\tx\t10/07/2017\t21/07/2017\t1\n", nil, 0, []want{{0, "Séparateur"}}},
		{"missing columns", "numero;reference;objet;date\nA;P1;x;10/07/2017\n", nil, 0, []want{{0, "Colonnes obligatoires absentes de la ligne d'en-tête : échéance, montant"}}},
		{"no header", good + "\n", nil, 0, []want{{0, "en-tête"}}},
		{"too many lines", many, nil, 3, []want{{0, "plus de 3 lignes"}}},
		{"too many lines, quoted", strings.ReplaceAll(many, ";x;", ";\"x\";"), nil, 3, []want{{0, "plus de 3 lignes"}}},
		{"line too long", header + "A;P1;" + strings.Repeat("x", DefaultMaxLineBytes) + ";10/07/2017;21/07/2017;1\n", nil, 0,
			[]want{{0, "Ligne 2 trop longue : plus de 64 Kio"}}},
		{"quote never closed", header + "A;P1;\"x;10/07/2017;21/07/2017;1\n" + strings.Repeat("B;P1;x;10/07/2017;21/07/2017;1\n", 20000), nil, 0,
			[]want{{0, "Ligne 2 : enregistrement trop long"}}},
		{"bad dates", csvOf(good, "A;P1;x;31/02/2017;21/07/2017;1", "B;P1;x;10/07/2017;2017-07-21;1", "C;P1;x;;21/07/2017;1"), nil, 0,
			[]want{{3, "Date inexistante « 31/02/2017 »"}, {4, "Échéance : Date invalide « 2017-07-21 » : format attendu JJ/MM/AAAA"}, {5, "Date vide"}}},
		{"due before issue", csvOf("A;P1;x;10/07/2017;09/07/2017;1"), nil, 0, []want{{2, "L'échéance précède la date de la facture"}}},
		{"bad amounts", csvOf("A;P1;x;10/07/2017;21/07/2017;12,345", good, "B;P1;x;10/07/2017;21/07/2017;abc", "C;P1;x;10/07/2017;21/07/2017;1.234", "D;P1;x;10/07/2017;21/07/2017;-3,00", "E;P1;x;10/07/2017;21/07/2017;"), nil, 0,
			[]want{{2, "plus de deux décimales"}, {4, "Montant invalide « abc »"}, {5, "ambigu"}, {6, "Montant négatif"}, {7, "Montant vide"}}},
		{"number twice", csvOf(good, "X;P1;x;10/07/2017;21/07/2017;1", "NEW-1;P2;y;10/07/2017;21/07/2017;2"), nil, 0,
			[]want{{4, "Numéro de facture en double dans le fichier (déjà ligne 2)"}}},
		{"unknown payer", csvOf(good, "A;NOBODY;x;10/07/2017;21/07/2017;1"), nil, 0, []want{{3, "Redevable inconnu : « NOBODY »"}}},
		{"bad number", csvOf("2017/020;P1;x;10/07/2017;21/07/2017;1", ";P1;x;10/07/2017;21/07/2017;1"), nil, 0,
			[]want{{2, "Numéro de facture invalide"}, {3, "Numéro de facture vide"}}},
		{"column count", csvOf("A;P1;x;10/07/2017;21/07/2017"), nil, 0, []want{{2, "Nombre de colonnes incorrect : 5 au lieu de 6"}}},
		{"bad quotes", csvOf("A;P1;x \"y\";10/07/2017;21/07/2017;1", good), nil, 0, []want{{2, "Guillemets"}}},
		{"PDF missing from the ZIP", csvOf(good, "OLD-1;P1;Ancienne;01/06/2017;30/06/2017;10,00"), zipOf(t, map[string][]byte{"other.pdf": fakePDF("x")}), 0,
			[]want{{2, "PDF absent de l'archive (NEW-1.pdf)"}}},
		{"not a PDF", csvOf(good), zipOf(t, map[string][]byte{"NEW-1.pdf": []byte("<html>")}), 0, []want{{2, "n'est pas un PDF"}}},
		{"two PDFs", csvOf(good), zipOf(t, map[string][]byte{"a/NEW-1.pdf": fakePDF("1"), "b/new-1.PDF": fakePDF("2")}), 0, []want{{2, "Plusieurs PDF"}}},
		{"not a ZIP", csvOf(good), []byte("PK but no archive"), 0, []want{{0, "n'est pas un fichier ZIP lisible"}}},
		{"payer change", csvOf(good, "OLD-1;P2;Ancienne;01/06/2017;30/06/2017;10,00"), nil, 0, []want{{3, "appartient déjà au redevable « P1 »"}}},
		{"paid amount change", csvOf("OLD-2;P2;Ancienne;01/06/2017;30/06/2017;25,00"), nil, 0, []want{{2, "déjà réglée"}}},
		{"several errors on one line", csvOf("Z;NOBODY;x;10/07/2017;21/07/2017;1"), zipOf(t, nil), 0,
			[]want{{2, "Redevable inconnu : « NOBODY » ; PDF absent de l'archive"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(t, f.d)
			batches := count(t, f.d, `SELECT count(*) FROM import_batches`)
			f.s.Limits.MaxLines = c.max
			defer func() { f.s.Limits.MaxLines = 0 }()
			rep, err := f.importNow(t, c.csv, c.zip)
			if err != nil || rep.Status != StatusRejected || !rep.Refused() {
				t.Fatalf("err = %v, report %+v", err, rep)
			}
			if rep.Rejected != len(c.wants) || len(rep.Errors) != len(c.wants) {
				t.Fatalf("report: rejected %d, errors %+v", rep.Rejected, rep.Errors)
			}
			for i, w := range c.wants {
				e := rep.Errors[i]
				if e.Line != w.line || !strings.Contains(e.Reason, w.reason) {
					t.Errorf("error %d = line %d %q; want line %d with %q", i, e.Line, e.Reason, w.line, w.reason)
				}
			}
			if rep.Inserted+rep.Updated+rep.Unchanged+rep.Alerts+rep.PDFs != 0 {
				t.Errorf("counts in a rejected report: %+v", rep)
			}
			if after := snapshot(t, f.d); after != before {
				t.Fatal("a rejected file changed invoices or jobs")
			}
			// The refusal is journaled with its errors, for the staff screens.
			if n := count(t, f.d, `SELECT count(*) FROM import_batches`); n != batches+1 {
				t.Fatalf("journal: %d batches, want %d", n, batches+1)
			}
			if n := count(t, f.d, `SELECT count(*) FROM import_errors WHERE tenant_id = $1 AND batch_id = $2`, f.t.ID, rep.BatchID); n != len(c.wants) {
				t.Fatalf("journal: %d errors", n)
			}
		})
	}
	if keys := f.s3.keys(fmt.Sprintf("t/%d/invoices/", f.t.ID)); len(keys) != 0 {
		t.Fatalf("PDFs uploaded for rejected files: %v", keys)
	}
	// The staff screens read the journal back.
	batches, err := f.s.Batches(f.ctx, f.t.ID, 0)
	if err != nil || len(batches) != len(cases)+1 || batches[0].Status != StatusRejected || batches[len(batches)-1].Status != StatusImported {
		t.Fatalf("batches %+v %v", batches, err)
	}
	errs, err := f.s.Errors(f.ctx, f.t.ID, batches[0].ID, "error", 0, 10)
	if err != nil || len(errs) != 1 || errs[0].Line != 2 || !strings.Contains(errs[0].Reason, "PDF absent") {
		t.Fatalf("batch errors %+v %v", errs, err)
	}
	if other, _ := f.s.Errors(f.ctx, f.t.ID+1, batches[0].ID, "error", 0, 10); len(other) != 0 {
		t.Fatal("another tenant read the journal")
	}
	if _, err := f.s.Report(f.ctx, f.t.ID+1, batches[0].ID, 0, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant read the batch: %v", err)
	}
	// A rejected file sent again is refused again: the refusal did not mark
	// its identity as imported.
	for range 2 {
		rep, err := f.importNow(t, csvOf(good, "A;NOBODY;x;10/07/2017;21/07/2017;1"), nil)
		if err != nil || rep.Status != StatusRejected || rep.AlreadyImported {
			t.Fatalf("refusal: %v %+v", err, rep)
		}
	}
}

func TestImportErrorReportIsBounded(t *testing.T) {
	f := newFixture(t)
	f.s.Limits.MaxErrors = 5
	var b strings.Builder
	b.WriteString(header)
	for i := range 50 {
		fmt.Fprintf(&b, "N%d;NOBODY;x;10/07/2017;21/07/2017;1\n", i)
	}
	rep, err := f.importNow(t, b.String(), nil)
	if err != nil || rep.Rejected != 50 || len(rep.Errors) != 5 || rep.Errors[0].Line != 2 || rep.NextErrorsFrom != 0 {
		t.Fatalf("%v %+v", err, rep)
	}
	// The stored ones come by pages.
	f.s.Limits.MaxErrors = 0
	rep, _ = f.importNow(t, b.String(), nil)
	page, err := f.s.Report(f.ctx, f.t.ID, rep.BatchID, 0, 20)
	if err != nil || len(page.Errors) != 20 || page.NextErrorsFrom != 22 {
		t.Fatalf("first page %v %d %d", err, len(page.Errors), page.NextErrorsFrom)
	}
	last, _ := f.s.Report(f.ctx, f.t.ID, rep.BatchID, 42, 20)
	if len(last.Errors) != 10 || last.Errors[0].Line != 42 || last.NextErrorsFrom != 0 {
		t.Fatalf("last page %+v", last.Errors)
	}
}

func TestImportSameFileTwice(t *testing.T) {
	f := newFixture(t)
	f.account(t, "SISTEC560", "Test SISTEC560")
	file := csvOf(manualLine, "2017-020-002060;SISTEC560;Cantine;10/07/2017;21/07/2017;12,00")
	z := zipOf(t, map[string][]byte{"2017-020-002059.pdf": fakePDF("1"), "2017-020-002060.pdf": fakePDF("2")})
	first := f.mustImport(t, file, z)
	if first.Inserted != 2 || first.Alerts != 1 {
		t.Fatalf("first %+v", first)
	}
	before := snapshot(t, f.d)
	f.nowVal = f.nowVal.Add(time.Hour)
	again := f.mustImport(t, file, z)
	if again.Status != StatusDuplicate || !again.AlreadyImported || again.DuplicateOf != first.BatchID ||
		again.BatchID == first.BatchID || again.Inserted+again.Updated+again.Alerts+again.PDFs != 0 {
		t.Fatalf("again %+v", again)
	}
	// Known at upload: nothing was staged for it.
	if keys := f.s3.keys(fmt.Sprintf("t/%d/imports/%d/", f.t.ID, again.BatchID)); len(keys) != 0 {
		t.Fatalf("a duplicate was staged: %v", keys)
	}
	// The same CSV with other PDFs is another import.
	other := f.mustImport(t, file, zipOf(t, map[string][]byte{"2017-020-002059.pdf": fakePDF("1"), "2017-020-002060.pdf": fakePDF("2 bis")}))
	if other.AlreadyImported || other.Updated != 1 || other.PDFs != 1 {
		t.Fatalf("other PDFs %+v", other)
	}
	// The same content in another file (other line order) is idempotent by number.
	reordered := csvOf("2017-020-002060;SISTEC560;Cantine;10/07/2017;21/07/2017;12,00", manualLine)
	third := f.mustImport(t, reordered, nil)
	if third.AlreadyImported || third.Inserted != 0 || third.Updated != 0 || third.Unchanged != 2 || third.PDFs != 0 || third.Alerts != 0 {
		t.Fatalf("third %+v", third)
	}
	if len(emails(t, f.d)) != 1 || len(f.s3.keys(fmt.Sprintf("t/%d/invoices/", f.t.ID))) != 3 {
		t.Fatalf("emails %d, PDFs %v", len(emails(t, f.d)), f.s3.keys(fmt.Sprintf("t/%d/invoices/", f.t.ID)))
	}
	_ = before
}

func TestImportUpdates(t *testing.T) {
	f := newFixture(t)
	acc := f.account(t, "SISTEC560", "Test SISTEC560")
	f.mustImport(t, csvOf(manualLine, "A-2;SISTEC560;Cantine;01/08/2017;31/08/2017;10,00"),
		zipOf(t, map[string][]byte{"2017-020-002059.pdf": fakePDF("v1"), "A-2.pdf": fakePDF("a2")}))
	orig := f.invoiceByNumber(t, "2017-020-002059")
	f.nowVal = f.nowVal.Add(24 * time.Hour)

	// Amount and object corrected, PDF replaced, one new invoice; no ZIP
	// entry for A-2: it keeps its PDF.
	rep := f.mustImport(t, csvOf(
		"2017-020-002059;SISTEC560;Multi Services (corrigée);10/07/2017;21/07/2017;240,00",
		"A-2;SISTEC560;Cantine;01/08/2017;31/08/2017;10,00",
		"A-3;SISTEC560;Garderie;01/09/2017;30/09/2017;7,50",
	), zipOf(t, map[string][]byte{"2017-020-002059.pdf": fakePDF("v2"), "A-3.pdf": fakePDF("a3")}))
	if rep.Inserted != 1 || rep.Updated != 1 || rep.Unchanged != 1 || rep.PDFs != 2 || rep.Alerts != 1 {
		t.Fatalf("report %+v", rep)
	}
	inv := f.invoiceByNumber(t, "2017-020-002059")
	if inv.ID != orig.ID || inv.AmountCents != 24000 || inv.Object != "Multi Services (corrigée)" ||
		inv.PDFSHA256 == orig.PDFSHA256 || inv.PDFKey == orig.PDFKey || !inv.UpdatedAt.After(orig.UpdatedAt) ||
		!inv.CreatedAt.Equal(orig.CreatedAt) || *inv.ImportBatchID != rep.BatchID {
		t.Fatalf("updated invoice %+v (was %+v)", inv, orig)
	}
	if rc, _, err := f.s3.store.Get(f.ctx, orig.PDFKey, orig.PDFSHA256); err != nil {
		t.Fatal("the old PDF object was overwritten or removed")
	} else {
		rc.Close()
	}
	if a2 := f.invoiceByNumber(t, "A-2"); a2.PDFKey == "" {
		t.Fatal("A-2 lost its PDF")
	}
	// The alert is about the new invoice only.
	last := emails(t, f.d)[1]
	if last.Data["Count"] != float64(1) || fmt.Sprint(last.Data["Numbers"]) != "[A-3]" || last.Data["AccountID"] != float64(acc) {
		t.Fatalf("alert %+v", last)
	}
}

func TestImportStatusColumns(t *testing.T) {
	f := newFixture(t)
	acc := f.account(t, "P1", "Payeur")
	h := "numero;reference;objet;date;echeance;montant;statut;prelevement;suspendu\n"
	f.mustImport(t, h+
		"S-1;P1;x;10/07/2017;21/07/2017;1,00;;;\n"+
		"S-2;P1;x;10/07/2017;21/07/2017;2,00;réglée;;\n"+
		"S-3;P1;x;10/07/2017;21/07/2017;3,00;trésorerie;;\n"+
		"S-4;P1;x;10/07/2017;21/07/2017;4,00;non réglée;oui;\n"+
		"S-5;P1;x;10/07/2017;21/07/2017;5,00;;non;oui\n"+
		"S-6;P1;x;10/07/2017;21/07/2017;6,00;réglée;oui;\n", nil)
	check := func(number string, status invoice.Status, how string, dd, susp bool) invoice.Invoice {
		t.Helper()
		inv := f.invoiceByNumber(t, number)
		if inv.Status != status || inv.PaidHow != how || inv.DirectDebit != dd || inv.PaymentSuspended != susp ||
			(status == invoice.StatusPaid) != (inv.PaidAt != nil) {
			t.Fatalf("%s: %+v", number, inv)
		}
		return inv
	}
	check("S-1", invoice.StatusUnpaid, "", false, false)
	paid := check("S-2", invoice.StatusPaid, invoice.PaidElsewhere, false, false)
	check("S-3", invoice.StatusTreasury, "", false, false)
	check("S-4", invoice.StatusUnpaid, "", true, false)
	check("S-5", invoice.StatusUnpaid, "", false, true)
	check("S-6", invoice.StatusPaid, invoice.PaidDirectDebit, true, false)
	// Alerts count unpaid new invoices only.
	if e := emails(t, f.d); len(e) != 1 || e[0].Data["Count"] != float64(3) {
		t.Fatalf("alerts %+v", e)
	}

	// A later export: blank cells keep values, a paid invoice is never
	// reopened, a treasury one can come back, a payment made on the portal
	// meanwhile is kept.
	if _, err := f.d.Exec(`UPDATE invoices SET status = 'paid', paid_at = now(), paid_how = 'online' WHERE number = 'S-1'`); err != nil {
		t.Fatal(err)
	}
	f.nowVal = f.nowVal.Add(time.Hour)
	rep := f.mustImport(t, h+
		"S-1;P1;x;10/07/2017;21/07/2017;1,00;non réglée;;\n"+
		"S-2;P1;x;10/07/2017;21/07/2017;2,00;non réglée;;\n"+
		"S-3;P1;x;10/07/2017;21/07/2017;3,00;non réglée;;\n"+
		"S-4;P1;x;10/07/2017;21/07/2017;4,00;;;\n"+
		"S-5;P1;x;10/07/2017;21/07/2017;5,00;;;non\n"+
		"S-6;P1;x;10/07/2017;21/07/2017;6,00;;;\n", nil)
	if rep.Updated != 2 || rep.Unchanged != 4 {
		t.Fatalf("report %+v", rep)
	}
	check("S-1", invoice.StatusPaid, invoice.PaidOnline, false, false)
	if again := check("S-2", invoice.StatusPaid, invoice.PaidElsewhere, false, false); !again.PaidAt.Equal(*paid.PaidAt) {
		t.Fatal("paid_at moved")
	}
	check("S-3", invoice.StatusUnpaid, "", false, false)
	check("S-4", invoice.StatusUnpaid, "", true, false)
	check("S-5", invoice.StatusUnpaid, "", false, false)
	counts, _ := (&invoice.Store{DB: f.d}).Counts(f.ctx, f.t.ID, acc)
	if counts[invoice.StatusUnpaid] != 3 || counts[invoice.StatusPaid] != 3 || counts[invoice.StatusTreasury] != 0 {
		t.Fatalf("counts %v", counts)
	}
}

func TestImportWindows1252(t *testing.T) {
	f := newFixture(t)
	f.account(t, "DUPRÉ-01", "Mme Dupré")
	text := "Numéro;Référence redevable;Objet;Date d'émission;Échéance;Montant TTC\r\n" +
		"2018-001;DUPRÉ-01;Cantine février – goûter à l'école;01/02/2018;28/02/2018;1 234,56 €\r\n"
	b, err := charmap.Windows1252.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b, "é") {
		t.Fatal("test file is not Windows-1252")
	}
	rep := f.mustImport(t, b, nil)
	if rep.Encoding != EncodingWindows1252 || rep.Inserted != 1 {
		t.Fatalf("report %+v", rep)
	}
	inv := f.invoiceByNumber(t, "2018-001")
	if inv.Object != "Cantine février – goûter à l'école" || inv.AmountCents != 123456 {
		t.Fatalf("invoice %+v", inv)
	}
	// The same text in UTF-8 with a BOM: same invoice, unchanged.
	rep = f.mustImport(t, "\xEF\xBB\xBF"+text, nil)
	if rep.Encoding != EncodingUTF8 || rep.Unchanged != 1 {
		t.Fatalf("report %+v", rep)
	}
}

func TestImportAlerts(t *testing.T) {
	d := dbtest.New(t)
	f := fixtureOn(t, d, startS3(t), "sistec")
	active := f.account(t, "A", "Actif")
	createAccount(t, d, f.t.ID, "PENDING", "En attente", "pending@example.fr", "pending")
	quiet := f.account(t, "QUIET", "Sans alertes")
	if _, err := d.Exec(`UPDATE accounts SET invoice_alerts = false WHERE id = $1`, quiet); err != nil {
		t.Fatal(err)
	}
	// A rejected file enqueues nothing.
	if rep, _ := f.importNow(t, csvOf(manualLine, "X;NOBODY;x;10/07/2017;21/07/2017;1"), nil); rep.Status != StatusRejected {
		t.Fatalf("%+v", rep)
	}
	if n := count(t, d, `SELECT count(*) FROM river_job`); n != 0 {
		t.Fatalf("%d jobs after a rejected file", n)
	}
	var lines []string
	for i := range 12 {
		lines = append(lines, fmt.Sprintf("A-%02d;A;x;%02d/07/2017;31/07/2017;1,00", i, i+1))
	}
	lines = append(lines, "P-1;PENDING;x;10/07/2017;21/07/2017;1,00", "Q-1;QUIET;x;10/07/2017;21/07/2017;1,00")
	rep := f.mustImport(t, csvOf(lines...), nil)
	es := emails(t, d)
	if rep.Alerts != 1 || len(es) != 1 {
		t.Fatalf("alerts %d %+v", rep.Alerts, es)
	}
	e := es[0]
	nums, _ := e.Data["Numbers"].([]any)
	if e.Data["Count"] != float64(12) || len(nums) != AlertNumbers || nums[0] != "A-11" || nums[9] != "A-02" || e.Data["AccountID"] != float64(active) {
		t.Fatalf("email %+v", e)
	}

	// The commune's switch turns alerts off.
	if _, err := d.Exec(`UPDATE tenants SET invoice_alerts = false WHERE id = $1`, f.t.ID); err != nil {
		t.Fatal(err)
	}
	rep = f.mustImport(t, csvOf("A-99;A;x;10/07/2017;21/07/2017;1,00"), nil)
	if rep.Alerts != 0 || len(emails(t, d)) != 1 {
		t.Fatalf("alerts with the tenant switch off: %+v", rep)
	}
}

// F2 of the probe after issue 9: while a resident pays an invoice (an
// attempt is pending), neither a file nor the API may change its amount:
// PayFiP collects the amount the resident was shown. The line is rejected
// with the reason, the whole file with it; other changes to the invoice
// (its object) are allowed, and the amount may change again once the
// attempt is over.
func TestImportRefusesAmountChangeWhilePaymentPending(t *testing.T) {
	f := newFixture(t)
	acc := f.account(t, "SISTEC560", "Test SISTEC560")
	f.mustImport(t, csvOf(
		"A-1;SISTEC560;Cantine;01/08/2017;31/08/2017;56,40",
		"A-2;SISTEC560;Garderie;01/08/2017;31/08/2017;20,00",
	), nil)
	a1 := f.invoiceByNumber(t, "A-1")
	var paymentID int64
	if err := f.d.Get(&paymentID, `INSERT INTO payments (tenant_id, account_id, refdet, mode, amount_cents, email)
		VALUES ($1, $2, 'PENDING0001', 'ws', 5640, 'sistec560@example.fr') RETURNING id`, f.t.ID, acc); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Exec(`INSERT INTO payment_invoices (tenant_id, payment_id, invoice_id, amount_cents)
		VALUES ($1, $2, $3, 5640)`, f.t.ID, paymentID, a1.ID); err != nil {
		t.Fatal(err)
	}
	const reason = "Paiement en cours pour cette facture : son montant ne peut pas être modifié tant que le paiement n'est pas terminé"
	before := snapshot(t, f.d)

	rep, err := f.importNow(t, csvOf(
		"A-2;SISTEC560;Garderie;01/08/2017;31/08/2017;30,00",
		"A-1;SISTEC560;Cantine;01/08/2017;31/08/2017;999,99",
	), nil)
	if err != nil || rep.Status != StatusRejected || rep.Rejected != 1 || len(rep.Errors) != 1 ||
		rep.Errors[0].Line != 3 || rep.Errors[0].Number != "A-1" || rep.Errors[0].Reason != reason {
		t.Fatalf("file changing the amount of an invoice being paid: %v %+v", err, rep)
	}
	// The API's single write goes through the same check.
	line := InvoiceLine{Number: "A-1", PayerRef: "SISTEC560", Object: "Cantine", AmountCents: 99999,
		IssuedOn: a1.IssuedOn, DueOn: a1.DueOn}
	rep, err = f.s.ApplyInvoice(f.ctx, f.t.ID, Actor{Kind: ActorAPIKey, ID: 1}, line, nil)
	if err != nil || rep.Status != StatusRejected || len(rep.Errors) != 1 || rep.Errors[0].Reason != reason {
		t.Fatalf("API write changing the amount of an invoice being paid: %v %+v", err, rep)
	}
	if after := snapshot(t, f.d); after != before {
		t.Fatal("a rejected import changed invoices")
	}
	// The same amount with another object is no change of amount.
	line.AmountCents, line.Object = 5640, "Cantine (corrigée)"
	if rep, err = f.s.ApplyInvoice(f.ctx, f.t.ID, Actor{Kind: ActorAPIKey, ID: 1}, line, nil); err != nil || rep.Status != StatusImported || rep.Updated != 1 {
		t.Fatalf("object change while pending: %v %+v", err, rep)
	}
	// Once the attempt is over (abandoned here), the amount may change.
	if _, err := f.d.Exec(`UPDATE payments SET status = 'cancelled', resolved_at = now(), resolved_by = 'return'
		WHERE tenant_id = $1 AND id = $2`, f.t.ID, paymentID); err != nil {
		t.Fatal(err)
	}
	rep = f.mustImport(t, csvOf("A-1;SISTEC560;Cantine;01/08/2017;31/08/2017;999,99"), nil)
	if rep.Updated != 1 || f.invoiceByNumber(t, "A-1").AmountCents != 99999 {
		t.Fatalf("amount change after the attempt: %+v", rep)
	}
}
