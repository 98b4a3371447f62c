package svgchart

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
)

func TestChartIsAccessibleWellFormedSVG(t *testing.T) {
	c := Chart{
		ID:          "paiements",
		Title:       "Paiements en ligne par mois",
		Description: "Montants payés en ligne sur les 12 derniers mois.",
		Categories:  []string{"janv.", "févr.", "<script>alert(1)</script>"},
		Series: []Series{
			{Name: "Dû", Values: []float64{100, 250, 0}, Class: "bar-due"},
			{Name: "Payé", Values: []float64{80, 250, 0}, Class: "bar-paid"},
		},
		Format: func(v float64) string { return fmt.Sprintf("%.0f €", v) },
	}
	svg, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	s := string(svg)
	if err := xml.Unmarshal([]byte(s), new(struct{})); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, s)
	}
	for _, want := range []string{`role="img"`, `aria-labelledby="paiements-title paiements-desc"`,
		`<title id="paiements-title">Paiements en ligne par mois</title>`, `<desc id="paiements-desc">`,
		`class="bar-due"`, `class="bar-paid"`, "févr., Payé : 250 €", "&lt;script&gt;"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(s, "<script>") {
		t.Fatal("label not escaped")
	}
	if n := strings.Count(s, "<rect "); n != 6+2 { // 3 months × 2 series, 2 legend keys
		t.Errorf("%d rects", n)
	}
	// The tallest bar reaches the top of the scale, zero bars have no height.
	if !strings.Contains(s, `height="0"`) {
		t.Error("zero value drawn with a height")
	}
}

func TestChartRefusesMismatchedSeries(t *testing.T) {
	_, err := Chart{ID: "x", Title: "x", Categories: []string{"a", "b"}, Series: []Series{{Values: []float64{1}}}}.SVG()
	if err == nil {
		t.Fatal("mismatched series accepted")
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 7: 10, 12: 20, 240: 250, 260: 500, 1000: 1000, 0.3: 0.5} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}
