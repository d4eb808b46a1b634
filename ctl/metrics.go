package ctl

import (
	"maps"
	"slices"
	"time"
)

// The metric families of a Status, in one table for both expositions:
// the text WriteMetrics writes for `currentctl metrics`, and the
// daemon's Prometheus endpoint. Every family name starts with current_.

// MetricType is a family's Prometheus type.
type MetricType string

// Metric types.
const (
	GaugeType     MetricType = "gauge"
	CounterType   MetricType = "counter"
	HistogramType MetricType = "histogram"
)

// Aggregation says what a per-peer family becomes when the series are
// aggregated over all peers (Aggregate).
type Aggregation uint8

const (
	// NotPerPeer: the family has no peer labels and stays as it is.
	NotPerPeer Aggregation = iota
	// Sum adds the peers' values (counters, peers up).
	Sum
	// Max keeps the largest value (the latest handshake, the oldest
	// epoch).
	Max
	// Omit leaves the family out: a sum or maximum of it means nothing
	// (one peer's epoch number).
	Omit
)

// Family is one metric family and its samples.
type Family struct {
	Name, Help string
	Type       MetricType
	Aggregate  Aggregation
	Samples    []Sample
}

// Sample is one series: labels and a value, or for a Histogram family
// the histogram.
type Sample struct {
	Labels    []Label
	Value     float64
	Histogram *Histogram
}

// Label is one label of a sample.
type Label struct{ Name, Value string }

// Labels that identify a peer: the name is what dashboards show, the key
// what survives a rename. Aggregate removes both.
const (
	PeerLabel      = "peer"
	PublicKeyLabel = "public_key"
)

// Families returns the metric families of st and v.
//
// Timestamps are Unix seconds, 0 for "never", as node_exporter and the
// WireGuard exporters do, so that `time() - x` alerts fire for a peer that
// never connected.
func Families(st Status, v VersionInfo) []Family {
	ifl := []Label{{"interface", st.Interface.Name}}
	one := func(name string, typ MetricType, help string, value float64) Family {
		return Family{Name: name, Type: typ, Help: help, Samples: []Sample{{Labels: ifl, Value: value}}}
	}
	fams := []Family{
		{Name: "current_build_info", Type: GaugeType, Help: "Build of the running daemon; the value is always 1.",
			Samples: []Sample{{Labels: []Label{{"version", v.Version}, {"commit", v.Commit}, {"go_version", v.GoVersion}, {"interface", st.Interface.Name}}, Value: 1}}},
		one("current_peers", GaugeType, "Number of configured peers.", float64(len(st.Peers))),
		one("current_rekey_interval_seconds", GaugeType, "Rekey policy: longest time between epoch updates.", st.Interface.RekeyInterval.Duration().Seconds()),
		one("current_rekey_bytes", GaugeType, "Rekey policy: most bytes of traffic between epoch updates.", float64(st.Interface.RekeyBytes)),
	}
	fams = append(fams, peerFamilies(st)...)
	g := st.Unauthenticated
	refused := Family{Name: "current_unauthenticated_refused_total", Type: CounterType,
		Help: "Unauthenticated input refused, by reason: bad_datagram, unknown_index, bad_hello, unknown_peer, hello_budget, rate_host, rate_global, rate_peer, tcp_busy, hello_replay, candidate_busy, bad_key_package, plaintext_hello, rate_resume."}
	for _, r := range slices.Sorted(maps.Keys(g.Refused)) {
		refused.Samples = append(refused.Samples, Sample{Labels: withLabel(ifl, "reason", r), Value: float64(g.Refused[r])})
	}
	fams = append(fams, refused,
		one("current_handshakes_responded_total", CounterType, "New ClientHellos admitted to responder handshake work.", float64(g.HandshakesResponded)),
		one("current_cookies_sent_total", CounterType, "CookieChallenges sent to UDP initiators under load.", float64(g.CookiesSent)),
		one("current_unauthenticated_bytes", GaugeType, "Bytes of partial ClientHellos held before their sender is known.", float64(g.HeldBytes)),
		one("current_unauthenticated_hellos", GaugeType, "Partial ClientHellos held before their sender is known.", float64(g.HeldHellos)),
		one("current_half_open_connections", GaugeType, "TCP connections that have not sent a ClientHello yet.", float64(g.HalfOpen)),
		one("current_goroutines", GaugeType, "Number of goroutines that currently exist.", float64(st.Goroutines)),
		Family{Name: "current_dropped_packets_total", Type: CounterType,
			Help: "Packets read from the TUN device or the UDP sockets and dropped before any peer, by reason: no_peer (destination in no peer's allowed IPs), invalid (neither IPv4 nor IPv6), no_buffer (every packet buffer of the data path in use).",
			Samples: []Sample{
				{Labels: withLabel(ifl, "reason", "no_peer"), Value: float64(st.Dropped.NoPeer)},
				{Labels: withLabel(ifl, "reason", "invalid"), Value: float64(st.Dropped.Invalid)},
				{Labels: withLabel(ifl, "reason", "no_buffer"), Value: float64(st.Dropped.NoBuffer)},
			}},
	)
	if h := st.HandshakeDurations; len(h.Bounds) > 0 {
		fams = append(fams, Family{Name: "current_handshake_duration_seconds", Type: HistogramType,
			Help:    "Time from a session's start to its establishment, over all peers (a responder waiting to be resumed is not timed).",
			Samples: []Sample{{Labels: ifl, Histogram: &h}}})
	}
	return fams
}

