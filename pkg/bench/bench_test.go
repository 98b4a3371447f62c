package bench

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The generated lines are what the importer reads: French dates and
// decimal commas, due 30 days after issue.
func TestRowCSV(t *testing.T) {
	c := &commune{payers: 1000}
	got := string(c.row(1).csv(nil))
	if want := "F1;P2;Restauration scolaire;07/02/2015;09/03/2015;80,19\n"; got != want {
		t.Errorf("row 1: %q, want %q", got, want)
	}
	got = string(residentRow(12).csv(nil))
	if want := "R-2023-12;P1;Restauration scolaire 12/2023;05/12/2023;04/01/2024;36,44\n"; got != want {
		t.Errorf("resident row 12: %q, want %q", got, want)
	}
	// Every other payer gets invoices, never the bench resident (P1).
	for k := 1; k <= 5000; k++ {
		if c.row(k).payer == "P1" {
			t.Fatalf("row %d goes to the bench resident", k)
		}
	}
}

func TestParseArgs(t *testing.T) {
	o, err := ParseArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Communes != 100 || o.Accounts != 100_000 || o.Small != 100_000 || o.Invoices != 1_000_000 ||
		o.Large != 0 || o.Clients != 32 || o.Logins != 200 || o.Duration != 10*time.Second || !o.Stateless {
		t.Errorf("defaults: %+v", o)
	}
	o, err = ParseArgs([]string{"--invoices", "50000"})
	if err != nil || o.Small != 50_000 {
		t.Errorf("one size: %v %d", err, o.Small)
	}
	for _, args := range [][]string{
		{"--large", "20000000"},
		{"--large", "500000"},
		{"--accounts", "150"},
		{"--server-env", "NOEQUALS"},
		{"--seed-argon2", "7168"},
		{"extra"},
	} {
		if _, err := ParseArgs(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestNumbers(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q", n, got)
		}
	}
	for n, want := range map[int]string{100_000: "100k", 10_000_000: "10M", 1500: "1,500"} {
		if got := short(n); got != want {
			t.Errorf("short(%d) = %q", n, got)
		}
	}
}

func TestLogP99(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		// client transaction latency_us script epoch_s epoch_us
		b.WriteString("0 1 " + strconv.Itoa(i*1000) + " 0 1700000000 0\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "tx.123"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := logP99(dir); got != 100*time.Millisecond {
		t.Errorf("p99 = %v", got)
	}
}

func TestProcStatSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, _, ok := procStat("self"); !ok {
		t.Error("cannot read /proc/self/stat")
	}
	if machineBusy() <= 0 {
		t.Error("no CPU time in /proc/stat")
	}
}

func TestAUCAndQuartiles(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	for _, c := range []struct {
		a, b []time.Duration
		want float64
	}{
		{ms(5, 6, 7), ms(1, 2, 3), 1},         // every a slower: separable
		{ms(1, 2, 3), ms(5, 6, 7), 0},         // every a faster
		{ms(1, 2, 3, 4), ms(1, 2, 3, 4), 0.5}, // the same: indistinguishable
		{ms(2, 2), ms(2, 2, 2), 0.5},          // ties count half
		{ms(1, 4), ms(2, 3), 0.5},
		{ms(3), ms(1, 2, 3, 4), 0.625}, // 2 below, 1 tie, 1 above
	} {
		if got := auc(c.a, c.b); got != c.want {
			t.Errorf("auc(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	q1, q2, q3 := quartiles(ms(8, 1, 7, 2, 6, 3, 5, 4))
	if q1 != 3*time.Millisecond || q2 != 5*time.Millisecond || q3 != 7*time.Millisecond {
		t.Errorf("quartiles %v %v %v", q1, q2, q3)
	}
}

// The generated uploads have the announced sizes and lines.
func TestImportMemoryBodies(t *testing.T) {
	r, size := oneLine(1000)
	b, _ := io.ReadAll(r)
	if int64(len(b)) != size || strings.Count(string(b), "\n") != 1 || !strings.HasSuffix(string(b), strings.Repeat("x", 1000)) {
		t.Fatalf("one line: %d bytes, announced %d", len(b), size)
	}
	c := &commune{payers: 1000}
	r, _ = normalLines(c, 0, 3)
	b, _ = io.ReadAll(r)
	if got := string(b); got != "numero;reference;objet;date;echeance;montant\n"+
		"API-1;P2;Restauration scolaire;07/02/2015;09/03/2015;80,19\n"+
		"API-2;P3;Restauration scolaire;16/03/2015;15/04/2015;159,38\n"+
		"API-3;P4;Restauration scolaire;22/04/2015;22/05/2015;238,57\n" {
		t.Fatalf("lines %q", got)
	}
	r, n := normalLines(c, 1<<20, 0)
	b, _ = io.ReadAll(r)
	if int64(len(b)) != n || n != 1<<20 {
		t.Fatalf("sized: %d", len(b))
	}
}
