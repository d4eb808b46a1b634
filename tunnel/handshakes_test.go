package tunnel

import (
	"fmt"
	"net"
	"testing"
	"time"
)

func TestDurationHistogram(t *testing.T) {
	var h durationHistogram
	for _, d := range []time.Duration{0, 5 * time.Millisecond, 6 * time.Millisecond, time.Second, time.Minute, -time.Second} {
		h.observe(d)
	}
	s := h.snapshot()
	if s.Count != 6 || len(s.Counts) != len(HandshakeBuckets) {
		t.Fatalf("%+v", s)
	}
	// 0, -1s (clamped) and 5ms are at most 5ms; 6ms at most 10ms; 1s at
	// most 1s; a minute only in +Inf.
	want := map[float64]uint64{0.005: 3, 0.01: 4, 0.5: 4, 1: 5, 30: 5}
	for i, b := range s.Bounds {
		if w, ok := want[b]; ok && s.Counts[i] != w {
			t.Errorf("le=%v: %d, want %d", b, s.Counts[i], w)
		}
	}
	if got := s.Sum; got < 61.010 || got > 61.012 {
		t.Errorf("sum %v, want 61.011", got)
	}
}

// peerStatus returns d's PeerStatus of the peer named name.
func peerStatus(t *testing.T, d *Device, name string) PeerStatus {
	t.Helper()
	for _, ps := range d.PeerStatus() {
		if ps.Name == name {
			return ps
		}
	}
	t.Fatalf("no peer %s", name)
	return PeerStatus{}
}

// TestHandshakeOutcomes: a handshake over TCP counts as established on
// both sides, is timed, and shows its transport; a restart that resumes
// over UDP counts as a resumption.
func TestHandshakeOutcomes(t *testing.T) {
	a, b := pair(t)
	p := ipPacket("10.0.0.2", "10.0.0.1", "hello")
	b.tun.in <- p
	a.tun.expect(t, p)
	waitFor(t, "both established", func() bool {
		return peerStatus(t, a.dev, "b").Handshake.Established == 1 && peerStatus(t, b.dev, "a").Handshake.Established == 1
	})
	for _, d := range []*Device{a.dev, b.dev} {
		if h := d.HandshakeDurations(); h.Count != 1 || h.Sum <= 0 || h.Counts[len(h.Counts)-1] != 1 {
			t.Errorf("handshake durations %+v", h)
		}
	}
	if st := peerStatus(t, b.dev, "a"); st.ActiveTransport != "tcp" || st.Handshake != (HandshakeOutcomes{Established: 1}) {
		t.Errorf("B: transport %q, outcomes %+v", st.ActiveTransport, st.Handshake)
	}

	dirB := t.TempDir()
	a, b = udpPair(t, "", dirB)
	b.tun.in <- p
	a.tun.expect(t, p)
	b.dev.Close()
	if st := peerStatus(t, b.dev, "a"); st.Handshake != (HandshakeOutcomes{Established: 1}) {
		t.Errorf("B before the restart: %+v", st.Handshake)
	}
	b2 := startNode(t, Config{ListenPort: 0, StateDir: dirB, Peers: []PeerConfig{{Name: "a", PublicKey: a.keys.pub, Endpoint: fmt.Sprintf("127.0.0.1:%d", a.dev.UDPPort()), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}}}, b.keys)
	b2.tun.in <- p
	a.tun.expect(t, p)
	waitFor(t, "resumed", func() bool { return peerStatus(t, b2.dev, "a").Handshake.Resumed == 1 })
	if st := peerStatus(t, b2.dev, "a"); st.Handshake != (HandshakeOutcomes{Resumed: 1}) || st.ActiveTransport != "udp" {
		t.Errorf("B after the restart: transport %q, outcomes %+v", st.ActiveTransport, st.Handshake)
	}
	if h := b2.dev.HandshakeDurations(); h.Count != 1 {
		t.Errorf("resumption not timed: %+v", h)
	}
}

// TestHandshakeTimeoutCounted: a UDP peer that never answers costs
// handshakes that time out, untimed, and none established.
func TestHandshakeTimeoutCounted(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	kb, ka := newKeys(t, testSuite), newKeys(t, testSuite)
	b := startNode(t, Config{ListenPort: 0, HandshakeTimeout: 100 * time.Millisecond, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: silent.LocalAddr().String(), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}}}, kb)
	waitFor(t, "two timeouts", func() bool { return peerStatus(t, b.dev, "a").Handshake.TimedOut >= 2 })
	st := peerStatus(t, b.dev, "a")
	if st.Handshake.Established != 0 || st.Handshake.Failed != 0 || st.Handshake.Resumed != 0 {
		t.Errorf("outcomes %+v", st.Handshake)
	}
	if h := b.dev.HandshakeDurations(); h.Count != 0 {
		t.Errorf("a handshake that timed out was timed: %+v", h)
	}
}
