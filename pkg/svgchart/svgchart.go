// Package svgchart draws the staff dashboard's charts as SVG on the server:
// no JavaScript, nothing fetched, and accessible — every chart carries a
// title and a description (role="img", aria-labelledby), and the page shows
// the same figures as a table next to it (the chart is a picture of the
// table, not the only place the numbers live).
//
// Charts are bar charts over categories (months): one series, or several
// side by side (amounts due vs paid). Labels are escaped by html/template.
package svgchart

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
)

// Series is one set of values over the chart's categories.
type Series struct {
	Name   string
	Values []float64
	// Class styles the bars from the stylesheet (fill colours live in CSS,
	// so the commune's theme and high-contrast modes apply).
	Class string
}

// Chart is a bar chart.
type Chart struct {
	ID          string // unique in the page: ids of the title and description derive from it
	Title       string
	Description string
	Categories  []string // x axis labels, e.g. "janv. 2026"
	Series      []Series
	// Format writes a value for the axis and the bar tooltips (e.g. "1 234 €").
	Format func(float64) string
	Width  int // viewBox size; the SVG scales to its container
	Height int
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Label      string
}

type tick struct {
	Y     float64
	Label string
}

type label struct {
	X     float64
	Label string
}

type view struct {
	Chart
	Bars    []bar
	Ticks   []tick
	Labels  []label
	Legend  []Series
	PlotTop float64
	PlotBot float64
	PlotL   float64
	PlotR   float64
	LegendY float64
}

var tmpl = template.Must(template.New("chart").Funcs(template.FuncMap{
	"minus4":  func(v float64) float64 { return v - 4 },
	"plus16":  func(v float64) float64 { return v + 16 },
	"plus10":  func(v float64) float64 { return v + 10 },
	"legendX": func(i int) float64 { return 60 + float64(i)*180 },
}).Parse(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-labelledby="{{.ID}}-title {{.ID}}-desc" preserveAspectRatio="xMidYMid meet">
<title id="{{.ID}}-title">{{.Title}}</title>
<desc id="{{.ID}}-desc">{{.Description}}</desc>
{{- range .Ticks}}
<line class="chart-grid" x1="{{$.PlotL}}" x2="{{$.PlotR}}" y1="{{.Y}}" y2="{{.Y}}"/>
<text class="chart-tick" x="{{$.PlotL | minus4}}" y="{{.Y}}" text-anchor="end" dominant-baseline="middle">{{.Label}}</text>
{{- end}}
<line class="chart-axis" x1="{{.PlotL}}" x2="{{.PlotR}}" y1="{{.PlotBot}}" y2="{{.PlotBot}}"/>
{{- range .Bars}}
<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Label}}</title></rect>
{{- end}}
{{- range .Labels}}
<text class="chart-label" x="{{.X}}" y="{{$.PlotBot | plus16}}" text-anchor="middle">{{.Label}}</text>
{{- end}}
{{- if gt (len .Legend) 1}}{{range $i, $s := .Legend}}
<rect class="{{$s.Class}}" x="{{legendX $i}}" y="{{$.LegendY}}" width="12" height="12"/>
<text class="chart-legend" x="{{legendX $i | plus16}}" y="{{$.LegendY | plus10}}">{{$s.Name}}</text>
{{- end}}{{end}}
</svg>`))

// SVG renders the chart. It fails on series whose length differs from the
// categories'.
func (c Chart) SVG() (template.HTML, error) {
	if c.ID == "" || c.Title == "" {
		return "", fmt.Errorf("svgchart: a chart needs an ID and a title")
	}
	for _, s := range c.Series {
		if len(s.Values) != len(c.Categories) {
			return "", fmt.Errorf("svgchart: series %q has %d values for %d categories", s.Name, len(s.Values), len(c.Categories))
		}
	}
	if c.Width <= 0 {
		c.Width = 720
	}
	if c.Height <= 0 {
		c.Height = 300
	}
	if c.Format == nil {
		c.Format = func(v float64) string { return fmt.Sprintf("%.0f", v) }
	}
	v := view{Chart: c, PlotL: 70, PlotR: float64(c.Width) - 10, PlotTop: 30, PlotBot: float64(c.Height) - 40, LegendY: 6}
	maxV := 0.0
	for _, s := range c.Series {
		for _, x := range s.Values {
			maxV = math.Max(maxV, x)
		}
	}
	top := niceCeil(maxV)
	for i := 0; i <= 4; i++ {
		val := top * float64(i) / 4
		v.Ticks = append(v.Ticks, tick{Y: round(v.PlotBot - (v.PlotBot-v.PlotTop)*float64(i)/4), Label: c.Format(val)})
	}
	n := len(c.Categories)
	if n > 0 && len(c.Series) > 0 {
		slot := (v.PlotR - v.PlotL) / float64(n)
		barW := slot * 0.8 / float64(len(c.Series))
		for i, cat := range c.Categories {
			x0 := v.PlotL + slot*float64(i) + slot*0.1
			for j, s := range c.Series {
				h := 0.0
				if top > 0 {
					h = (v.PlotBot - v.PlotTop) * s.Values[i] / top
				}
				v.Bars = append(v.Bars, bar{X: round(x0 + barW*float64(j)), Y: round(v.PlotBot - h), W: round(barW), H: round(h),
					Class: s.Class, Label: fmt.Sprintf("%s, %s : %s", cat, s.Name, c.Format(s.Values[i]))})
			}
			v.Labels = append(v.Labels, label{X: round(v.PlotL + slot*float64(i) + slot/2), Label: cat})
		}
	}
	v.Legend = c.Series
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		return "", fmt.Errorf("svgchart: %w", err)
	}
	return template.HTML(b.String()), nil // built by html/template: escaped
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten, so the axis
// reads in round figures.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func round(v float64) float64 { return math.Round(v*10) / 10 }
