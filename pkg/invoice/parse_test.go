package invoice

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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
