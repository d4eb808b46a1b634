//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"
)

// When in a paced phase the losses happened, next to when the epoch
// changes did: a probe's sequence number over its peer's paced rate is
// its send time from the phase's start (every peer sends at the same
// rate, round-robin), and so is an epoch change's recorded seq. Losses
// that follow the changes of many peers at once, rather than each peer's
// own, point at a burst of work rather than at the key switch.

// timelineBin is the width of one bin.
const timelineBin = 500 * time.Millisecond

// timeline counts, per bin of the phase, the probes lost (of those the
// sink reported by sequence number, as attribute counts them) and the
// epoch changes.
func timeline(ph phase, f *fleet, perPeerRate float64, bins int) (lost, epochs []int) {
	lost, epochs = make([]int, bins), make([]int, bins)
	if perPeerRate <= 0 || bins <= 0 {
		return lost, epochs
	}
	bin := func(seq uint64) int {
		return min(int(float64(seq)/perPeerRate/timelineBin.Seconds()), bins-1)
	}
	eachLoss(ph, f, func(_ *peer, _ uint64, missing []uint64, _ uint64) {
		for _, m := range missing {
			lost[bin(m)]++
		}
	})
	for _, p := range f.peers {
		for _, e := range ph.epochSeqs[p.id] {
			epochs[bin(e)]++
		}
	}
	return lost, epochs
}

// fmtTimeline prints the bins as "lost/epochs" per bin.
func fmtTimeline(lost, epochs []int) string {
	var b strings.Builder
	for i := range lost {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d/%d", lost[i], epochs[i])
	}
	return b.String()
}
