package imports

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"portail/pkg/account"
	"portail/pkg/invoice"
)

func TestInvoiceColumnNames(t *testing.T) {
	cases := map[string]invoiceColumn{
		"numero": colNumber, "Numéro": colNumber, "N° facture": colNumber, "NUMERO FACTURE": colNumber,
		"reference": colPayer, "Référence redevable": colPayer, "Payeur": colPayer,
		"Objet": colObject,
		"date":  colIssued, "Date facture": colIssued, "Date d'émission": colIssued, "Date d’émission": colIssued,
		"Echeance": colDue, "Échéance": colDue, "ÉCHÉANCE": colDue,
		"Montant": colAmount, "Montant TTC": colAmount, "Montant (€)": colAmount,
		"statut": colStatus, "Prélèvement": colDirectDebit, "prelevement": colDirectDebit,
		"Suspendu": colSuspended, "commentaire": colNone,
	}
	for in, want := range cases {
		if got := invoiceColumnFor(in); got != want {
			t.Errorf("invoiceColumnFor(%q) = %v, want %v", in, got, want)
		}
	}
}

// scanAll runs the first pass over b, in writes of the given size.
func scanAll(b []byte, l Limits, chunk int) fileScan {
	sc := newScanner(l.withDefaults())
	for len(b) > 0 {
		n := min(chunk, len(b))
		if _, err := sc.Write(b[:n]); err != nil {
			break
		}
		b = b[n:]
	}
	return sc.finish()
}

func TestScanEncodings(t *testing.T) {
	latin := func(s string) []byte {
		b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name     string
		in       []byte
		encoding string
		problem  string
	}{
		{"utf8", []byte("é;€\n"), EncodingUTF8, ""},
		{"utf8 bom", []byte("\xEF\xBB\xBFé;x\n"), EncodingUTF8, ""},
		{"ascii", []byte("a;b\nc;d"), EncodingUTF8, ""},
		{"windows-1252", latin("Échéance;février €\n"), EncodingWindows1252, ""},
		{"truncated utf8", []byte("a;\xC3"), EncodingWindows1252, ""}, // one lone byte: Windows-1252 Ã
		{"empty", nil, "", "Fichier vide"},
		{"blank lines", []byte("\r\n\n"), "", "Fichier vide"},
		{"utf16", []byte("\xFF\xFEa\x00;\x00"), "", "UTF-16"},
		{"xlsx", []byte("PK\x03\x04rest"), "", "Excel"},
		{"pdf", []byte("%PDF-1.4"), "", "PDF"},
		{"binary", []byte("a;b\x00c\n"), "", "illisible"},
		{"mixed", append([]byte("é;"), latin("é\n")...), "", "incohérent"},
		{"undefined 1252", []byte("a\x81b\n"), "", "Encodage non reconnu"},
		{"old mac line ends", []byte("a;b\rc;d\r"), "", "Macintosh"},
	}
	for _, c := range cases {
		// Every split of the bytes between writes gives the same answer.
		for _, chunk := range []int{1, 2, 3, 1 << 20} {
			fs := scanAll(c.in, Limits{}, chunk)
			if c.problem == "" {
				if fs.problem != "" || fs.encoding != c.encoding || len(fs.sha256) != 64 {
					t.Errorf("%s (writes of %d): problem %q, encoding %q", c.name, chunk, fs.problem, fs.encoding)
				}
			} else if !strings.Contains(fs.problem, c.problem) || fs.sha256 != "" {
				t.Errorf("%s (writes of %d): problem %q, want %q", c.name, chunk, fs.problem, c.problem)
			}
		}
	}
	if fs := scanAll(bytes.Repeat([]byte("a;b\n"), 1000), Limits{MaxFileBytes: 1000}, 4096); !strings.Contains(fs.problem, "trop volumineux") {
		t.Errorf("size limit: %q", fs.problem)
	}
	if fs := scanAll([]byte("h\n1\n2\n3\n"), Limits{MaxLines: 2}, 4096); !strings.Contains(fs.problem, "plus de 2 lignes") {
		t.Errorf("line limit: %q", fs.problem)
	}
	if fs := scanAll([]byte("h\n1\n\"2\"\n3\n"), Limits{MaxLines: 2}, 4096); fs.problem != "" {
		t.Errorf("quoted cells may span lines: the parser counts records, not the first pass: %q", fs.problem)
	}
}

