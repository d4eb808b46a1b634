package ctl_test

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/metrics/metricstest"
)

// richStatus is the fake's status with every figure the new families
// show set: alice on UDP, bob on TCP with a fallback behind him.
func richStatus(t *testing.T) (ctl.Status, ctl.VersionInfo) {
	fake, _ := newFake(t)
	st := fake.Status()
	alice, bob := &st.Peers[0], &st.Peers[1]
	alice.ActiveTransport, alice.EpochChanges = "udp", 7
	alice.Handshakes = ctl.HandshakeCounts{Established: 2, Timeout: 1}
	alice.Resumptions = ctl.ResumptionCounts{Resumed: 3, Failed: 1}
	bob.ActiveTransport, bob.TCPFallbacks = "tcp", 1
	bob.Handshakes = ctl.HandshakeCounts{Established: 1, Failed: 4}
	bob.RxBytes, bob.Dropped.Replay = 10, 2
	st.Dropped = ctl.DeviceDrops{NoPeer: 5, Invalid: 6, NoBuffer: 7}
	st.HandshakeDurations = ctl.Histogram{Bounds: []float64{0.01, 0.1, 1}, Counts: []uint64{1, 3, 3}, Count: 4, Sum: 12.5}
	return st, fake.Version()
}

func parseFamilies(t *testing.T, fams []ctl.Family) map[string]*dto.MetricFamily {
	t.Helper()
	var b strings.Builder
	if err := ctl.WriteFamilies(&b, fams); err != nil {
		t.Fatal(err)
	}
	return metricstest.Parse(t, b.String())
}

func TestNewFamilies(t *testing.T) {
	st, v := richStatus(t)
	fams := parseFamilies(t, ctl.Families(st, v))
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"current_peer_handshakes_total", map[string]string{"peer": "alice", "outcome": "established"}, 2},
		{"current_peer_handshakes_total", map[string]string{"peer": "alice", "outcome": "timeout"}, 1},
		{"current_peer_handshakes_total", map[string]string{"peer": "bob", "outcome": "failed"}, 4},
		{"current_peer_resumptions_total", map[string]string{"peer": "alice", "outcome": "resumed"}, 3},
		{"current_peer_resumptions_total", map[string]string{"peer": "alice", "outcome": "failed"}, 1},
		{"current_peer_epoch_changes_total", map[string]string{"peer": "alice"}, 7},
		// alice's epoch began 75 s before the snapshot; bob has no session.
		{"current_peer_epoch_age_seconds", map[string]string{"peer": "alice"}, 75},
		{"current_peer_epoch_age_seconds", map[string]string{"peer": "bob"}, -1},
		{"current_peer_transport", map[string]string{"peer": "alice", "transport": "udp"}, 1},
		{"current_peer_transport", map[string]string{"peer": "alice", "transport": "tcp"}, -1},
		{"current_peer_transport", map[string]string{"peer": "bob", "transport": "tcp"}, 1},
		{"current_peer_tcp_fallbacks_total", map[string]string{"peer": "bob"}, 1},
		{"current_dropped_packets_total", map[string]string{"reason": "no_peer"}, 5},
		{"current_dropped_packets_total", map[string]string{"reason": "invalid"}, 6},
		{"current_dropped_packets_total", map[string]string{"reason": "no_buffer"}, 7},
	} {
		if got := metricstest.Value(t, fams, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	h := fams["current_handshake_duration_seconds"]
	if h.GetType() != dto.MetricType_HISTOGRAM || len(h.GetMetric()) != 1 {
		t.Fatalf("histogram family %v", h)
	}
	hv := h.GetMetric()[0].GetHistogram()
	if hv.GetSampleCount() != 4 || hv.GetSampleSum() != 12.5 || len(hv.GetBucket()) != 4 ||
		hv.GetBucket()[1].GetUpperBound() != 0.1 || hv.GetBucket()[1].GetCumulativeCount() != 3 {
		t.Errorf("histogram %v", hv)
	}
}

func TestAggregate(t *testing.T) {
	st, v := richStatus(t)
	per := ctl.Families(st, v)
	agg := ctl.Aggregate(per)
	fams := parseFamilies(t, agg)
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "peer" || l.GetName() == "public_key" {
					t.Errorf("%s keeps label %s", name, l.GetName())
				}
			}
		}
	}
	if _, ok := fams["current_peer_epoch"]; ok {
		t.Error("the sum of epoch numbers is exported")
	}
	alice, bob := st.Peers[0], st.Peers[1]
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"current_peer_up", nil, 1},
		{"current_peer_rx_bytes_total", nil, float64(alice.RxBytes + bob.RxBytes)},
		{"current_peer_last_handshake_seconds", nil, float64(alice.LastHandshake.Unix())},
		{"current_peer_epoch_age_seconds", nil, 75},
		{"current_peer_handshakes_total", map[string]string{"outcome": "established"}, 3},
		{"current_peer_handshakes_total", map[string]string{"outcome": "failed"}, 4},
		{"current_peer_dropped_packets_total", map[string]string{"reason": "replay"}, 5},
		{"current_peer_transport", map[string]string{"transport": "udp"}, 1},
		{"current_peer_transport", map[string]string{"transport": "tcp"}, 1},
		{"current_peers", nil, 2},
	} {
		if got := metricstest.Value(t, fams, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// Every family but the epoch survives, so dashboards that sum over
	// peers work in both modes.
	if len(agg) != len(per)-1 {
		t.Errorf("%d aggregated families of %d", len(agg), len(per))
	}
	// Aggregate does not change its input.
	if up := per[4]; up.Name != "current_peer_up" || len(up.Samples) != 2 || up.Samples[0].Labels[1].Name != "peer" {
		t.Errorf("Aggregate changed the per-peer families: %+v", up)
	}
}
