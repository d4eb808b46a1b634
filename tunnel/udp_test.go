package tunnel

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// udpPair starts A (listening on UDP, no endpoint) and B (initiating to
// A over UDP).
func udpPair(t *testing.T, stateA, stateB string) (a, b *node) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a = startNode(t, Config{ListenPort: 0, StateDir: stateA, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}}}, ka)
	b = startNode(t, Config{ListenPort: 0, StateDir: stateB, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: fmt.Sprintf("127.0.0.1:%d", a.dev.UDPPort()), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP, PersistentKeepalive: 200 * time.Millisecond}}}, kb)
	return a, b
}

// TestUDPTransport: a handshake and packets both ways over UDP, an epoch
// update, keepalives, and a packet from outside the allowed IPs dropped.
func TestUDPTransport(t *testing.T) {
	a, b := udpPair(t, "", "")
	p := ipPacket("10.0.0.2", "10.0.0.1", "over udp")
	b.tun.in <- p
	a.tun.expect(t, p)
	q := ipPacket("10.0.0.1", "10.0.0.2", "and back")
	a.tun.in <- q
	b.tun.expect(t, q)
	a.dev.Rekey()
	waitFor(t, "epoch update", func() bool { return b.dev.Stats().Peers["a"].Epochs >= 1 && a.dev.Stats().Peers["b"].Epochs >= 1 })
	b.tun.in <- p
	a.tun.expect(t, p)
	waitFor(t, "keepalives", func() bool { return a.dev.Stats().Peers["b"].KeepalivesRx >= 2 })
	// B claims a source A does not route to it.
	b.dev.Reconfigure([]PeerConfig{{Name: "a", PublicKey: a.keys.pub, Endpoint: fmt.Sprintf("127.0.0.1:%d", a.dev.UDPPort()), AllowedIPs: pfxs("10.0.0.1/32", "10.9.0.0/16"), Transport: TransportUDP}})
	b.tun.in <- ipPacket("10.0.0.9", "10.0.0.1", "spoofed")
	waitFor(t, "drop", func() bool { return a.dev.Stats().Peers["b"].DropSource == 1 })
	a.tun.expectNone(t, 100*time.Millisecond)
	if s := a.dev.Stats().Peers["b"]; s.Handshakes != 1 {
		t.Fatalf("A: %+v", s)
	}
}

// TestUDPResume: B saves its session, restarts and resumes it with A,
// which kept its own: no new handshake.
func TestUDPResume(t *testing.T) {
	dirB := t.TempDir()
	a, b := udpPair(t, "", dirB)
	p := ipPacket("10.0.0.2", "10.0.0.1", "before")
	b.tun.in <- p
	a.tun.expect(t, p)
	a.dev.Rekey()
	waitFor(t, "epoch update", func() bool { return b.dev.Stats().Peers["a"].Epochs >= 1 })
	b.dev.Close()
	// The session, A's hello key and our own hello keys, all 0600.
	files, _ := os.ReadDir(dirB)
	var states int
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".state") {
			states++
		}
		if fi, _ := f.Info(); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v", f.Name(), fi.Mode())
		}
	}
	if states != 1 || len(files) != 3 {
		t.Fatalf("state dir: %v", files)
	}
	b2 := startNode(t, Config{ListenPort: 0, StateDir: dirB, Peers: []PeerConfig{{Name: "a", PublicKey: a.keys.pub, Endpoint: fmt.Sprintf("127.0.0.1:%d", a.dev.UDPPort()), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}}}, b.keys)
	q := ipPacket("10.0.0.2", "10.0.0.1", "after")
	b2.tun.in <- q
	a.tun.expect(t, q)
	if s := b2.dev.Stats().Peers["a"]; s.Resumed != 1 {
		t.Fatalf("B did not resume: %+v", s)
	}
	if s := a.dev.Stats().Peers["b"]; s.Handshakes != 1 {
		t.Fatalf("A handshaked again: %+v", s)
	}
}

// TestAutoFallback: a peer in auto mode whose UDP handshake gets no answer
// switches to TCP.
func TestAutoFallback(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	// Point UDP at a port nobody answers on, TCP at A: the endpoint is
	// one host:port for both, so close A's UDP sockets to play a
	// firewall that drops UDP.
	a.dev.udp.bind.Close()
	b := startNode(t, Config{ListenPort: -1, UDPFallback: 500 * time.Millisecond, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportAuto}}}, kb)
	p := ipPacket("10.0.0.2", "10.0.0.1", "via tcp")
	b.tun.in <- p
	a.tun.expect(t, p)
	if s := b.dev.Stats().Peers["a"]; s.Fallbacks != 1 {
		t.Fatalf("B: %+v", s)
	}
}
