// Package metricstest reads Prometheus exposition text in tests, with
// the official parser: the tests of ctl (what currentctl metrics prints),
// metrics (the endpoint), cmd/currentd and the e2e tests in tunnel check
// the same format the same way.
package metricstest

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Parse parses text, failing t if it is not valid exposition.
func Parse(t testing.TB, text string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	return fams
}

// Value is the value of the one sample of family name that has every
// label of want (a histogram's value is its sample count), or -1 if there
// is none; more than one fails t.
func Value(t testing.TB, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	var vals []float64
	for _, m := range fams[name].GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			vals = append(vals, m.GetCounter().GetValue())
		case m.GetGauge() != nil:
			vals = append(vals, m.GetGauge().GetValue())
		case m.GetHistogram() != nil:
			vals = append(vals, float64(m.GetHistogram().GetSampleCount()))
		}
	}
	switch len(vals) {
	case 0:
		return -1
	case 1:
		return vals[0]
	}
	t.Fatalf("%s%v matches %d samples", name, want, len(vals))
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	matched := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			matched++
		}
	}
	return matched == len(want)
}
