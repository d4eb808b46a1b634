package tunnel

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// udpGate stands between a transport=auto initiator and its responder on
// one host:port, as the path through a network would: TCP connections
// are passed on to the responder's listener, UDP datagrams to its UDP
// port, both ways, unless UDP is blocked (a firewall that drops UDP); a
// TCP connection made while TCP is blocked is closed at once.
type udpGate struct {
	front      *net.UDPConn
	up         *net.UDPConn
	ln         net.Listener
	tcpTo      string
	blocked    atomic.Bool
	tcpBlocked atomic.Bool
	client     atomic.Pointer[net.UDPAddr]

	mu    sync.Mutex
	conns map[net.Conn]bool
	open  int // TCP connections passed on and not yet closed
	wg    sync.WaitGroup
}

// newUDPGate opens the gate on a free port of 127.0.0.1 for TCP and UDP
// alike, in front of a's listener and sockets.
func newUDPGate(t *testing.T, a *node) *udpGate {
	t.Helper()
	g := &udpGate{tcpTo: a.dev.ListenAddr().String(), conns: map[net.Conn]bool{}}
	var err error
	for range 20 {
		g.front, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		g.ln, err = net.Listen("tcp", g.front.LocalAddr().String())
		if err == nil {
			break
		}
		g.front.Close() // that port is taken for TCP: another one
	}
	if err != nil {
		t.Fatal(err)
	}
	g.up, err = net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.dev.UDPPort()})
	if err != nil {
		t.Fatal(err)
	}
	g.wg.Add(3)
	go g.forward()
	go g.backward()
	go g.accept()
	t.Cleanup(g.close)
	return g
}

func (g *udpGate) addr() string { return g.front.LocalAddr().String() }

func (g *udpGate) forward() {
	defer g.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := g.front.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if g.blocked.Load() {
			continue
		}
		g.client.Store(from)
		g.up.Write(buf[:n])
	}
}

func (g *udpGate) backward() {
	defer g.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, err := g.up.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable and the like
		}
		if c := g.client.Load(); c != nil && !g.blocked.Load() {
			g.front.WriteToUDP(buf[:n], c)
		}
	}
}

func (g *udpGate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if g.tcpBlocked.Load() {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", g.tcpTo)
		if err != nil {
			c.Close()
			continue
		}
		g.mu.Lock()
		g.conns[c], g.conns[u] = true, true
		g.open++
		g.mu.Unlock()
		var once sync.Once
		done := func() {
			c.Close()
			u.Close()
			once.Do(func() {
				g.mu.Lock()
				delete(g.conns, c)
				delete(g.conns, u)
				g.open--
				g.mu.Unlock()
			})
		}
		g.wg.Add(2)
		go func() { defer g.wg.Done(); io.Copy(u, c); done() }()
		go func() { defer g.wg.Done(); io.Copy(c, u); done() }()
	}
}

// openTCP is the number of TCP connections through the gate.
func (g *udpGate) openTCP() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

func (g *udpGate) close() {
	g.front.Close()
	g.up.Close()
	g.ln.Close()
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// autoBehindGate starts A (responder, no endpoint) and B (transport auto,
// reaching A through a gate that blocks UDP) with B's probe timing, and
// waits until B fell back to TCP and a packet went through.
func autoBehindGate(t *testing.T, probeMin, probeMax time.Duration) (a, b *node, g *udpGate) {
	t.Helper()
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a = startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	g = newUDPGate(t, a)
	g.blocked.Store(true)
	b = startNode(t, Config{ListenPort: -1, UDPFallback: 300 * time.Millisecond, UDPProbeMin: probeMin, UDPProbeMax: probeMax,
		Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: g.addr(), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportAuto}}}, kb)
	p := ipPacket("10.0.0.2", "10.0.0.1", "via tcp")
	b.tun.in <- p
	a.tun.expect(t, p)
	st := onlyPeerStatus(t, b)
	if st.ActiveTransport != "tcp" || st.TransportReason != ReasonFallback || st.FallbackSince.IsZero() {
		t.Fatalf("B after the fallback: transport %q, reason %q, fallback since %v", st.ActiveTransport, st.TransportReason, st.FallbackSince)
	}
	return a, b, g
}

