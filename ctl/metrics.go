package ctl

import (
	"bufio"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WriteMetrics writes st and v in the Prometheus text exposition format
// (version 0.0.4), for a Backend's Metrics. Every peer is labelled with
// its name and public key: the name is what dashboards show, the key what
// survives a rename.
//
// Timestamps are Unix seconds, 0 for "never", as node_exporter and the
// WireGuard exporters do, so that `time() - x` alerts fire for a peer that
// never connected.
func WriteMetrics(w io.Writer, st Status, v VersionInfo) error {
	bw := bufio.NewWriter(w)
	m := metricWriter{w: bw}

	m.family("current_build_info", "gauge", "Build of the running daemon; the value is always 1.")
	m.sample("current_build_info", []label{{"version", v.Version}, {"commit", v.Commit}, {"go_version", v.GoVersion}, {"interface", st.Interface.Name}}, 1)

	ifl := []label{{"interface", st.Interface.Name}}
	m.family("current_peers", "gauge", "Number of configured peers.")
	m.sample("current_peers", ifl, float64(len(st.Peers)))
	m.family("current_rekey_interval_seconds", "gauge", "Rekey policy: longest time between epoch updates.")
	m.sample("current_rekey_interval_seconds", ifl, st.Interface.RekeyInterval.Duration().Seconds())
	m.family("current_rekey_bytes", "gauge", "Rekey policy: most bytes of traffic between epoch updates.")
	m.sample("current_rekey_bytes", ifl, float64(st.Interface.RekeyBytes))

	type peerMetric struct {
		name, typ, help string
		value           func(p *PeerStatus) float64
	}
	unix := func(p *PeerStatus, f func(*PeerStatus) *time.Time) float64 {
		if t := f(p); t != nil {
			return float64(t.UnixNano()) / 1e9
		}
		return 0
	}
	metrics := []peerMetric{
		{"current_peer_up", "gauge", "1 if the peer's session is established, else 0.",
			func(p *PeerStatus) float64 { return boolFloat(p.State == StateEstablished) }},
		{"current_peer_epoch", "gauge", "MLS epoch of the peer's session (0 without one).",
			func(p *PeerStatus) float64 { return float64(p.Epoch) }},
		{"current_peer_last_epoch_change_seconds", "gauge", "Unix time of the peer's last epoch change (0 if never).",
			func(p *PeerStatus) float64 {
				return unix(p, func(p *PeerStatus) *time.Time { return p.LastEpochChange })
			}},
		{"current_peer_last_handshake_seconds", "gauge", "Unix time the peer's session was last established (0 if never).",
			func(p *PeerStatus) float64 { return unix(p, func(p *PeerStatus) *time.Time { return p.LastHandshake }) }},
		{"current_peer_tcp_fallback_since_seconds", "gauge", "Unix time a transport=auto peer fell back from UDP to TCP, 0 unless it is on TCP by fallback now.",
			func(p *PeerStatus) float64 { return unix(p, func(p *PeerStatus) *time.Time { return p.FallbackSince }) }},
		{"current_peer_rx_bytes_total", "counter", "Bytes received from the peer (tunnel payload).",
			func(p *PeerStatus) float64 { return float64(p.RxBytes) }},
		{"current_peer_tx_bytes_total", "counter", "Bytes sent to the peer (tunnel payload).",
			func(p *PeerStatus) float64 { return float64(p.TxBytes) }},
		{"current_peer_rx_packets_total", "counter", "Packets received from the peer.",
			func(p *PeerStatus) float64 { return float64(p.RxPackets) }},
		{"current_peer_tx_packets_total", "counter", "Packets sent to the peer.",
			func(p *PeerStatus) float64 { return float64(p.TxPackets) }},
	}
	for _, pm := range metrics {
		m.family(pm.name, pm.typ, pm.help)
		for i := range st.Peers {
			p := &st.Peers[i]
			m.sample(pm.name, peerLabels(st, p), pm.value(p))
		}
	}
	const dropped = "current_peer_dropped_packets_total"
	m.family(dropped, "counter", "Packets dropped for the peer, by reason: replay (anti-replay window), bad_source (source outside allowed IPs), queue_full (outbound queue full).")
	for i := range st.Peers {
		p := &st.Peers[i]
		for _, r := range []struct {
			reason string
			n      uint64
		}{{"replay", p.Dropped.Replay}, {"bad_source", p.Dropped.BadSource}, {"queue_full", p.Dropped.QueueFull}} {
			m.sample(dropped, append(peerLabels(st, p), label{"reason", r.reason}), float64(r.n))
		}
	}
	writeGuardMetrics(&m, st)
	if m.err != nil {
		return m.err
	}
	return bw.Flush()
}

// writeGuardMetrics writes the device-wide counters of unauthenticated
// input and the goroutine count.
func writeGuardMetrics(m *metricWriter, st Status) {
	ifl := []label{{"interface", st.Interface.Name}}
	g := st.Unauthenticated
	const refused = "current_unauthenticated_refused_total"
	m.family(refused, "counter", "Unauthenticated input refused, by reason: bad_datagram, unknown_index, bad_hello, unknown_peer, hello_budget, rate_host, rate_global, rate_peer, tcp_busy, hello_replay, candidate_busy, bad_key_package.")
	for _, r := range slices.Sorted(maps.Keys(g.Refused)) {
		m.sample(refused, append(slices.Clone(ifl), label{"reason", r}), float64(g.Refused[r]))
	}
	for _, gm := range []struct {
		name, typ, help string
		v               float64
	}{
		{"current_handshakes_responded_total", "counter", "New ClientHellos admitted to responder handshake work.", float64(g.HandshakesResponded)},
		{"current_cookies_sent_total", "counter", "CookieChallenges sent to UDP initiators under load.", float64(g.CookiesSent)},
		{"current_unauthenticated_bytes", "gauge", "Bytes of partial ClientHellos held before their sender is known.", float64(g.HeldBytes)},
		{"current_unauthenticated_hellos", "gauge", "Partial ClientHellos held before their sender is known.", float64(g.HeldHellos)},
		{"current_half_open_connections", "gauge", "TCP connections that have not sent a ClientHello yet.", float64(g.HalfOpen)},
		{"current_goroutines", "gauge", "Number of goroutines that currently exist.", float64(st.Goroutines)},
	} {
		m.family(gm.name, gm.typ, gm.help)
		m.sample(gm.name, ifl, gm.v)
	}
}

func peerLabels(st Status, p *PeerStatus) []label {
	return []label{{"interface", st.Interface.Name}, {"peer", p.Name}, {"public_key", p.PublicKey.String()}}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type label struct{ name, value string }

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

func (m *metricWriter) sample(name string, labels []label, v float64) {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l.name)
			b.WriteString(`="`)
			b.WriteString(labelEscaper.Replace(l.value))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	b.WriteByte('\n')
	m.write(b.String())
}

// The text format's escapes: label values escape backslash, double quote
// and newline; HELP text only backslash and newline.
var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)
