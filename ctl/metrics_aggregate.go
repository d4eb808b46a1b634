package ctl

import (
	"slices"
	"strconv"
	"strings"
)

// Aggregate returns fams with the per-peer series summed (or maximized)
// over all peers, as each family's Aggregation says: the peer and
// public_key labels are gone, the other labels (reason, outcome,
// transport) stay. A hub with 10,000 peers exports a few dozen series
// instead of a few hundred thousand.
func Aggregate(fams []Family) []Family {
	out := make([]Family, 0, len(fams))
	for _, f := range fams {
		switch f.Aggregate {
		case NotPerPeer:
			out = append(out, f)
		case Omit:
		default:
			out = append(out, aggregateFamily(f))
		}
	}
	return out
}

func aggregateFamily(f Family) Family {
	agg := Family{Name: f.Name, Help: f.Help, Type: f.Type, Aggregate: NotPerPeer}
	index := map[string]int{} // label values, joined, to the sample
	for _, s := range f.Samples {
		labels := slices.DeleteFunc(slices.Clone(s.Labels), func(l Label) bool {
			return l.Name == PeerLabel || l.Name == PublicKeyLabel
		})
		key := labelKey(labels)
		i, seen := index[key]
		if !seen {
			index[key] = len(agg.Samples)
			agg.Samples = append(agg.Samples, Sample{Labels: labels, Value: s.Value})
			continue
		}
		a := &agg.Samples[i]
		if f.Aggregate == Max {
			a.Value = max(a.Value, s.Value)
		} else {
			a.Value += s.Value
		}
	}
	return agg
}

// labelKey is ls as a map key; values are quoted, so that distinct label
// sets never share a key.
func labelKey(ls []Label) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
		b.WriteByte(',')
	}
	return b.String()
}
