package apptest

import (
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one read of the portal's /metrics, parsed.
type Scrape map[string]*dto.MetricFamily

// ScrapeMetrics reads /metrics on the metrics listener, as Prometheus does.
func (e *Env) ScrapeMetrics() Scrape {
	e.t.Helper()
	s, err := ScrapeURL(e.MetricsURL)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// ScrapeURL reads and parses a Prometheus text exposition.
func ScrapeURL(u string) (Scrape, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", u, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	return Scrape(mfs), nil
}

// Series are the label sets of name's series.
func (s Scrape) Series(name string) []map[string]string {
	mf := s[name]
	if mf == nil {
		return nil
	}
	var out []map[string]string
	for _, m := range mf.GetMetric() {
		out = append(out, labelsOf(m))
	}
	return out
}

// Value sums the series of name whose labels include every pair of
// labels ("route", "/factures", …): a counter's or gauge's value, a
// histogram's count. found is false when no series matches.
func (s Scrape) Value(name string, labels ...string) (v float64, found bool) {
	mf := s[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		ls := labelsOf(m)
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if ls[labels[i]] != labels[i+1] {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, found
}

func labelsOf(m *dto.Metric) map[string]string {
	ls := map[string]string{}
	for _, l := range m.GetLabel() {
		ls[l.GetName()] = l.GetValue()
	}
	return ls
}
