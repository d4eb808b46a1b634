package tunnel

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/current-vpn/current/session"
)

// node is one in-process daemon: a Device with a fake TUN and link.
type node struct {
	keys keyPair
	tun  *fakeTUN
	link *fakeLink
	dev  *Device
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

func startNode(t *testing.T, cfg Config, k keyPair) *node {
	t.Helper()
	n := &node{keys: k, tun: newFakeTUN(), link: newFakeLink()}
	cfg.Suite = testSuite
	cfg.PrivateKey = k.priv
	cfg.Logger = testLogger(t)
	cfg.RedialMin = 20 * time.Millisecond
	cfg.RedialMax = 200 * time.Millisecond
	d, err := New(cfg, n.tun, n.link)
	if err != nil {
		t.Fatal(err)
	}
	n.dev = d
	t.Cleanup(func() { d.Close() })
	return n
}

func pfxs(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// waitFor polls cond; the tunnel has no synchronous "done" to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pair starts A (listening, waits for B) and B (dials A).
func pair(t *testing.T) (a, b *node) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a = startNode(t, Config{
		ListenPort: 0,
		Addresses:  pfxs("10.0.0.1/24", "fd00::1/64"),
		MTU:        1400,
		Peers:      []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32", "fd00::2/128", "192.168.2.0/24")}},
	}, ka)
	bcfg := Config{
		ListenPort: 0,
		Peers:      []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32", "fd00::1/128")}},
	}
	b = startNode(t, bcfg, kb)
	return a, b
}

func TestDeviceEndToEnd(t *testing.T) {
	a, b := pair(t)

	// A has no session yet: the packet waits in the pending queue until B
	// has connected.
	p1 := ipPacket("10.0.0.1", "10.0.0.2", "hello b")
	a.tun.in <- p1
	b.tun.expect(t, p1)
	p2 := ipPacket("fd00::2", "fd00::1", "hello a over v6")
	b.tun.in <- p2
	a.tun.expect(t, p2)
	p3 := ipPacket("10.0.0.1", "192.168.2.7", "to a subnet behind b")
	a.tun.in <- p3
	b.tun.expect(t, p3)

	// Cryptokey routing, inbound: B may not use an address outside its
	// allowed IPs, even one A would route to it.
	spoof := ipPacket("10.0.0.99", "10.0.0.1", "spoofed")
	b.tun.in <- spoof
	a.tun.expectNone(t, 100*time.Millisecond)
	if got := a.dev.Stats().Peers["b"].DropSource; got != 1 {
		t.Fatalf("DropSource = %d, want 1", got)
	}
	// Outbound with no peer for the destination.
	a.tun.in <- ipPacket("10.0.0.1", "10.7.7.7", "nobody")
	waitFor(t, "no-peer drop", func() bool { return a.dev.Stats().DropNoPeer == 1 })

	// Epoch update: both sides move on and traffic keeps flowing.
	e0 := a.dev.Stats().Peers["b"].Epoch
	a.dev.Rekey()
	waitFor(t, "epoch change", func() bool {
		return a.dev.Stats().Peers["b"].Epoch > e0 && b.dev.Stats().Peers["a"].Epoch > e0
	})
	b.dev.Rekey()
	waitFor(t, "second epoch change", func() bool { return b.dev.Stats().Peers["a"].Epoch > e0+1 })
	for i := range 50 {
		p := ipPacket("10.0.0.1", "10.0.0.2", "after update "+string(rune('a'+i%26)))
		a.tun.in <- p
		b.tun.expect(t, p)
	}
	if s := a.dev.Stats().Peers["b"]; s.Handshakes != 1 || !s.Established {
		t.Fatalf("A's view of B: %+v", s)
	}

	// The link configuration: addresses, MTU, routes other than the
	// address subnets, and all of it gone after Close.
	a.link.mu.Lock()
	if a.link.mtu != 1400 || !a.link.up || len(a.link.addrs) != 2 || !a.link.routes[netip.MustParsePrefix("192.168.2.0/24")] {
		t.Errorf("link config: mtu %d up %v addrs %v routes %v", a.link.mtu, a.link.up, a.link.addrs, a.link.routes)
	}
	a.link.mu.Unlock()
	if err := a.dev.Close(); err != nil {
		t.Fatal(err)
	}
	if !a.link.empty() {
		t.Errorf("link not cleaned up: %v %v", a.link.addrs, a.link.routes)
	}
	// B sees the Close and tries to reconnect to a closed port.
	waitFor(t, "B notices", func() bool { return !b.dev.Stats().Peers["a"].Established })
}

// TestSimultaneousConnect: both sides dial; they must settle on one
// connection and keep it.
func TestSimultaneousConnect(t *testing.T) {
	for i := range 5 {
		ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
		la, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lb, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pa, pb := la.Addr().(*net.TCPAddr).Port, lb.Addr().(*net.TCPAddr).Port
		la.Close()
		lb.Close()
		a := startNode(t, Config{ListenPort: pa, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, Endpoint: lb.Addr().String(), AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
		b := startNode(t, Config{ListenPort: pb, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: la.Addr().String(), AllowedIPs: pfxs("10.0.0.1/32")}}}, kb)
		waitFor(t, "both established", func() bool {
			return a.dev.Stats().Peers["b"].Established && b.dev.Stats().Peers["a"].Established
		})
		// Give a losing connection time to be torn down, then check
		// that the survivors carry traffic both ways.
		time.Sleep(100 * time.Millisecond)
		for j := range 10 {
			p := ipPacket("10.0.0.1", "10.0.0.2", "ab"+string(rune('0'+j)))
			a.tun.in <- p
			b.tun.expect(t, p)
			q := ipPacket("10.0.0.2", "10.0.0.1", "ba"+string(rune('0'+j)))
			b.tun.in <- q
			a.tun.expect(t, q)
		}
		sa, sb := a.dev.Stats().Peers["b"], b.dev.Stats().Peers["a"]
		if !sa.Established || !sb.Established {
			t.Fatalf("round %d: not stable: %+v %+v", i, sa, sb)
		}
		a.dev.Close()
		b.dev.Close()
	}
}

// TestUnknownPeer: a ClientHello signed by a key nobody pinned gets no
// answer, only a closed connection.
func TestUnknownPeer(t *testing.T) {
	ka, kb, stranger := newKeys(t, testSuite), newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	c, err := net.Dial("tcp", a.dev.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(sealedHelloBytes(t, stranger, a.dev)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("stranger got n=%d err=%v, want a silent close", n, err)
	}
	if got := a.dev.Stats().UnknownPeer; got != 1 {
		t.Fatalf("UnknownPeer = %d", got)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestReconnect: when the dialling side restarts, the listener accepts the
// new connection and traffic resumes.
func TestReconnect(t *testing.T) {
	a, b := pair(t)
	p := ipPacket("10.0.0.2", "10.0.0.1", "before")
	b.tun.in <- p
	a.tun.expect(t, p)
	b.dev.Close()
	waitFor(t, "A notices", func() bool { return !a.dev.Stats().Peers["b"].Established })
	b2 := startNode(t, Config{ListenPort: -1, Peers: []PeerConfig{{Name: "a", PublicKey: a.keys.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32")}}}, b.keys)
	q := ipPacket("10.0.0.2", "10.0.0.1", "after")
	b2.tun.in <- q
	a.tun.expect(t, q)
	if h := a.dev.Stats().Peers["b"].Handshakes; h != 2 {
		t.Fatalf("handshakes = %d, want 2", h)
	}
}

// TestBadPeerDisconnect: a pinned peer that sends garbage after the
// handshake loses its connection, and the device survives.
func TestBadPeerDisconnect(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	c, err := net.Dial("tcp", a.dev.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := session.New(sealingTo(t, session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: kb.priv, PeerPublicKey: ka.pub}, a.dev))
	if err != nil {
		t.Fatal(err)
	}
	s.Start(time.Now())
	c.Write(bytes.Join(s.Outgoing(), nil))
	waitFor(t, "established", func() bool { return a.dev.Stats().Peers["b"].Established })
	c.Write(bytes.Repeat([]byte{23, 3, 3, 0, 20}, 10))
	waitFor(t, "dropped", func() bool { return !a.dev.Stats().Peers["b"].Established })
}

// TestNoGoroutineLeak runs a full pair, closes it and checks that every
// goroutine it started has ended.
func TestNoGoroutineLeak(t *testing.T) {
	checkFDLeak(t)
	before := runtime.NumGoroutine()
	func() {
		ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
		tunA, tunB := newFakeTUN(), newFakeTUN()
		a, err := New(Config{Suite: testSuite, PrivateKey: ka.priv, ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, tunA, newFakeLink())
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(Config{Suite: testSuite, PrivateKey: kb.priv, ListenPort: -1, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32")}}}, tunB, newFakeLink())
		if err != nil {
			t.Fatal(err)
		}
		p := ipPacket("10.0.0.2", "10.0.0.1", "x")
		tunB.in <- p
		tunA.expect(t, p)
		// A half-open stranger connection must not keep a goroutine.
		c, err := net.Dial("tcp", a.ListenAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestScheduledUpdate: the session's update schedule runs through the
// owner's timer (NextTimeout, HandleTimeout) without any Rekey call.
func TestScheduledUpdate(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, RekeyInterval: 100 * time.Millisecond,
		Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	b := startNode(t, Config{ListenPort: -1, RekeyInterval: -1,
		Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32")}}}, kb)
	waitFor(t, "three scheduled updates", func() bool { return b.dev.Stats().Peers["a"].Epochs >= 3 })
	p := ipPacket("10.0.0.1", "10.0.0.2", "after updates")
	a.tun.in <- p
	b.tun.expect(t, p)
}

// TestManualRoutes: with ManualRoutes the device configures its addresses
// but routes no allowed IPs, at start and after Reconfigure.
func TestManualRoutes(t *testing.T) {
	k, kb, kc := newKeys(t, testSuite), newKeys(t, testSuite), newKeys(t, testSuite)
	n := startNode(t, Config{
		ListenPort:   -1,
		Addresses:    pfxs("10.0.0.1/24"),
		ManualRoutes: true,
		Peers:        []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("0.0.0.0/0", "192.168.2.0/24")}},
	}, k)
	n.link.mu.Lock()
	addrs, routes := len(n.link.addrs), len(n.link.routes)
	n.link.mu.Unlock()
	if addrs != 1 || routes != 0 {
		t.Fatalf("%d addresses and %d routes, want 1 and 0", addrs, routes)
	}
	err := n.dev.Reconfigure([]PeerConfig{
		{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("0.0.0.0/0")},
		{Name: "c", PublicKey: kc.pub, AllowedIPs: pfxs("10.0.0.3/32")},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.link.mu.Lock()
	routes = len(n.link.routes)
	n.link.mu.Unlock()
	if routes != 0 {
		t.Fatalf("Reconfigure installed %d routes", routes)
	}
}
