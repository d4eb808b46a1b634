//go:build linux

package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// The pure figures of the report: they get unit tests in make test, the
// tool itself does not run there.

// jain is Jain's fairness index of the rates xs: (Σx)² / (n·Σx²). It is 1
// when every rate is equal and 1/n when one peer gets everything; an
// empty or all-zero set has no fairness to speak of and gives 0.
func jain(xs []float64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	if len(xs) == 0 || sq == 0 {
		return 0
	}
	return sum * sum / (float64(len(xs)) * sq)
}

// percentile is the p-th percentile (0 < p ≤ 100) of vs by the
// nearest-rank method; vs is sorted in place. No samples give NaN.
func percentile(vs []int64, p float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	slices.Sort(vs)
	rank := int(math.Ceil(p / 100 * float64(len(vs))))
	rank = min(max(rank, 1), len(vs))
	return float64(vs[rank-1])
}

// summary is the machine-readable last line's content.
type summary struct {
	peers        int
	aggVsSingle  float64
	jain         float64
	updateLoss   int64
	restart10kS  float64
	resumedShare float64
}

// fmtNum prints a figure with four significant digits, or n/a for a
// figure that was not measured (NaN).
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.4g", v)
}

// line is the last line of make bench-hub:
//
//	hub peers=1000 agg_vs_single=R jain=J update_loss=L restart10k_s=S resumed=F
//
// update_loss is a count of packets (n/a, like any figure not measured,
// when negative), resumed the share (0..1) of peers
// that resumed rather than handshook afresh after the 10,000-peer restart.
func (s summary) line() string {
	var b strings.Builder
	loss := "n/a"
	if s.updateLoss >= 0 {
		loss = fmt.Sprint(s.updateLoss)
	}
	fmt.Fprintf(&b, "hub peers=%d agg_vs_single=%s jain=%s update_loss=%s restart10k_s=%s resumed=%s",
		s.peers, fmtNum(s.aggVsSingle), fmtNum(s.jain), loss, fmtNum(s.restart10kS), fmtNum(s.resumedShare))
	return b.String()
}