// The first pass refuses a line over the bound as soon as it reaches it,
// naming the line: the rest of the file is never read, however long.
func TestScanRefusesLongLineWithoutReadingFurther(t *testing.T) {
	for _, first := range []string{"", "numero;reference;objet;date;echeance;montant\n"} {
		src := &countingReader{r: io.MultiReader(strings.NewReader(first), &endless{pattern: []byte("1234567890")})}
		sc := newScanner(Limits{}.withDefaults())
		_, err := io.CopyBuffer(io.MultiWriter(sc, io.Discard), src, make([]byte, 32<<10))
		if !errors.Is(err, errRefused) {
			t.Fatalf("endless line: %v", err)
		}
		line := "1"
		if first != "" {
			line = "2"
		}
		fs := sc.finish()
		if !strings.Contains(fs.problem, "Ligne "+line+" trop longue : plus de 64 Kio") || fs.sha256 != "" {
			t.Fatalf("problem %q", fs.problem)
		}
		if limit := int64(len(first) + DefaultMaxLineBytes + 32<<10); src.n > limit {
			t.Fatalf("read %d bytes of an endless line, more than the bound and one buffer (%d)", src.n, limit)
		}
	}
	// A file without line feeds is an old Macintosh file, said so.
	sc := newScanner(Limits{}.withDefaults())
	_, err := io.Copy(sc, io.LimitReader(&endless{pattern: []byte("a;b;c\r")}, 1<<20))
	if !errors.Is(err, errRefused) || !strings.Contains(sc.finish().problem, "Macintosh") {
		t.Fatalf("CR only: %v %q", err, sc.problem)
	}
}

// A quote never closed would make the CSV reader take the rest of the file
// as one cell: the parser refuses the record at its bound instead.
func TestParserBoundsRecords(t *testing.T) {
	head := "numero;reference;objet;date;echeance;montant\nA;P1;\"never closed;10/07/2017;21/07/2017;1\n"
	src := &countingReader{r: io.MultiReader(strings.NewReader(head), &endless{pattern: []byte("B;P1;x;10/07/2017;21/07/2017;1\n")})}
	const bound = 16 << 10
	p, err := newInvoiceParser(newRecordReader(src, EncodingUTF8, bound, false))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.next()
	var se *errStructure
	if !errors.As(err, &se) || !strings.Contains(se.reason, "Ligne 2 : enregistrement trop long") || !strings.Contains(se.reason, "guillemet") {
		t.Fatalf("err = %v", err)
	}
	if limit := int64(len(head) + bound + 2*readBuffer); src.n > limit {
		t.Fatalf("read %d bytes for a record bounded to %d (limit %d)", src.n, bound, limit)
	}
	// A record just under the bound is read.
	cell := strings.Repeat("x", bound-100)
	p, _ = newInvoiceParser(newRecordReader(strings.NewReader(header+"A;P1;\""+cell+"\";10/07/2017;21/07/2017;1\n"), EncodingUTF8, bound, false))
	if l, reason, err := p.next(); err != nil || l.Object != cell || !strings.Contains(reason, "Objet trop long") {
		t.Fatalf("long cell: %v %q", err, reason)
	}
}

// parseInvoices runs the pure part of an invoices import on b: first pass,
// decoding, parsing.
func parseInvoices(b []byte) (lines []InvoiceLine, rejected map[int]string, problem string) {
	fs := scanAll(b, Limits{}, 64<<10)
	if fs.problem != "" {
		return nil, nil, fs.problem
	}
	rejected = map[int]string{}
	p, err := newInvoiceParser(newRecordReader(bytes.NewReader(b), fs.encoding, Limits{}.withDefaults().maxRecord(), false))
	if err != nil {
		var se *errStructure
		if !errors.As(err, &se) {
			panic(err)
		}
		return nil, nil, se.reason
	}
	for {
		l, reason, err := p.next()
		if err == io.EOF {
			return lines, rejected, ""
		}
		var se *errStructure
		if errors.As(err, &se) {
			return nil, nil, se.reason
		}
		if err != nil {
			panic(err)
		}
		if reason != "" {
			rejected[l.Line] = reason
			continue
		}
		lines = append(lines, l)
	}
}

