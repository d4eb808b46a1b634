//go:build linux

package main

import (
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestJain(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{5, 5, 5, 5}, 1},
		{[]float64{1, 0, 0, 0}, 0.25},
		{[]float64{1, 3}, 16.0 / 20},
		{nil, 0},
		{[]float64{0, 0}, 0},
	} {
		if got := jain(c.xs); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("jain(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	vs := []int64{9, 1, 8, 2, 7, 3, 6, 4, 5, 10}
	for _, c := range []struct {
		p    float64
		want float64
	}{{50, 5}, {99, 10}, {10, 1}, {100, 10}, {0.001, 1}} {
		if got := percentile(vs, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of no samples is not NaN")
	}
}

func TestSummaryLine(t *testing.T) {
	s := summary{peers: 1000, aggVsSingle: 0.8512, jain: 0.99971, updateLoss: 0, restart10kS: 12.345, resumedShare: 1}
	want := "hub peers=1000 agg_vs_single=0.8512 jain=0.9997 update_loss=0 restart10k_s=12.35 resumed=1"
	if got := s.line(); got != want {
		t.Errorf("line:\n got %s\nwant %s", got, want)
	}
	s = summary{peers: 1000, aggVsSingle: math.NaN(), jain: math.NaN(), updateLoss: -1, restart10kS: math.NaN(), resumedShare: math.NaN()}
	want = "hub peers=1000 agg_vs_single=n/a jain=n/a update_loss=n/a restart10k_s=n/a resumed=n/a"
	if got := s.line(); got != want {
		t.Errorf("line:\n got %s\nwant %s", got, want)
	}
}

func TestProbeRoundTrip(t *testing.T) {
	b := make([]byte, 1420)
	p := probe{peer: 4242, seq: 1 << 40, sent: 123456789, flags: flagEcho}
	putProbe(b[ipv4Header+udpHeader:], p)
	pkt := buildUDP4(b, netip.MustParseAddr("10.128.0.2"), netip.MustParseAddr("10.128.0.1"), probeSrcPort, sinkPort, 1392)
	if len(pkt) != 1420 {
		t.Fatalf("packet of %d bytes, want 1420", len(pkt))
	}
	if ipChecksum(pkt[:ipv4Header]) != 0 {
		t.Fatal("IPv4 header checksum does not verify")
	}
	got, err := parseProbe(udpPayload(pkt))
	if err != nil || got != p {
		t.Fatalf("parseProbe = %+v, %v; want %+v", got, err, p)
	}
	if _, err := parseProbe(b[:probeHeader-1]); err == nil {
		t.Fatal("short probe accepted")
	}
}

func TestSinkCounts(t *testing.T) {
	st := &sinkState{peers: map[uint32]*peerRecv{}}
	b := make([]byte, 64)
	for _, seq := range []uint64{0, 1, 3, 4, 7} {
		putProbe(b, probe{peer: 7, seq: seq, sent: 100})
		st.note(b, 150)
	}
	st.note([]byte("junk"), 0)
	// A sequence number beyond maxSeq is counted, not gap-checked.
	putProbe(b, probe{peer: 8, seq: maxSeq + 5})
	st.note(b, 0)
	rep := st.report()
	for _, p := range rep.Peers {
		if p.ID == 8 && (p.N != 1 || p.MissingN != 0) {
			t.Fatalf("peer 8: %+v", p)
		}
	}
	rep.Peers = slices.DeleteFunc(rep.Peers, func(p peerReport) bool { return p.ID == 8 })
	if len(rep.Peers) != 1 || rep.Peers[0].N != 5 || rep.Peers[0].Max != 7 || rep.Peers[0].MissingN != 3 {
		t.Fatalf("report %+v", rep)
	}
	if m := rep.Peers[0].Missing; len(m) != 3 || m[0] != 2 || m[1] != 5 || m[2] != 6 {
		t.Fatalf("missing %v, want [2 5 6]", m)
	}
	if rep.Ignored != 1 || rep.LatN != 6 || rep.LatP50 != 50 {
		t.Fatalf("report %+v", rep)
	}
	if again := st.report(); again.N != 0 || len(again.Peers) != 0 {
		t.Fatalf("report did not start afresh: %+v", again)
	}
	// Sent before that report, arriving after it: late for its phase,
	// not counted in the next one (a ping is still echoed).
	putProbe(b, probe{peer: 7, seq: 9, sent: 100, flags: flagEcho})
	if !st.note(b, 200) {
		t.Error("a late ping was not echoed")
	}
	putProbe(b, probe{peer: 7, seq: 0, sent: monoNow()})
	st.note(b, 0)
	if late := st.report(); late.Stale != 1 || late.N != 1 || len(late.Peers) != 1 || late.Peers[0].Max != 0 {
		t.Fatalf("late probe: %+v", late)
	}
}

func TestAttribute(t *testing.T) {
	f := &fleet{peers: []*peer{{id: 0}, {id: 1}}}
	// 100 packets per second per peer: the window is seq e-10 .. e+50.
	ph := phase{
		res: loadResult{sent: []uint64{1000, 1000}},
		rep: sinkReport{Peers: []peerReport{
			{ID: 0, N: 996, Max: 999, Missing: []uint64{95, 300, 700}, MissingN: 3},
			{ID: 1, N: 990, Max: 989, MissingN: 0},
		}},
		epochSeqs: map[int][]uint64{0: {100, 650}, 1: {980}},
	}
	l := attribute(ph, f, 100)
	// Peer 0: 95 and 700 are in windows, 300 is not; peer 1 lost its
	// last 10 (990..999), all within 980's window.
	if l.inWindows != 12 || l.all != 13 || l.checked != 13 || l.epochs != 3 {
		t.Fatalf("attribute = %+v; want 12 in windows, 13 in all and checked, 3 epochs", l)
	}
	// Peer 0's windows cover 90..150 and 640..700 (122 of 1000), peer
	// 1's 970..999 (30): 3·0.122 + 10·0.03 expected by chance.
	if want := 3*0.122 + 10*0.03; math.Abs(l.expected-want) > 1e-9 {
		t.Fatalf("expected %v, want %v", l.expected, want)
	}
}

func TestWindowSpan(t *testing.T) {
	// Overlapping windows count once; clipped at 0 and at n.
	if got := windowSpan([]uint64{5, 0, 8}, 10, 3, 10); got != 10 {
		t.Fatalf("windowSpan = %d, want 10", got)
	}
	if got := windowSpan([]uint64{100, 300}, 10, 50, 1000); got != 122 {
		t.Fatalf("windowSpan = %d, want 122", got)
	}
	if got := windowSpan(nil, 10, 50, 1000); got != 0 {
		t.Fatalf("windowSpan = %d, want 0", got)
	}
}

func TestParseCounts(t *testing.T) {
	ns, err := parseCounts(" 1000, 10000,")
	if err != nil || len(ns) != 2 || ns[0] != 1000 || ns[1] != 10000 {
		t.Fatalf("parseCounts = %v, %v", ns, err)
	}
	for _, bad := range []string{"x", "0", "-3", "1000000"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q) succeeded", bad)
		}
	}
}

