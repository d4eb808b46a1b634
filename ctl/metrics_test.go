package ctl_test

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/metrics/metricstest"
)

func TestWriteMetricsParses(t *testing.T) {
	fake, keys := newFake(t)
	st := fake.Status()
	fellBack := st.Time.Add(-time.Hour)
	st.Peers[0].FallbackSince = &fellBack
	// Label values that need escaping (names cannot hold these, but the
	// writer must not trust that).
	st.Interface.Name = "cur\"r\\ent\n0"
	var b strings.Builder
	if err := ctl.WriteMetrics(&b, st, fake.Version()); err != nil {
		t.Fatal(err)
	}
	fams := metricstest.Parse(t, b.String())
	want := map[string]dto.MetricType{
		"current_build_info":                      dto.MetricType_GAUGE,
		"current_peers":                           dto.MetricType_GAUGE,
		"current_peer_up":                         dto.MetricType_GAUGE,
		"current_peer_epoch":                      dto.MetricType_GAUGE,
		"current_peer_last_epoch_change_seconds":  dto.MetricType_GAUGE,
		"current_peer_last_handshake_seconds":     dto.MetricType_GAUGE,
		"current_peer_tcp_fallback_since_seconds": dto.MetricType_GAUGE,
		"current_peer_rx_bytes_total":             dto.MetricType_COUNTER,
		"current_peer_tx_bytes_total":             dto.MetricType_COUNTER,
		"current_peer_dropped_packets_total":      dto.MetricType_COUNTER,
	}
	for name, typ := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if f.GetType() != typ || f.GetHelp() == "" {
			t.Errorf("%s: type %v help %q", name, f.GetType(), f.GetHelp())
		}
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
	next:
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	alice := map[string]string{"peer": "alice", "public_key": keys["alice"], "interface": st.Interface.Name}
	if v := value("current_peer_epoch", alice); v != 42 {
		t.Errorf("epoch %v", v)
	}
	if v := value("current_peer_rx_bytes_total", alice); v != 1<<20 {
		t.Errorf("rx %v", v)
	}
	if v := value("current_peer_dropped_packets_total", map[string]string{"peer": "alice", "reason": "replay"}); v != 3 {
		t.Errorf("replay drops %v", v)
	}
	if v := value("current_peer_dropped_packets_total", map[string]string{"peer": "alice", "reason": "bad_source"}); v != 1 {
		t.Errorf("bad source drops %v", v)
	}
	if v := value("current_peer_last_handshake_seconds", alice); v != float64(st.Peers[0].LastHandshake.Unix()) {
		t.Errorf("last handshake %v", v)
	}
	if v := value("current_peer_tcp_fallback_since_seconds", alice); v != float64(fellBack.UnixNano())/1e9 {
		t.Errorf("fallback since %v, want %v", v, float64(fellBack.UnixNano())/1e9)
	}
	if v := value("current_peer_tcp_fallback_since_seconds", map[string]string{"peer": "bob"}); v != 0 {
		t.Errorf("bob's fallback since %v, want 0", v)
	}
	if v := value("current_peer_last_handshake_seconds", map[string]string{"peer": "bob"}); v != 0 {
		t.Errorf("bob's never-handshake %v", v)
	}
	if v := value("current_peers", nil); v != 2 {
		t.Errorf("peers %v", v)
	}
	if v := value("current_build_info", map[string]string{"version": "v0.0.0-test"}); v != 1 {
		t.Errorf("build info %v", v)
	}
}
