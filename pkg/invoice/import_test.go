package invoice

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"portail/pkg/dbtest"
	"portail/pkg/jobs"
	"portail/pkg/mail"
)

const manualLine = "2017-020-002059;SISTEC560;Multi Services;10/07/2017;21/07/2017;243,11"

func TestImportManualInvoice(t *testing.T) {
	f := newFixture(t)
	acc := f.account(t, "SISTEC560", "Test SISTEC560")
	pdf := fakePDF("facture 2017-020-002059")
	var progress [][2]int
	rep, err := f.im.Import(f.ctx, f.t, strings.NewReader(csvOf(manualLine)),
		zipOf(t, map[string][]byte{"factures/2017-020-002059.PDF": pdf, "autre/9999.pdf": fakePDF("x")}),
		ImportOptions{Filename: "export.csv", Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) }})
	if err != nil {
		t.Fatalf("%v %+v", err, rep)
	}
	if !rep.OK() || rep.Lines != 1 || rep.Inserted != 1 || rep.Updated != 0 || rep.Unchanged != 0 || rep.PDFs != 1 ||
		rep.Alerts != 1 || rep.Encoding != EncodingUTF8 || rep.BatchID == 0 || len(rep.FileSHA256) != 64 {
		t.Fatalf("report %+v", rep)
	}
	if len(progress) == 0 || progress[len(progress)-1] != [2]int{1, 1} {
		t.Errorf("progress calls %v", progress)
	}

	list, total, err := f.store.List(f.ctx, f.t.ID, acc, Filter{Status: StatusUnpaid}, 1, 20)
	if err != nil || total != 1 || len(list) != 1 {
		t.Fatalf("List = %v, %d, %v", list, total, err)
	}
	inv := list[0]
	if inv.Number != "2017-020-002059" || inv.Object != "Multi Services" || FormatDate(inv.IssuedOn) != "10/07/2017" ||
		FormatDate(inv.DueOn) != "21/07/2017" || inv.AmountCents != 24311 || inv.Amount() != "243,11 €" ||
		inv.Status != StatusUnpaid || inv.AccountID != acc || inv.TenantID != f.t.ID || inv.DirectDebit ||
		inv.PaymentSuspended || inv.PaidAt != nil || inv.ImportBatchID == nil || *inv.ImportBatchID != rep.BatchID {
		t.Fatalf("invoice %+v", inv)
	}
	wantKey := fmt.Sprintf("t/%d/invoices/2017-020-002059/%s.pdf", f.t.ID, inv.PDFSHA256)
	if inv.PDFKey != wantKey || inv.PDFSize != int64(len(pdf)) {
		t.Fatalf("pdf %q %d, want %q", inv.PDFKey, inv.PDFSize, wantKey)
	}
	rc, _, err := OpenPDF(f.ctx, f.blobs, inv)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, pdf) {
		t.Fatal("PDF differs")
	}
	if len(f.blobs.objects) != 1 {
		t.Fatalf("PDF of a number not in the file stored: %v", f.blobs.objects)
	}
	if inv.Status != StatusUnpaid || inv.DirectDebit || inv.PaymentSuspended {
		t.Fatalf("imported as %s, direct debit %v, suspended %v", inv.Status, inv.DirectDebit, inv.PaymentSuspended)
	}
	counts, err := f.store.Counts(f.ctx, f.t.ID, acc)
	if err != nil || counts[StatusUnpaid] != 1 || counts[StatusPaid] != 0 || counts[StatusTreasury] != 0 {
		t.Fatalf("Counts = %v, %v", counts, err)
	}

	emails := f.mails.sent()
	if len(emails) != 1 {
		t.Fatalf("emails %+v", emails)
	}
	e := emails[0]
	if e.TenantID != f.t.ID || e.To != "sistec560@example.fr" || e.Template != "new_invoices" ||
		e.Data["Count"] != 1 || e.Data["DisplayName"] != "Test SISTEC560" || e.Data["AccountID"] != acc ||
		fmt.Sprint(e.Data["Numbers"]) != "[2017-020-002059]" {
		t.Fatalf("email %+v", e)
	}
	var journal struct {
		Status   string `db:"status"`
		Inserted int    `db:"inserted"`
		Filename string `db:"filename"`
	}
	if err := f.d.Get(&journal, `SELECT status, inserted, filename FROM import_batches WHERE tenant_id = $1 AND id = $2`, f.t.ID, rep.BatchID); err != nil ||
		journal.Status != "imported" || journal.Inserted != 1 || journal.Filename != "export.csv" {
		t.Fatalf("journal %+v %v", journal, err)
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
		zip   *zip.Reader
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
		{"payer change", csvOf(good, "OLD-1;P2;Ancienne;01/06/2017;30/06/2017;10,00"), nil, 0, []want{{3, "appartient déjà au redevable « P1 »"}}},
		{"paid amount change", csvOf("OLD-2;P2;Ancienne;01/06/2017;30/06/2017;25,00"), nil, 0, []want{{2, "déjà réglée"}}},
		{"several errors on one line", csvOf("Z;NOBODY;x;10/07/2017;21/07/2017;1"), zipOf(t, nil), 0,
			[]want{{2, "Redevable inconnu : « NOBODY » ; PDF absent de l'archive"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(t, f.d)
			batches := count(t, f.d, `SELECT count(*) FROM import_batches`)
			f.im.MaxLines = c.max
			defer func() { f.im.MaxLines = 0 }()
			rep, err := f.importString(t, c.csv, c.zip)
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("err = %v, want ErrRejected; report %+v", err, rep)
			}
			if rep.OK() || rep.Rejected != len(c.wants) || len(rep.Errors) != len(c.wants) {
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
	if len(f.blobs.objects) != 0 {
		t.Fatalf("PDFs uploaded for rejected files: %d", len(f.blobs.objects))
	}
	// The staff screens read the journal back.
	batches, err := f.store.Batches(f.ctx, f.t.ID, 0)
	if err != nil || len(batches) != len(cases)+1 || batches[0].Status != "rejected" || batches[len(batches)-1].Status != "imported" {
		t.Fatalf("batches %+v %v", batches, err)
	}
	errs, err := f.store.BatchErrors(f.ctx, f.t.ID, batches[0].ID)
	if err != nil || len(errs) != 1 || errs[0].Line != 2 || !strings.Contains(errs[0].Reason, "PDF absent") {
		t.Fatalf("batch errors %+v %v", errs, err)
	}
	if other, _ := f.store.BatchErrors(f.ctx, f.t.ID+1, batches[0].ID); len(other) != 0 {
		t.Fatal("another tenant read the journal")
	}
	// A rejected file fixed and sent again imports: the refusal did not
	// mark its hash as imported.
	rep, err := f.importString(t, csvOf(good, "A;NOBODY;x;10/07/2017;21/07/2017;1"), nil)
	if !errors.Is(err, ErrRejected) {
		t.Fatal(err)
	}
	rep, err = f.importString(t, csvOf(good, "A;NOBODY;x;10/07/2017;21/07/2017;1"), nil)
	if !errors.Is(err, ErrRejected) || rep.AlreadyImported {
		t.Fatalf("second refusal: %v %+v", err, rep)
	}
}

func TestImportErrorReportIsBounded(t *testing.T) {
	f := newFixture(t)
	f.im.MaxErrors = 5
	var b strings.Builder
	b.WriteString(header)
	for i := range 50 {
		fmt.Fprintf(&b, "N%d;NOBODY;x;10/07/2017;21/07/2017;1\n", i)
	}
	rep, err := f.importString(t, b.String(), nil)
	if !errors.Is(err, ErrRejected) || rep.Rejected != 50 || len(rep.Errors) != 5 || rep.Errors[0].Line != 2 {
		t.Fatalf("%v %+v", err, rep)
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
	if !again.AlreadyImported || again.BatchID != first.BatchID || again.Inserted+again.Updated+again.Alerts+again.PDFs != 0 {
		t.Fatalf("again %+v", again)
	}
	// The same content in another file (other line order) is idempotent by number.
	reordered := csvOf("2017-020-002060;SISTEC560;Cantine;10/07/2017;21/07/2017;12,00", manualLine)
	third := f.mustImport(t, reordered, z)
	if third.AlreadyImported || third.Inserted != 0 || third.Updated != 0 || third.Unchanged != 2 || third.PDFs != 0 || third.Alerts != 0 {
		t.Fatalf("third %+v", third)
	}
	if snapshot(t, f.d) != before {
		t.Fatal("re-importing the same invoices changed rows")
	}
	if len(f.mails.sent()) != 1 || f.blobs.puts != 2 {
		t.Fatalf("emails %d, puts %d", len(f.mails.sent()), f.blobs.puts)
	}
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
	if _, ok := f.blobs.objects[orig.PDFKey]; !ok {
		t.Fatal("the old PDF object was overwritten or removed")
	}
	if a2 := f.invoiceByNumber(t, "A-2"); a2.PDFKey == "" {
		t.Fatal("A-2 lost its PDF")
	}
	// The alert is about the new invoice only.
	last := f.mails.sent()[1]
	if last.Data["Count"] != 1 || fmt.Sprint(last.Data["Numbers"]) != "[A-3]" || last.Data["AccountID"] != acc {
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
	check := func(number string, status Status, how string, dd, susp bool) Invoice {
		t.Helper()
		inv := f.invoiceByNumber(t, number)
		if inv.Status != status || inv.PaidHow != how || inv.DirectDebit != dd || inv.PaymentSuspended != susp ||
			(status == StatusPaid) != (inv.PaidAt != nil) {
			t.Fatalf("%s: %+v", number, inv)
		}
		return inv
	}
	check("S-1", StatusUnpaid, "", false, false)
	paid := check("S-2", StatusPaid, PaidElsewhere, false, false)
	check("S-3", StatusTreasury, "", false, false)
	check("S-4", StatusUnpaid, "", true, false)
	check("S-5", StatusUnpaid, "", false, true)
	check("S-6", StatusPaid, PaidDirectDebit, true, false)
	// Alerts count unpaid new invoices only.
	if e := f.mails.sent(); len(e) != 1 || e[0].Data["Count"] != 3 {
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
	check("S-1", StatusPaid, PaidOnline, false, false)
	if again := check("S-2", StatusPaid, PaidElsewhere, false, false); !again.PaidAt.Equal(*paid.PaidAt) {
		t.Fatal("paid_at moved")
	}
	check("S-3", StatusUnpaid, "", false, false)
	check("S-4", StatusUnpaid, "", true, false)
	check("S-5", StatusUnpaid, "", false, false)
	counts, _ := f.store.Counts(f.ctx, f.t.ID, acc)
	if counts[StatusUnpaid] != 3 || counts[StatusPaid] != 3 || counts[StatusTreasury] != 0 {
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
	f := fixtureOn(t, d, "sistec")
	active := f.account(t, "A", "Actif")
	createAccount(t, d, f.t.ID, "PENDING", "En attente", "pending@example.fr", "pending")
	quiet := f.account(t, "QUIET", "Sans alertes")
	if _, err := d.Exec(`UPDATE accounts SET invoice_alerts = false WHERE id = $1`, quiet); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := range 12 {
		lines = append(lines, fmt.Sprintf("A-%02d;A;x;%02d/07/2017;31/07/2017;1,00", i, i+1))
	}
	lines = append(lines, "P-1;PENDING;x;10/07/2017;21/07/2017;1,00", "Q-1;QUIET;x;10/07/2017;21/07/2017;1,00")
	rep := f.mustImport(t, csvOf(lines...), nil)
	emails := f.mails.sent()
	if rep.Alerts != 1 || len(emails) != 1 {
		t.Fatalf("alerts %d %+v", rep.Alerts, emails)
	}
	e := emails[0]
	nums := e.Data["Numbers"].([]string)
	if e.Data["Count"] != 12 || len(nums) != AlertNumbers || nums[0] != "A-11" || nums[9] != "A-02" || e.Data["AccountID"] != active {
		t.Fatalf("email %+v", e)
	}

	// The commune's switch turns alerts off.
	if _, err := d.Exec(`UPDATE tenants SET invoice_alerts = false WHERE id = $1`, f.t.ID); err != nil {
		t.Fatal(err)
	}
	rep = f.mustImport(t, csvOf("A-99;A;x;10/07/2017;21/07/2017;1,00"), nil)
	if rep.Alerts != 0 || len(f.mails.sent()) != 1 {
		t.Fatalf("alerts with the tenant switch off: %+v", rep)
	}
}

// The real outbox: the alert is a River job committed with the invoices,
// and a rejected file enqueues nothing.
func TestImportAlertsThroughRiver(t *testing.T) {
	d := dbtest.New(t)
	f := fixtureOn(t, d, "sistec")
	client, err := jobs.New(d, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.im.Outbox = mail.NewOutbox(client)
	f.account(t, "SISTEC560", "Test SISTEC560")
	f.account(t, "OTHER", "Autre")
	if _, err := f.importString(t, csvOf(manualLine, "X;NOBODY;x;10/07/2017;21/07/2017;1"), nil); !errors.Is(err, ErrRejected) {
		t.Fatal(err)
	}
	if n := count(t, d, `SELECT count(*) FROM river_job`); n != 0 {
		t.Fatalf("%d jobs after a rejected file", n)
	}
	rep := f.mustImport(t, csvOf(manualLine, "B-1;OTHER;x;10/07/2017;21/07/2017;1", "B-2;OTHER;y;10/07/2017;21/07/2017;1"), nil)
	if rep.Alerts != 2 {
		t.Fatalf("report %+v", rep)
	}
	var args []string
	if err := d.Select(&args, `SELECT args::text FROM river_job WHERE kind = 'send_email' ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if len(args) != 2 || !strings.Contains(args[0], `"template": "new_invoices"`) || !strings.Contains(args[0], "2017-020-002059") {
		t.Fatalf("jobs %v", args)
	}
}

func TestImportConcurrentSameFile(t *testing.T) {
	f := newFixture(t)
	f.account(t, "SISTEC560", "Test SISTEC560")
	var b strings.Builder
	b.WriteString(header)
	for i := range 5000 {
		fmt.Fprintf(&b, "C-%d;SISTEC560;x;10/07/2017;21/07/2017;1,00\n", i)
	}
	file := b.String()
	type result struct {
		rep Report
		err error
	}
	res := make(chan result, 3)
	for range 3 {
		go func() {
			rep, err := f.im.Import(f.ctx, f.t, strings.NewReader(file), nil, ImportOptions{})
			res <- result{rep, err}
		}()
	}
	imported, already := 0, 0
	for range 3 {
		r := <-res
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.rep.AlreadyImported {
			already++
		} else if r.rep.Inserted == 5000 {
			imported++
		}
	}
	if imported != 1 || already != 2 {
		t.Fatalf("imported %d, already %d", imported, already)
	}
	if n := count(t, f.d, `SELECT count(*) FROM invoices`); n != 5000 {
		t.Fatalf("%d invoices", n)
	}
	if len(f.mails.sent()) != 1 {
		t.Fatalf("%d alerts", len(f.mails.sent()))
	}
}

func TestImportUploadFailureChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.account(t, "SISTEC560", "Test SISTEC560")
	f.blobs.failPut = errors.New("connection refused")
	before := snapshot(t, f.d)
	rep, err := f.importString(t, csvOf(manualLine), zipOf(t, map[string][]byte{"2017-020-002059.pdf": fakePDF("x")}))
	if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "connection refused") || !strings.HasPrefix(err.Error(), "invoice: ") {
		t.Fatalf("err = %v, report %+v", err, rep)
	}
	if snapshot(t, f.d) != before || count(t, f.d, `SELECT count(*) FROM import_batches`) != 0 {
		t.Fatal("a failed upload left rows")
	}
	f.blobs.failPut = nil
	if rep := f.mustImport(t, csvOf(manualLine), zipOf(t, map[string][]byte{"2017-020-002059.pdf": fakePDF("x")})); rep.Inserted != 1 {
		t.Fatalf("retry %+v", rep)
	}
}

func TestImportNonSeekableReader(t *testing.T) {
	f := newFixture(t)
	f.account(t, "SISTEC560", "Test SISTEC560")
	rep, err := f.im.Import(f.ctx, f.t, io.MultiReader(strings.NewReader(csvOf(manualLine))), nil, ImportOptions{})
	if err != nil || rep.Inserted != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
}