// peerStatus is n's one peer's status.
func onlyPeerStatus(t *testing.T, n *node) PeerStatus {
	t.Helper()
	st := n.dev.PeerStatus()
	if len(st) != 1 {
		t.Fatalf("want one peer, got %+v", st)
	}
	return st[0]
}

// onUDP reports whether n's peer has an established session over UDP.
func onUDP(t *testing.T, n *node) bool {
	st := onlyPeerStatus(t, n)
	return st.State == StateEstablished && st.ActiveTransport == "udp"
}

// TestAutoReturnsToUDP: an auto peer on TCP probes UDP with a doubling
// wait while UDP is blocked, keeps its TCP session meanwhile, and moves
// back to UDP by itself once UDP goes through, closing the TCP
// connection only then.
func TestAutoReturnsToUDP(t *testing.T) {
	a, b, g := autoBehindGate(t, 100*time.Millisecond, 400*time.Millisecond)
	waitFor(t, "failed probes", func() bool { return b.dev.Stats().Peers["a"].UDPProbes >= 3 })
	st := onlyPeerStatus(t, b)
	if st.ActiveTransport != "tcp" || b.dev.Stats().Peers["a"].UDPReturns != 0 {
		t.Fatalf("B moved while UDP was blocked: %+v", st)
	}
	if st.NextUDPProbe.IsZero() && !st.UDPProbing {
		t.Errorf("B on TCP by fallback, neither probing nor a probe scheduled: %+v", st)
	}
	if n := g.openTCP(); n != 1 {
		t.Fatalf("%d TCP connections while on TCP, want 1", n)
	}
	p := ipPacket("10.0.0.2", "10.0.0.1", "still tcp")
	b.tun.in <- p
	a.tun.expect(t, p)

	g.blocked.Store(false)
	waitFor(t, "B back on UDP", func() bool { return onUDP(t, b) })
	waitFor(t, "A on UDP", func() bool { return onUDP(t, a) })
	waitFor(t, "the TCP connection closed", func() bool { return g.openTCP() == 0 })
	st = onlyPeerStatus(t, b)
	if st.TransportReason != ReasonConfigured || !st.FallbackSince.IsZero() || !st.NextUDPProbe.IsZero() || st.UDPProbing {
		t.Errorf("B back on UDP: %+v", st)
	}
	if s := b.dev.Stats().Peers["a"]; s.UDPReturns != 1 || s.Fallbacks != 1 {
		t.Errorf("B: %d returns to UDP, %d fallbacks; want 1 and 1", s.UDPReturns, s.Fallbacks)
	}
	q := ipPacket("10.0.0.2", "10.0.0.1", "over udp again")
	b.tun.in <- q
	a.tun.expect(t, q)
	r := ipPacket("10.0.0.1", "10.0.0.2", "and back")
	a.tun.in <- r
	b.tun.expect(t, r)
	if g.client.Load() == nil {
		t.Fatal("no datagram went through the gate")
	}
}

