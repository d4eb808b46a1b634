package tunnel

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/current-vpn/current/session"
)

// replayPair is A listening with a short handshake timeout, and B dialling.
func replayPair(t *testing.T) (a, b *node) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a = startNode(t, Config{ListenPort: 0, HandshakeTimeout: 300 * time.Millisecond,
		Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	b = startNode(t, Config{ListenPort: -1,
		Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32")}}}, kb)
	p := ipPacket("10.0.0.2", "10.0.0.1", "up")
	b.tun.in <- p
	a.tun.expect(t, p)
	return a, b
}

// TestReplayedHelloDoesNotReplace: a ClientHello signed with B's key (as a
// replay of one B sent would be) must not take over B's established
// connection unless the sender proves it holds the keys.
func TestReplayedHelloDoesNotReplace(t *testing.T) {
	a, b := replayPair(t)
	c, err := net.Dial("tcp", a.dev.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(sealedHelloBytes(t, b.keys, a.dev)); err != nil {
		t.Fatal(err)
	}
	// A answers (it cannot tell a replay yet) and drops the candidate
	// after the handshake timeout.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("candidate not closed: %v", err)
	}
	for i := range 5 {
		p := ipPacket("10.0.0.1", "10.0.0.2", "still here "+string(rune('0'+i)))
		a.tun.in <- p
		b.tun.expect(t, p)
	}
	if s := a.dev.Stats().Peers["b"]; s.Handshakes != 1 || !s.Established {
		t.Fatalf("A's view of B after the replay: %+v", s)
	}
}

// TestProvenReplacementTakesOver: a new connection that completes the
// handshake and sends a packet replaces the old one.
func TestProvenReplacementTakesOver(t *testing.T) {
	a, b := replayPair(t)
	c, err := net.Dial("tcp", a.dev.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := session.New(sealingTo(t, session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: b.keys.priv, PeerPublicKey: a.keys.pub}, a.dev))
	if err != nil {
		t.Fatal(err)
	}
	s.Start(time.Now())
	c.Write(bytes.Join(s.Outgoing(), nil))
	buf := make([]byte, 1<<16)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !s.Established() {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.HandleStream(time.Now(), buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	p := ipPacket("10.0.0.2", "10.0.0.1", "from the new connection")
	if err := s.SendPacket(time.Now(), p); err != nil {
		t.Fatal(err)
	}
	c.Write(bytes.Join(s.Outgoing(), nil))
	a.tun.expect(t, p)
	if h := a.dev.Stats().Peers["b"].Handshakes; h != 2 {
		t.Fatalf("handshakes = %d, want 2", h)
	}
	// The old connection was closed: B's daemon notices.
	waitFor(t, "B notices", func() bool { return !b.dev.Stats().Peers["a"].Established })
}

// TestReconnectProvesAtOnce: a daemon that reconnects over TCP while the
// listener still holds its old connection proves its new one with a
// keepalive sent as soon as it is established (docs/protocol.md 7.5.2), so
// the replacement takes over without waiting for traffic, well within the
// listener's handshake timeout.
func TestReconnectProvesAtOnce(t *testing.T) {
	a, b := replayPair(t)
	// A second daemon with B's key, as B restarted would be, with nothing
	// to send.
	b2 := startNode(t, Config{ListenPort: -1,
		Peers: []PeerConfig{{Name: "a", PublicKey: a.keys.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32")}}}, b.keys)
	waitFor(t, "the new connection established", func() bool { return b2.dev.Stats().Peers["a"].Established })
	waitFor(t, "the old connection replaced", func() bool { return !b.dev.Stats().Peers["a"].Established })
	if h := a.dev.Stats().Peers["b"].Handshakes; h < 2 {
		t.Fatalf("A did %d handshakes, want the replacement's too", h)
	}
}
