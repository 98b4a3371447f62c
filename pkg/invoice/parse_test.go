package invoice

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

func TestParseAmount(t *testing.T) {
	ok := map[string]int64{
		"243,11":           24311,
		"243,1":            24310,
		"243":              24300,
		"243,11 €":         24311,
		"243,11€":          24311,
		" 243,11 ":         24311,
		"1 234,56":         123456,
		"1\u00a0234,56":    123456,
		"1\u202f234,56 €":  123456,
		"1.234,56":         123456,
		"1.234.567,89":     123456789,
		"1 234 567":        123456700,
		"243.11":           24311, // the manual's screen writes a point
		"243.1":            24310,
		"1 234.56":         123456,
		"0,00":             0,
		"0,5":              50,
		"007,50":           750,
		"-12,30":           -1230,
		"999999999,99":     MaxAmountCents,
		"999 999 999,99 €": MaxAmountCents,
	}
	for in, want := range ok {
		got, err := ParseAmount(in)
		if err != nil || got != want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":              "Montant vide",
		" € ":           "Montant vide",
		"abc":           "Montant invalide",
		"1.234":         "ambigu",
		"12,345":        "plus de deux décimales",
		"243.111":       "ambigu",
		"243.1111":      "plus de deux décimales",
		"1,234.56":      "Montant invalide",
		"1,2,3":         "Montant invalide",
		"243,":          "Montant invalide",
		",50":           "Montant invalide",
		"12 34,00":      "Montant invalide",
		"1 234.567,00":  "Montant invalide",
		"1000000000,00": "trop élevé",
		"+5":            "Montant invalide",
		"5e3":           "Montant invalide",
		"0x10":          "Montant invalide",
		"١٢٣":           "Montant invalide",
		"12,3a":         "Montant invalide",
		"EUR 12":        "Montant invalide",
	}
	for in, want := range bad {
		got, err := ParseAmount(in)
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.Contains(fe.Reason, want) {
			t.Errorf("ParseAmount(%q) = %d, %v; want an error containing %q", in, got, err, want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "invoice: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	cases := map[int64]string{
		24311:          "243,11 €",
		0:              "0,00 €",
		5:              "0,05 €",
		100:            "1,00 €",
		123456:         "1 234,56 €",
		123456789:      "1 234 567,89 €",
		-1230:          "-12,30 €",
		MaxAmountCents: "999 999 999,99 €",
	}
	for in, want := range cases {
		if got := FormatAmount(in); got != want {
			t.Errorf("FormatAmount(%d) = %q, want %q", in, got, want)
		}
	}
	if got := FormatAmount(-1 << 63); !strings.HasPrefix(got, "-92 233 720") {
		t.Errorf("FormatAmount(min int64) = %q", got)
	}
}

func TestParseDate(t *testing.T) {
	d, err := ParseDate("10/07/2017")
	if err != nil || !d.Equal(time.Date(2017, 7, 10, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ParseDate = %v, %v", d, err)
	}
	if FormatDate(d) != "10/07/2017" {
		t.Fatalf("FormatDate = %q", FormatDate(d))
	}
	if FormatDate(time.Time{}) != "" {
		t.Fatal("zero date formatted")
	}
	if _, err := ParseDate("29/02/2016"); err != nil {
		t.Fatalf("leap day refused: %v", err)
	}
	bad := map[string]string{
		"":                 "Date vide",
		"31/02/2017":       "inexistante",
		"29/02/2017":       "inexistante",
		"00/01/2017":       "inexistante",
		"10/13/2017":       "inexistante",
		"10/00/2017":       "inexistante",
		"2017-07-10":       "JJ/MM/AAAA",
		"1/7/2017":         "JJ/MM/AAAA",
		"10/07/17":         "JJ/MM/AAAA",
		"10-07-2017":       "JJ/MM/AAAA",
		"10/07/2017 00:00": "JJ/MM/AAAA",
		"10/07/0017":       "année",
		"10/07/9999":       "année",
		"١٠/٠٧/٢٠١٧":       "JJ/MM/AAAA",
	}
	for in, want := range bad {
		_, err := ParseDate(in)
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.Contains(fe.Reason, want) {
			t.Errorf("ParseDate(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestColumnNames(t *testing.T) {
	cases := map[string]column{
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
		if got := columnFor(in); got != want {
			t.Errorf("columnFor(%q) = %v, want %v", in, got, want)
		}
	}
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
		{"empty", nil, "", "Fichier vide"},
		{"blank lines", []byte("\r\n\n"), "", "Fichier vide"},
		{"utf16", []byte("\xFF\xFEa\x00;\x00"), "", "UTF-16"},
		{"xlsx", []byte("PK\x03\x04rest"), "", "Excel"},
		{"pdf", []byte("%PDF-1.4"), "", "PDF"},
		{"binary", []byte("a;b\x00c\n"), "", "illisible"},
		{"mixed", append([]byte("é;"), latin("é\n")...), "", "incohérent"},
		{"undefined 1252", []byte("a\x81b\n"), "", "Encodage non reconnu"},
		{"old mac line ends", []byte("a;b\rc;d\r"), "", "Macintosh"},
		{"truncated utf8", []byte("a;\xC3"), "", ""}, // one lone byte: Windows-1252 Ã
	}
	for _, c := range cases {
		fs, err := scanFile(bytes.NewReader(c.in), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if c.problem == "" && c.name == "truncated utf8" {
			if fs.encoding != EncodingWindows1252 {
				t.Errorf("%s: encoding %q", c.name, fs.encoding)
			}
			continue
		}
		if !strings.Contains(fs.problem, c.problem) || (c.problem == "" && fs.problem != "") {
			t.Errorf("%s: problem %q, want %q", c.name, fs.problem, c.problem)
		}
		if c.problem == "" && fs.encoding != c.encoding {
			t.Errorf("%s: encoding %q, want %q", c.name, fs.encoding, c.encoding)
		}
		if len(fs.sha256) != 64 {
			t.Errorf("%s: no hash", c.name)
		}
	}
	// A multi-byte character split across two reads is still valid UTF-8.
	big := append(bytes.Repeat([]byte("a"), 256<<10-1), "é;x\n"...)
	fs, _ := scanFile(bytes.NewReader(big), 1<<30)
	if fs.encoding != EncodingUTF8 || fs.problem != "" {
		t.Errorf("split rune: %q %q", fs.encoding, fs.problem)
	}
	fs, _ = scanFile(bytes.NewReader(big), 1000)
	if !strings.Contains(fs.problem, "trop volumineux") {
		t.Errorf("size limit: %q", fs.problem)
	}
}

// parseAll runs the pure part of the import on b: scan, decode, parse.
func parseAll(b []byte) (rows []csvRow, lineErrs []*lineError, problem string) {
	fs, err := scanFile(bytes.NewReader(b), 1<<30)
	if err != nil {
		panic(err)
	}
	if fs.problem != "" {
		return nil, nil, fs.problem
	}
	p, err := newCSVParser(decoder(bytes.NewReader(b), fs))
	if err != nil {
		var se *errStructure
		if !errors.As(err, &se) {
			panic(err)
		}
		return nil, nil, se.reason
	}
	for {
		r, err := p.next()
		if err == io.EOF {
			return rows, lineErrs, ""
		}
		var le *lineError
		if errors.As(err, &le) {
			lineErrs = append(lineErrs, le)
			continue
		}
		if err != nil {
			panic(err)
		}
		rows = append(rows, r)
	}
}

func TestParseCSV(t *testing.T) {
	in := "\xEF\xBB\xBFN° facture;Payeur;Objet;Date d'émission;Échéance;Montant TTC;Statut;Prélèvement;Suspendu;Commentaire\r\n" +
		"2017-020-002059;P560;Multi Services;10/07/2017;21/07/2017;243,11;non réglée;non;;x\r\n" +
		";;;;;;;;;\r\n" +
		"A-2;P561;\"Cantine; goûter\nfévrier\";01/02/2018;28/02/2018;1 234,50 €;réglée;oui;oui;\r\n" +
		"A-3;P562;x;31/02/2018;01/03/2018;12,345;inconnu;peut-être;;\r\n" +
		"A-4;P562;x;01/03/2018;01/02/2018;-3;;;;\r\n" +
		"A/5;P562;x;01/03/2018;01/04/2018;3\r\n"
	rows, errs, problem := parseAll([]byte(in))
	if problem != "" {
		t.Fatal(problem)
	}
	if len(rows) != 2 {
		t.Fatalf("rows: %+v", rows)
	}
	r := rows[0]
	if r.line != 2 || r.number != "2017-020-002059" || r.payerRef != "P560" || r.object != "Multi Services" ||
		FormatDate(r.issuedOn) != "10/07/2017" || FormatDate(r.dueOn) != "21/07/2017" || r.amountCents != 24311 ||
		r.status != StatusUnpaid || r.directDebit == nil || *r.directDebit || r.suspended != nil {
		t.Errorf("row 1: %+v", r)
	}
	r = rows[1]
	if r.line != 4 || r.object != "Cantine; goûter février" || r.amountCents != 123450 || r.status != StatusPaid ||
		!*r.directDebit || !*r.suspended {
		t.Errorf("row 2: %+v", r)
	}
	want := []struct {
		line    int
		reasons []string
	}{
		{6, []string{"Date inexistante", "plus de deux décimales", "Statut", "Prélèvement"}},
		{7, []string{"précède", "négatif"}},
		{8, []string{"Nombre de colonnes incorrect : 6 au lieu de 10"}},
	}
	if len(errs) != len(want) {
		t.Fatalf("errors: %+v", errs)
	}
	for i, w := range want {
		if errs[i].line != w.line {
			t.Errorf("error %d on line %d, want %d", i, errs[i].line, w.line)
		}
		for _, r := range w.reasons {
			if !strings.Contains(errs[i].reason, r) {
				t.Errorf("line %d: %q lacks %q", w.line, errs[i].reason, r)
			}
		}
	}
	_, _, problem = parseAll([]byte("numero,reference,objet,date,echeance,montant\n1,2,3,4,5,6\n"))
	if !strings.Contains(problem, "Séparateur") {
		t.Errorf("comma file: %q", problem)
	}
	_, _, problem = parseAll([]byte("numero;objet;date\n1;2;3\n"))
	if !strings.Contains(problem, "Colonnes obligatoires absentes") || !strings.Contains(problem, "montant") {
		t.Errorf("missing columns: %q", problem)
	}
	_, _, problem = parseAll([]byte("2017-1;P1;x;10/07/2017;21/07/2017;3\n"))
	if !strings.Contains(problem, "en-tête") {
		t.Errorf("no header: %q", problem)
	}
	_, _, problem = parseAll([]byte("numero;numéro;reference;objet;date;echeance;montant\n"))
	if !strings.Contains(problem, "deux fois") {
		t.Errorf("duplicate column: %q", problem)
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"243,11", "243.11", "1 234,56 €", "1\u00a0234", "-0,01", "1.234", "999999999,99", "", "€", "1.234.567,8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseAmount(s)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !utf8.ValidString(fe.Reason) {
				t.Fatalf("ParseAmount(%q): bad error %v", s, err)
			}
			return
		}
		if v > MaxAmountCents || v < -MaxAmountCents {
			t.Fatalf("ParseAmount(%q) = %d out of range", s, v)
		}
		out := FormatAmount(v)
		back, err := ParseAmount(out)
		if err != nil || back != v {
			t.Fatalf("round trip %q → %d → %q → %d, %v", s, v, out, back, err)
		}
	})
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"10/07/2017", "31/02/2017", "29/02/2000", "1/1/2000", "", "99/99/9999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			return
		}
		if got := FormatDate(d); got != strings.TrimSpace(s) {
			t.Fatalf("round trip %q → %v → %q", s, d, got)
		}
		if d.Hour() != 0 || d.Location() != time.UTC {
			t.Fatalf("ParseDate(%q) = %v: not midnight UTC", s, d)
		}
	})
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte(csvOf("2017-020-002059;P560;Multi Services;10/07/2017;21/07/2017;243,11")))
	f.Add([]byte("\xEF\xBB\xBFnuméro;payeur;objet;date;échéance;montant;statut;prélèvement;suspendu\n1;a;\"x\"\"y\";01/01/2020;02/01/2020;1,5;réglée;oui;non\n"))
	f.Add([]byte("numero;reference;objet;date;echeance;montant\n\"1;a;b\n"))
	f.Add([]byte("Num\xe9ro;R\xe9f\xe9rence;Objet;Date;\xc9ch\xe9ance;Montant\n1;a;f\xe9vrier;01/01/2020;02/01/2020;3\n"))
	f.Add([]byte(""))
	f.Add([]byte("a,b,c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, errs, problem := parseAll(b)
		if problem != "" {
			if len(rows) > 0 || len(errs) > 0 || !utf8.ValidString(problem) {
				t.Fatalf("problem %q with rows", problem)
			}
			return
		}
		for _, r := range rows {
			if !ValidNumber(r.number) || r.payerRef == "" || r.amountCents < 0 || r.amountCents > MaxAmountCents ||
				r.dueOn.Before(r.issuedOn) || !utf8.ValidString(r.object) || !utf8.ValidString(r.payerRef) ||
				strings.ContainsAny(r.object, "\x00\n\r") || (r.status != "" && !r.status.Valid()) {
				t.Fatalf("invalid row accepted: %+v", r)
			}
		}
		for _, e := range errs {
			if e.reason == "" || !utf8.ValidString(e.reason) || e.line < 1 {
				t.Fatalf("bad line error %+v", e)
			}
		}
	})
}