// TestAutoProbesOnUnderlayChange: with a long probe interval, a change of
// our own addresses probes at once, and that probe brings the peer back
// to UDP.
func TestAutoProbesOnUnderlayChange(t *testing.T) {
	_, b, g := autoBehindGate(t, time.Hour, time.Hour)
	next := onlyPeerStatus(t, b).NextUDPProbe
	if d := time.Until(next); d < 50*time.Minute {
		t.Fatalf("first probe scheduled in %s, want about an hour", d)
	}
	// Blocked: the probe the change starts fails, and the next waits
	// the interval again.
	b.dev.UnderlayChanged()
	waitFor(t, "a probe after the change", func() bool { return b.dev.Stats().Peers["a"].UDPProbes == 1 })
	waitFor(t, "the probe given up", func() bool { return !onlyPeerStatus(t, b).NextUDPProbe.IsZero() })
	if st := onlyPeerStatus(t, b); st.ActiveTransport != "tcp" {
		t.Fatalf("B left TCP while UDP was blocked: %+v", st)
	}
	g.blocked.Store(false)
	b.dev.UnderlayChanged()
	waitFor(t, "B back on UDP", func() bool { return onUDP(t, b) })
	if s := b.dev.Stats().Peers["a"]; s.UDPProbes != 2 || s.UDPReturns != 1 {
		t.Errorf("B: %d probes, %d returns to UDP; want 2 and 1", s.UDPProbes, s.UDPReturns)
	}
}

// TestAutoBothProbe: two auto peers, each the other's endpoint, that both
// fell back probe at the same moment (an address change on both hosts
// starts a probe at once); their probes cross, the side with the lower key
// keeps its own and the other answers it, and both end on one UDP
// session.
func TestAutoBothProbe(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	// No probe but those the address changes start.
	timing := Config{ListenPort: 0, UDPFallback: 300 * time.Millisecond, UDPProbeMin: time.Hour, UDPProbeMax: time.Hour}
	a, b := startNode(t, timing, ka), startNode(t, timing, kb)
	ga, gb := newUDPGate(t, a), newUDPGate(t, b)
	for _, g := range []*udpGate{ga, gb} {
		g.blocked.Store(true)
		g.tcpBlocked.Store(true)
	}
	if err := a.dev.Reconfigure([]PeerConfig{{Name: "b", PublicKey: kb.pub, Endpoint: gb.addr(), AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportAuto}}); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.Reconfigure([]PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: ga.addr(), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportAuto}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both fallen back", func() bool {
		return a.dev.Stats().Peers["b"].Fallbacks == 1 && b.dev.Stats().Peers["a"].Fallbacks == 1
	})
	ga.tcpBlocked.Store(false)
	gb.tcpBlocked.Store(false)
	// Both dial at once; a packet sent while the two connections are
	// sorted out may go down the one that loses, so it is resent.
	p := ipPacket("10.0.0.2", "10.0.0.1", "via tcp")
	deadline := time.Now().Add(10 * time.Second)
	for got := false; !got; {
		b.tun.in <- p
		select {
		case q := <-a.tun.out:
			if string(q) != string(p) {
				t.Fatalf("TUN got %x, want %x", q, p)
			}
			got = true
		case <-time.After(200 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no packet over TCP")
			}
		}
	}
	for len(a.tun.out) > 0 {
		<-a.tun.out // resent copies
	}
	ga.blocked.Store(false)
	gb.blocked.Store(false)
	a.dev.UnderlayChanged()
	b.dev.UnderlayChanged()
	waitFor(t, "both on UDP", func() bool { return onUDP(t, a) && onUDP(t, b) })
	// Usually both probes start before either hello arrives; a side
	// whose hello came first answers it instead of probing.
	pa, pb := a.dev.Stats().Peers["b"].UDPProbes, b.dev.Stats().Peers["a"].UDPProbes
	if pa+pb == 0 || pa > 1 || pb > 1 {
		t.Errorf("probes: A %d, B %d; want at most one each, at once", pa, pb)
	}
	t.Logf("probes: A %d, B %d", pa, pb)
	q := ipPacket("10.0.0.1", "10.0.0.2", "over udp")
	a.tun.in <- q
	b.tun.expect(t, q)
	ra, rb := a.dev.Stats().Peers["b"].UDPReturns, b.dev.Stats().Peers["a"].UDPReturns
	if ra != 1 || rb != 1 {
		t.Errorf("returns to UDP: A %d, B %d; want 1 each", ra, rb)
	}
}
