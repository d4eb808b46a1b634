//go:build linux

package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/current-vpn/current/bench/internal/procstat"
)

func TestLossPath(t *testing.T) {
	ph := phase{
		res:       loadResult{sent: []uint64{600, 400}, errors: 5, behind: 30},
		hubRx:     980,
		delivered: 960, late: 4,
		queueFull: 4, replayDrops: 1, epochDrops: 2, macDrops: 3, badSource: 2, noBuffer: 2, unknownIndex: 1,
		hubNet:  procstat.NetCounters{hubSocketKey: 6, sinkSocketKey: 11, "dev:current0:rx_drop": 1},
		toolNet: procstat.NetCounters{"udp:other:drops": 9},
	}
	l := pathOf(ph)
	// 1000 sent, 5 never left the tool, 980 reached the TUN: 15 lost on
	// the way; 980 - 960 - 4 after it.
	if l.sent != 1000 || l.beforeTUN() != 15 || l.afterTUN() != 16 || l.hubDropped() != 15 {
		t.Fatalf("path %+v: before %d, after %d, hub dropped %d", l, l.beforeTUN(), l.afterTUN(), l.hubDropped())
	}
	if l.hubSocket != 6 || l.sinkSocket != 11 || len(l.hubNet) != 1 {
		t.Fatalf("sockets %d, %d; rest %v", l.hubSocket, l.sinkSocket, l.hubNet)
	}
	s := l.String()
	for _, want := range []string{"sent 1000 (30 more skipped", "lost before the TUN 15", "hub's socket full 6", "no buffer 2", "unknown index 1", "lost after the TUN 16", "sink's socket full 11", "arrived late 4", "dev:current0:rx_drop=1", "udp:other:drops=9"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
}

func TestTimeline(t *testing.T) {
	f := &fleet{peers: []*peer{{id: 0}, {id: 1}}}
	// Peer 0 marked its bins (it sent 5, 5, 8 and 2 probes in them);
	// peer 1 did not, and maps by its rate, 10 per second: 5 a bin.
	ph := phase{
		res: loadResult{sent: []uint64{20, 20}},
		rep: sinkReport{Peers: []peerReport{
			{ID: 0, N: 17, Max: 19, Missing: []uint64{3, 12, 13}, MissingN: 3},
			{ID: 1, N: 18, Max: 17},
		}},
		epochSeqs: map[int][]uint64{0: {11, 18}, 1: {2, 14}},
		binSeqs:   map[int][]uint64{0: {0, 5, 10, 18}},
	}
	lost, epochs := timeline(ph, f, 10, 4)
	// Peer 1 lost 18 and 19 after its last arrival; a seq past the
	// phase's bins counts in the last.
	if want := []int{1, 0, 2, 2}; !slices.Equal(lost, want) {
		t.Errorf("lost = %v, want %v", lost, want)
	}
	if want := []int{1, 0, 2, 1}; !slices.Equal(epochs, want) {
		t.Errorf("epochs = %v, want %v", epochs, want)
	}
	if s := fmtTimeline(lost, epochs, []int{10, 10, 13}); s != "1/1/10 0/0/10 2/2/13 2/1/0" {
		t.Errorf("fmtTimeline = %q", s)
	}
}