func TestParseInvoicesCSV(t *testing.T) {
	in := "\xEF\xBB\xBFN° facture;Payeur;Objet;Date d'émission;Échéance;Montant TTC;Statut;Prélèvement;Suspendu;Commentaire\r\n" +
		"2017-020-002059;P560;Multi Services;10/07/2017;21/07/2017;243,11;non réglée;non;;x\r\n" +
		";;;;;;;;;\r\n" +
		"A-2;P561;\"Cantine; goûter\nfévrier\";01/02/2018;28/02/2018;1 234,50 €;réglée;oui;oui;\r\n" +
		"A-3;P562;x;31/02/2018;01/03/2018;12,345;inconnu;peut-être;;\r\n" +
		"A-4;P562;x;01/03/2018;01/02/2018;-3;;;;\r\n" +
		"A/5;P562;x;01/03/2018;01/04/2018;3\r\n"
	lines, rejected, problem := parseInvoices([]byte(in))
	if problem != "" {
		t.Fatal(problem)
	}
	if len(lines) != 2 {
		t.Fatalf("lines: %+v", lines)
	}
	r := lines[0]
	if r.Line != 2 || r.Number != "2017-020-002059" || r.PayerRef != "P560" || r.Object != "Multi Services" ||
		invoice.FormatDate(r.IssuedOn) != "10/07/2017" || invoice.FormatDate(r.DueOn) != "21/07/2017" || r.AmountCents != 24311 ||
		r.Status != invoice.StatusUnpaid || r.DirectDebit == nil || *r.DirectDebit || r.Suspended != nil {
		t.Errorf("line 1: %+v", r)
	}
	r = lines[1]
	if r.Line != 4 || r.Object != "Cantine; goûter février" || r.AmountCents != 123450 || r.Status != invoice.StatusPaid ||
		!*r.DirectDebit || !*r.Suspended {
		t.Errorf("line 2: %+v", r)
	}
	want := map[int][]string{
		6: {"Date inexistante", "plus de deux décimales", "Statut", "Prélèvement"},
		7: {"précède", "négatif"},
		8: {"Nombre de colonnes incorrect : 6 au lieu de 10"},
	}
	if len(rejected) != len(want) {
		t.Fatalf("rejected: %+v", rejected)
	}
	for line, reasons := range want {
		for _, r := range reasons {
			if !strings.Contains(rejected[line], r) {
				t.Errorf("line %d: %q lacks %q", line, rejected[line], r)
			}
		}
	}
	for in, want := range map[string]string{
		"numero,reference,objet,date,echeance,montant\n1,2,3,4,5,6\n":        "Séparateur",
		"numero;objet;date\n1;2;3\n":                                         "Colonnes obligatoires absentes",
		"2017-1;P1;x;10/07/2017;21/07/2017;3\n":                              "en-tête",
		"numero;numéro;reference;objet;date;echeance;montant\n":              "deux fois",
		"\"numero;reference\";objet;date\"x;echeance;montant\n1;2;3;4;5;6\n": "Ligne d'en-tête illisible",
	} {
		if _, _, problem := parseInvoices([]byte(in)); !strings.Contains(problem, want) {
			t.Errorf("%q: problem %q, want %q", in, problem, want)
		}
	}
}

// The API's typed lines go through the same checks as the file's.
func TestInvoiceLineCheck(t *testing.T) {
	dd := true
	ok := InvoiceLine{Number: " A-1 ", PayerRef: "P1", Object: "Cantine\nnovembre", AmountCents: 100, DirectDebit: &dd}
	ok.IssuedOn, _ = invoice.ParseDate("10/11/2017")
	ok.DueOn, _ = invoice.ParseDate("21/11/2017")
	if r := ok.Check(); len(r) != 0 || ok.Number != "A-1" || ok.Object != "Cantine novembre" {
		t.Fatalf("%v %+v", r, ok)
	}
	for name, c := range map[string]struct {
		edit func(*InvoiceLine)
		want string
	}{
		"number":   {func(l *InvoiceLine) { l.Number = "../x" }, "Numéro de facture invalide"},
		"payer":    {func(l *InvoiceLine) { l.PayerRef = "" }, "Référence redevable vide"},
		"control":  {func(l *InvoiceLine) { l.PayerRef = "P\x001" }, "Référence redevable invalide"},
		"utf8":     {func(l *InvoiceLine) { l.Object = "\xff" }, "Objet illisible"},
		"object":   {func(l *InvoiceLine) { l.Object = strings.Repeat("é", 256) }, "Objet trop long : 256 caractères"},
		"due":      {func(l *InvoiceLine) { l.DueOn = l.IssuedOn.AddDate(0, 0, -1) }, "L'échéance précède"},
		"negative": {func(l *InvoiceLine) { l.AmountCents = -1 }, "Montant négatif"},
		"too much": {func(l *InvoiceLine) { l.AmountCents = invoice.MaxAmountCents + 1 }, "Montant trop élevé"},
		"status":   {func(l *InvoiceLine) { l.Status = "perdue" }, "Statut « perdue » invalide"},
	} {
		l := ok
		c.edit(&l)
		if r := strings.Join(l.Check(), " ; "); !strings.Contains(r, c.want) {
			t.Errorf("%s: %q, want %q", name, r, c.want)
		}
	}
}