func FuzzProbe(f *testing.F) {
	b := make([]byte, 1420)
	putProbe(b[ipv4Header+udpHeader:], probe{peer: 1, seq: 2, sent: 3, flags: flagEcho})
	f.Add(buildUDP4(b, netip.MustParseAddr("10.128.0.2"), netip.MustParseAddr("10.128.0.1"), 1, 2, 1392))
	f.Add([]byte("HUBL"))
	f.Add([]byte{0x4f, 0, 0, 20})
	f.Fuzz(func(t *testing.T, d []byte) {
		st := &sinkState{peers: map[uint32]*peerRecv{}}
		st.note(d, 0)
		if pl := udpPayload(d); pl != nil {
			st.note(pl, 0)
		}
		rep := st.report()
		if rep.N > 2 {
			t.Fatalf("%d probes counted from two", rep.N)
		}
	})
}

func TestPingInterval(t *testing.T) {
	if got := pingInterval(time.Second, 1000); got != time.Second {
		t.Errorf("1000 peers: %v", got)
	}
	if got := pingInterval(time.Second, 10000); got != 2*time.Second {
		t.Errorf("10000 peers: %v", got)
	}
}

func TestShare(t *testing.T) {
	back := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
	if got := share(back, 4, 0.5); got != "2.00 s" {
		t.Errorf("half of 4: %s", got)
	}
	if got := share(back, 4, 0.99); got != "never" {
		t.Errorf("99 %% of 4 with 3 back: %s", got)
	}
}

func TestNonzero(t *testing.T) {
	if got := nonzero(map[string]uint64{"rate_global": 3, "bad_hello": 0, "hello_replay": 1}); got != "hello_replay 1, rate_global 3" {
		t.Errorf("nonzero = %q", got)
	}
	if got := nonzero(nil); got != "nothing" {
		t.Errorf("nonzero(nil) = %q", got)
	}
}

func TestUpdateLoss(t *testing.T) {
	for _, c := range []struct {
		upd, ctrl lossSplit
		want      float64
	}{
		// Rare updates: the windows' excess is the finer figure.
		{lossSplit{all: 120, inWindows: 60, expected: 10}, lossSplit{all: 100}, 50},
		// Frequent updates: the windows cover the run and their excess
		// reads zero; the control run shows the updates' loss.
		{lossSplit{all: 700, inWindows: 420, expected: 420}, lossSplit{all: 0}, 700},
		// Neither estimate below zero.
		{lossSplit{all: 5, inWindows: 1, expected: 3}, lossSplit{all: 9}, 0},
		// What arrived late is not lost, in either estimate.
		{lossSplit{all: 120, inWindows: 60, expected: 10, late: 100}, lossSplit{all: 0}, 20},
		{lossSplit{all: 120, inWindows: 60, expected: 10, late: 30}, lossSplit{all: 20, late: 20}, 90},
	} {
		if got := updateLoss(c.upd, c.ctrl); got != c.want {
			t.Errorf("updateLoss(%+v, %+v) = %v, want %v", c.upd, c.ctrl, got, c.want)
		}
	}
}
