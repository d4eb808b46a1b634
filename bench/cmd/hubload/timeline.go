//go:build linux

package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// When in a paced phase the losses happened, next to when the epoch
// changes did and how many probes the senders sent: the senders note
// every peer's sequence number at the start of each bin (binSeqs), so a
// lost probe's number, and an epoch change's recorded one, tell the bin
// it was sent in. Losses that follow the changes of many peers at once,
// rather than each peer's own, point at a burst of work rather than at
// the key switch; bins in which the senders sent far more or less than
// their share point at the tool.

// timelineBin is the width of one bin.
const timelineBin = 500 * time.Millisecond

// timeline counts, per bin of the phase, the probes lost (of those the
// sink reported by sequence number, as attribute counts them) and the
// epoch changes. A peer without bin marks maps its numbers by its paced
// rate.
func timeline(ph phase, f *fleet, perPeerRate float64, bins int) (lost, epochs []int) {
	lost, epochs = make([]int, bins), make([]int, bins)
	if bins <= 0 {
		return lost, epochs
	}
	binOf := func(p *peer, seq uint64) int {
		b := 0
		if marks := ph.binSeqs[p.id]; len(marks) > 0 {
			// The last bin that started at or before seq.
			b = sort.Search(len(marks), func(i int) bool { return marks[i] > seq }) - 1
		} else if perPeerRate > 0 {
			b = int(float64(seq) / perPeerRate / timelineBin.Seconds())
		}
		return min(max(b, 0), bins-1)
	}
	eachLoss(ph, f, func(p *peer, _ uint64, missing []uint64, _ uint64) {
		for _, m := range missing {
			lost[binOf(p, m)]++
		}
	})
	for _, p := range f.peers {
		for _, e := range ph.epochSeqs[p.id] {
			epochs[binOf(p, e)]++
		}
	}
	return lost, epochs
}

// fmtTimeline prints the bins as "lost/epochs/sent" per bin.
func fmtTimeline(lost, epochs, sent []int) string {
	var b strings.Builder
	for i := range lost {
		if i > 0 {
			b.WriteByte(' ')
		}
		n := 0
		if i < len(sent) {
			n = sent[i]
		}
		fmt.Fprintf(&b, "%d/%d/%d", lost[i], epochs[i], n)
	}
	return b.String()
}