func FuzzParseInvoicesCSV(f *testing.F) {
	f.Add([]byte(csvOf("2017-020-002059;P560;Multi Services;10/07/2017;21/07/2017;243,11")))
	f.Add([]byte("\xEF\xBB\xBFnuméro;payeur;objet;date;échéance;montant;statut;prélèvement;suspendu\n1;a;\"x\"\"y\";01/01/2020;02/01/2020;1,5;réglée;oui;non\n"))
	f.Add([]byte("numero;reference;objet;date;echeance;montant\n\"1;a;b\n"))
	f.Add([]byte("Num\xe9ro;R\xe9f\xe9rence;Objet;Date;\xc9ch\xe9ance;Montant\n1;a;f\xe9vrier;01/01/2020;02/01/2020;3\n"))
	f.Add([]byte(""))
	f.Add([]byte("a,b,c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, rejected, problem := parseInvoices(b)
		if problem != "" {
			if len(lines) > 0 || len(rejected) > 0 || !utf8.ValidString(problem) {
				t.Fatalf("problem %q with lines", problem)
			}
			return
		}
		for _, l := range lines {
			if !invoice.ValidNumber(l.Number) || l.PayerRef == "" || l.AmountCents < 0 || l.AmountCents > invoice.MaxAmountCents ||
				l.DueOn.Before(l.IssuedOn) || !utf8.ValidString(l.Object) || !utf8.ValidString(l.PayerRef) ||
				strings.ContainsAny(l.Object, "\x00\n\r") || (l.Status != "" && !l.Status.Valid()) || l.Line < 2 {
				t.Fatalf("invalid line accepted: %+v", l)
			}
		}
		for line, reason := range rejected {
			if reason == "" || !utf8.ValidString(reason) || line < 2 {
				t.Fatalf("bad rejection %d %q", line, reason)
			}
		}
	})
}

// parsePayers runs the pure part of a payers import on b.
func parsePayers(b []byte) (lines []PayerLine, rejected map[int]string, problem string) {
	fs := scanAll(b, Limits{}, 64<<10)
	if fs.problem != "" {
		return nil, nil, fs.problem
	}
	rejected = map[int]string{}
	p, err := newPayerParser(newRecordReader(bytes.NewReader(b), fs.encoding, Limits{}.withDefaults().maxRecord(), true))
	var se *errStructure
	if errors.As(err, &se) {
		return nil, nil, se.reason
	}
	for {
		l, reason, err := p.next()
		if err == io.EOF {
			return lines, rejected, ""
		}
		if errors.As(err, &se) {
			return nil, nil, se.reason
		}
		if err != nil {
			panic(err)
		}
		if reason != "" {
			rejected[l.Line] = reason
			continue
		}
		lines = append(lines, l)
	}
}

func FuzzParsePayersCSV(f *testing.F) {
	f.Add([]byte("reference;nom;email\nR1;Un;un@exemple.fr\n"))
	f.Add([]byte("\ufeffRéférence;Nom affiché;Adresse mail\r\nR1;\"A;B\";x@y.fr\r\n"))
	f.Add([]byte("ref;nom;mail\n\"unterminated\n"))
	f.Add([]byte("a,b,c\n1,2,3"))
	f.Add([]byte("ref;nom;mail\nR1;Un;un@exemple.fr\nR1;Deux;deux@exemple.fr\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, rejected, problem := parsePayers(b)
		if problem != "" {
			if len(lines) != 0 || !utf8.ValidString(problem) {
				t.Fatalf("problem %q with %d lines", problem, len(lines))
			}
			return
		}
		for _, l := range lines {
			if l.Ref == "" || l.Name == "" || !account.ValidEmail(l.Email) || l.Line < 2 || !utf8.ValidString(l.Name+l.Ref) {
				t.Fatalf("invalid line accepted: %+v", l)
			}
		}
		for line, reason := range rejected {
			if line < 2 || reason == "" {
				t.Fatalf("bad rejection %d %q", line, reason)
			}
		}
	})
}
