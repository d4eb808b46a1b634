package ctl

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// WriteMetrics writes st and v in the Prometheus text exposition format
// (version 0.0.4), for a Backend's Metrics: the families of Families,
// every peer labelled.
func WriteMetrics(w io.Writer, st Status, v VersionInfo) error {
	return WriteFamilies(w, Families(st, v))
}

// WriteFamilies writes fams in the text exposition format.
func WriteFamilies(w io.Writer, fams []Family) error {
	bw := bufio.NewWriter(w)
	m := metricWriter{w: bw}
	for _, f := range fams {
		m.family(f.Name, string(f.Type), f.Help)
		for _, s := range f.Samples {
			if s.Histogram != nil {
				m.histogram(f.Name, s.Labels, s.Histogram)
				continue
			}
			m.sample(f.Name, s.Labels, s.Value)
		}
	}
	if m.err != nil {
		return m.err
	}
	return bw.Flush()
}

type metricWriter struct {
	w   *bufio.Writer
	err error
}

func (m *metricWriter) write(s string) {
	if m.err == nil {
		_, m.err = m.w.WriteString(s)
	}
}

func (m *metricWriter) family(name, typ, help string) {
	m.write("# HELP " + name + " " + helpEscaper.Replace(help) + "\n# TYPE " + name + " " + typ + "\n")
}

func (m *metricWriter) histogram(name string, labels []Label, h *Histogram) {
	for i, b := range h.Bounds {
		m.sample(name+"_bucket", withLabel(labels, "le", formatFloat(b)), float64(h.Counts[i]))
	}
	m.sample(name+"_bucket", withLabel(labels, "le", "+Inf"), float64(h.Count))
	m.sample(name+"_sum", labels, h.Sum)
	m.sample(name+"_count", labels, float64(h.Count))
}

func (m *metricWriter) sample(name string, labels []Label, v float64) {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l.Name)
			b.WriteString(`="`)
			b.WriteString(labelEscaper.Replace(l.Value))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
	m.write(b.String())
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// The text format's escapes: label values escape backslash, double quote
// and newline; HELP text only backslash and newline.
var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)
