package metrics

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/current-vpn/current/ctl"
)

// Collector is a prometheus.Collector of the families that Families
// returns at each scrape, aggregated over peers if AggregateOnly.
type Collector struct {
	Families      func() []ctl.Family
	AggregateOnly bool
}

var _ prometheus.Collector = (*Collector)(nil)

// Describe sends nothing: the series depend on the peers configured at
// the time of the scrape, so the collector is unchecked.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends a const metric for every sample.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	fams := c.Families()
	if c.AggregateOnly {
		fams = ctl.Aggregate(fams)
	}
	for _, f := range fams {
		descs := map[string]*prometheus.Desc{} // by label names
		for _, s := range f.Samples {
			names, values := splitLabels(s.Labels)
			key := strings.Join(names, ",")
			d, ok := descs[key]
			if !ok {
				d = prometheus.NewDesc(f.Name, f.Help, names, nil)
				descs[key] = d
			}
			m, err := constMetric(f.Type, d, s, values)
			if err != nil {
				m = prometheus.NewInvalidMetric(d, err)
			}
			ch <- m
		}
	}
}

func constMetric(typ ctl.MetricType, d *prometheus.Desc, s ctl.Sample, values []string) (prometheus.Metric, error) {
	switch typ {
	case ctl.CounterType:
		return prometheus.NewConstMetric(d, prometheus.CounterValue, s.Value, values...)
	case ctl.GaugeType:
		return prometheus.NewConstMetric(d, prometheus.GaugeValue, s.Value, values...)
	case ctl.HistogramType:
		h := s.Histogram
		if h == nil || len(h.Counts) != len(h.Bounds) {
			return nil, fmt.Errorf("histogram sample without matching buckets")
		}
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, b := range h.Bounds {
			buckets[b] = h.Counts[i]
		}
		return prometheus.NewConstHistogram(d, h.Count, h.Sum, buckets, values...)
	}
	return nil, fmt.Errorf("unknown metric type %q", typ)
}

func splitLabels(ls []ctl.Label) (names, values []string) {
	names, values = make([]string, len(ls)), make([]string, len(ls))
	for i, l := range ls {
		names[i], values[i] = l.Name, l.Value
	}
	return names, values
}