// peerMetric is a per-peer family with one sample per peer.
type peerMetric struct {
	name       string
	typ        MetricType
	aggregate  Aggregation
	help       string
	value      func(p *PeerStatus) float64
	onlyIfLive bool // no sample for a peer without an established session
}

// peerLabeled is a per-peer family with one sample per peer and value of
// an extra label.
type peerLabeled struct {
	name, label, help string
	values            func(p *PeerStatus) []labeledValue
}

type labeledValue struct {
	value string
	n     uint64
}

func peerFamilies(st Status) []Family {
	unix := func(t *time.Time) float64 {
		if t != nil {
			return float64(t.UnixNano()) / 1e9
		}
		return 0
	}
	metrics := []peerMetric{
		{"current_peer_up", GaugeType, Sum, "1 if the peer's session is established, else 0.",
			func(p *PeerStatus) float64 { return boolFloat(p.State == StateEstablished) }, false},
		{"current_peer_epoch", GaugeType, Omit, "MLS epoch of the peer's session (0 without one).",
			func(p *PeerStatus) float64 { return float64(p.Epoch) }, false},
		{"current_peer_last_epoch_change_seconds", GaugeType, Max, "Unix time of the peer's last epoch change (0 if never).",
			func(p *PeerStatus) float64 { return unix(p.LastEpochChange) }, false},
		{"current_peer_last_handshake_seconds", GaugeType, Max, "Unix time the peer's session was last established (0 if never).",
			func(p *PeerStatus) float64 { return unix(p.LastHandshake) }, false},
		{"current_peer_tcp_fallback_since_seconds", GaugeType, Max, "Unix time a transport=auto peer fell back from UDP to TCP, 0 unless it is on TCP by fallback now.",
			func(p *PeerStatus) float64 { return unix(p.FallbackSince) }, false},
		{"current_peer_rx_bytes_total", CounterType, Sum, "Bytes received from the peer (tunnel payload).",
			func(p *PeerStatus) float64 { return float64(p.RxBytes) }, false},
		{"current_peer_tx_bytes_total", CounterType, Sum, "Bytes sent to the peer (tunnel payload).",
			func(p *PeerStatus) float64 { return float64(p.TxBytes) }, false},
		{"current_peer_rx_packets_total", CounterType, Sum, "Packets received from the peer.",
			func(p *PeerStatus) float64 { return float64(p.RxPackets) }, false},
		{"current_peer_tx_packets_total", CounterType, Sum, "Packets sent to the peer.",
			func(p *PeerStatus) float64 { return float64(p.TxPackets) }, false},
		{"current_peer_epoch_changes_total", CounterType, Sum, "Epoch changes of the peer's sessions (commits and new sessions).",
			func(p *PeerStatus) float64 { return float64(p.EpochChanges) }, false},
		{"current_peer_epoch_age_seconds", GaugeType, Max, "Seconds since the epoch of the peer's established session began (no sample without one).",
			func(p *PeerStatus) float64 { return max(st.Time.Sub(*p.LastEpochChange).Seconds(), 0) }, true},
		{"current_peer_tcp_fallbacks_total", CounterType, Sum, "Switches from UDP to TCP after a UDP handshake got no answer (transport auto).",
			func(p *PeerStatus) float64 { return float64(p.TCPFallbacks) }, false},
	}
	var fams []Family
	for _, pm := range metrics {
		f := Family{Name: pm.name, Type: pm.typ, Help: pm.help, Aggregate: pm.aggregate}
		for i := range st.Peers {
			p := &st.Peers[i]
			if pm.onlyIfLive && (p.State != StateEstablished || p.LastEpochChange == nil) {
				continue
			}
			f.Samples = append(f.Samples, Sample{Labels: peerLabels(st, p), Value: pm.value(p)})
		}
		fams = append(fams, f)
	}
	labeled := []peerLabeled{
		{"current_peer_dropped_packets_total", "reason",
			"Packets dropped for the peer, by reason: replay (anti-replay window), bad_source (source outside allowed IPs), queue_full (outbound queue full), unknown_epoch (a record of an epoch whose keys the session does not hold), bad_mac (a record that failed authentication).",
			func(p *PeerStatus) []labeledValue {
				return []labeledValue{{"replay", p.Dropped.Replay}, {"bad_source", p.Dropped.BadSource}, {"queue_full", p.Dropped.QueueFull},
					{"unknown_epoch", p.Dropped.UnknownEpoch}, {"bad_mac", p.Dropped.BadMAC}}
			}},
		{"current_peer_handshakes_total", "outcome",
			"Sessions of the peer that ended their handshake, by outcome: established (a full handshake), timeout, failed. Resumptions count in current_peer_resumptions_total.",
			func(p *PeerStatus) []labeledValue {
				h := p.Handshakes
				return []labeledValue{{"established", h.Established}, {"timeout", h.Timeout}, {"failed", h.Failed}}
			}},
		{"current_peer_resumptions_total", "outcome",
			"Attempts to resume the peer's saved session, by outcome: resumed, failed.",
			func(p *PeerStatus) []labeledValue {
				return []labeledValue{{"resumed", p.Resumptions.Resumed}, {"failed", p.Resumptions.Failed}}
			}},
	}
	for _, pl := range labeled {
		f := Family{Name: pl.name, Type: CounterType, Help: pl.help, Aggregate: Sum}
		for i := range st.Peers {
			p := &st.Peers[i]
			for _, lv := range pl.values(p) {
				f.Samples = append(f.Samples, Sample{Labels: withLabel(peerLabels(st, p), pl.label, lv.value), Value: float64(lv.n)})
			}
		}
		fams = append(fams, f)
	}
	transport := Family{Name: "current_peer_transport", Type: GaugeType, Aggregate: Sum,
		Help: "1 for the transport (udp or tcp) of the peer's current connection; no sample without one."}
	for i := range st.Peers {
		if p := &st.Peers[i]; p.ActiveTransport != "" {
			transport.Samples = append(transport.Samples, Sample{Labels: withLabel(peerLabels(st, p), "transport", p.ActiveTransport), Value: 1})
		}
	}
	return append(fams, transport)
}

func peerLabels(st Status, p *PeerStatus) []Label {
	return []Label{{"interface", st.Interface.Name}, {PeerLabel, p.Name}, {PublicKeyLabel, p.PublicKey.String()}}
}

// withLabel returns ls and one more label, without sharing ls's array.
func withLabel(ls []Label, name, value string) []Label {
	return append(slices.Clip(ls), Label{name, value})
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
