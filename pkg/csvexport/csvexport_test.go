package csvexport

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

func TestFormulaCellsAreNeutralised(t *testing.T) {
	var b bytes.Buffer
	w, err := New(&b, "Nom", "Objet", "Montant")
	if err != nil {
		t.Fatal(err)
	}
	dangerous := []string{`=HYPERLINK("http://evil","x")`, "+33 5 61", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"}
	for _, d := range dangerous {
		if err := w.Write(d, "ordinaire; avec \"guillemets\"\nsur deux lignes", Amount(24311)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "\uFEFFNom;Objet;Montant\r\n") {
		t.Fatalf("no BOM, header or CRLF: %q", out[:min(len(out), 40)])
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\uFEFF")))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("the export does not read back: %v", err)
	}
	// encoding/csv drops lone carriage returns in CRLF mode; the apostrophe
	// stays first.
	if !strings.Contains(out, "\r\n'cmd;") && !strings.Contains(out, "\r\n\"'cmd\";") {
		t.Errorf("a cell starting with a carriage return is not prefixed: %q", out)
	}
	if len(rows) != 1+len(dangerous) {
		t.Fatalf("%d rows", len(rows))
	}
	for i, d := range dangerous {
		row := rows[i+1]
		if row[0] != "'"+strings.ReplaceAll(d, "\r", "") {
			t.Errorf("cell %q written as %q, want it prefixed with an apostrophe", d, row[0])
		}
		if row[1] != "ordinaire; avec \"guillemets\"\r\nsur deux lignes" && row[1] != "ordinaire; avec \"guillemets\"\nsur deux lignes" {
			t.Errorf("quoted cell read back as %q", row[1])
		}
		if row[2] != "243,11" {
			t.Errorf("amount %q", row[2])
		}
	}
	for _, safe := range []string{"", "Dupont", "2017-020-002059", "12,50", " =leading space"} {
		if Neutralise(safe) != safe {
			t.Errorf("Neutralise(%q) = %q: a harmless cell changed", safe, Neutralise(safe))
		}
	}
}

func TestFormats(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 7, 13, 22, 30, 0, 0, time.UTC)
	if got := DateTime(at, paris); got != "14/07/2026 00:30" {
		t.Errorf("DateTime = %q", got)
	}
	if got := Date(at, paris); got != "14/07/2026" {
		t.Errorf("Date = %q", got)
	}
	if Date(time.Time{}, paris) != "" || Amount(5) != "0,05" || Amount(100000) != "1000,00" || Bool(true) != "oui" {
		t.Error("formats")
	}
	if got := Filename("Paiements", "sistec", at); got != "paiements-sistec-2026-07-13.csv" {
		t.Errorf("Filename = %q", got)
	}
}
