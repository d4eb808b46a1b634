package tunnel

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/mls"
)

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                "192.0.2.7/32",
		"::ffff:192.0.2.7":         "192.0.2.7/32",
		"2001:db8:1:2:aaaa::1":     "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:1:2:3":  "2001:db8:1:2::/64",
		"2001:db8:1:3::1":          "2001:db8:1:3::/64",
		"fe80::1234:5678:9abc:def": "fe80::/64",
	} {
		if got := hostOf(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("hostOf(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestHostLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newHostLimiter(10, 4, 3)
	h1, h2 := hostOf(netip.MustParseAddr("192.0.2.1")), hostOf(netip.MustParseAddr("2001:db8::1"))
	for i := range 4 {
		if !l.allow(t0, h1) {
			t.Fatalf("burst token %d refused", i)
		}
	}
	if l.allow(t0, h1) {
		t.Fatal("allowed beyond the burst")
	}
	// Another port or address of the same /64 is the same host.
	if !l.allow(t0, h2) || !l.allow(t0, hostOf(netip.MustParseAddr("2001:db8::ffff"))) {
		t.Fatal("a second host shares the first's bucket")
	}
	if !l.allow(t0.Add(100*time.Millisecond), h1) {
		t.Fatal("no token after a tenth of a second at 10/s")
	}
	// The table is bounded: a third and fourth host while none refilled.
	if !l.allow(t0, hostOf(netip.MustParseAddr("192.0.2.3"))) {
		t.Fatal("third host refused with room in the table")
	}
	if l.allow(t0, hostOf(netip.MustParseAddr("192.0.2.4"))) {
		t.Fatal("a host beyond the table's bound was admitted while every bucket is in use")
	}
	// Once refilled, buckets are forgotten by the sweep.
	l.sweep(t0.Add(time.Second))
	if n := l.len(); n != 0 {
		t.Fatalf("%d hosts left after every bucket refilled", n)
	}
}

// fragment builds a ClientHello fragment datagram (receiver 0, no cookie).
func fragment(sender, id uint32, total, off int, data []byte) []byte {
	b := []byte{session.DatagramHandshake}
	b = binary.BigEndian.AppendUint32(b, sender)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = append(b, 0) // no cookie
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, uint32(total))
	b = binary.BigEndian.AppendUint32(b, uint32(off))
	return append(b, data...)
}

func addFrag(t *testing.T, a *helloAssembler, now time.Time, src string, b []byte) (assembleVerdict, []byte, [][]byte) {
	t.Helper()
	f, ok := session.ParseHandshakeFragment(b)
	if !ok {
		t.Fatal("test fragment does not parse")
	}
	return a.add(now, netip.MustParseAddrPort(src), b, f)
}

func TestHelloAssemblerCompletes(t *testing.T) {
	a := newHelloAssembler()
	t0 := time.Unix(1000, 0)
	msg := make([]byte, 3000)
	for i := range msg {
		msg[i] = byte(i)
	}
	// Out of order, with a duplicate.
	parts := [][2]int{{2000, 3000}, {0, 1000}, {2000, 3000}, {1000, 2000}}
	var env []byte
	var raws [][]byte
	for i, pr := range parts {
		v, e, r := addFrag(t, a, t0, "192.0.2.1:4000", fragment(7, 1, len(msg), pr[0], msg[pr[0]:pr[1]]))
		if i < len(parts)-1 && v != asmPending {
			t.Fatalf("fragment %d: verdict %d", i, v)
		}
		env, raws = e, r
	}
	if string(env) != string(msg) {
		t.Fatal("reassembled envelope differs")
	}
	if len(raws) != 3 {
		t.Fatalf("%d datagrams handed on, want 3 (the duplicate is not kept)", len(raws))
	}
	if b, m := a.held(); b != 0 || m != 0 {
		t.Fatalf("%d bytes in %d messages held after completion", b, m)
	}
}

func TestHelloAssemblerBudget(t *testing.T) {
	a := newHelloAssembler()
	t0 := time.Unix(1000, 0)
	big := make([]byte, 8000)
	// One host, many ports: its share is preHelloHostBytes, whatever the
	// port or message.
	var refused int
	for port := range 64 {
		for off := 0; off+len(big) < maxClientHelloLen; off += len(big) {
			v, _, _ := addFrag(t, a, t0, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(1000+port)).String(), fragment(uint32(port), 1, maxClientHelloLen, off, big))
			if v == asmOverBudget {
				refused++
			}
		}
	}
	if b, _ := a.held(); b > preHelloHostBytes {
		t.Fatalf("one host holds %d bytes, budget %d", b, preHelloHostBytes)
	}
	if refused == 0 {
		t.Fatal("nothing refused")
	}
	// Another host still gets in.
	if v, _, _ := addFrag(t, a, t0, "192.0.2.2:1000", fragment(1, 1, 2000, 0, big[:1000])); v != asmPending {
		t.Fatalf("second host refused: verdict %d", v)
	}
	// A message larger than any ClientHello is refused outright.
	if v, _, _ := addFrag(t, a, t0, "192.0.2.3:1000", fragment(1, 1, 1<<16, 0, big[:1000])); v != asmBad {
		t.Fatalf("a 64 KiB ClientHello: verdict %d", v)
	}
	// Many hosts: the total stays within preHelloBytes.
	for i := range 400 {
		ip := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		for m := range 2 {
			addFrag(t, a, t0, netip.AddrPortFrom(ip, 1).String(), fragment(uint32(m), 1, maxClientHelloLen, 0, big))
		}
	}
	if b, m := a.held(); b > preHelloBytes || m > preHelloMessages {
		t.Fatalf("held %d bytes in %d messages, budget %d in %d", b, m, preHelloBytes, preHelloMessages)
	}
	// The timer empties it; nothing waits for a next arrival.
	if n := a.expire(t0.Add(preHelloLifetime)); n == 0 {
		t.Fatal("nothing expired")
	}
	if b, m := a.held(); b != 0 || m != 0 {
		t.Fatalf("%d bytes in %d messages held after expiry", b, m)
	}
	if len(a.hosts) != 0 {
		t.Fatalf("%d host entries left after expiry", len(a.hosts))
	}
}

func TestHelloAssemblerInconsistent(t *testing.T) {
	a := newHelloAssembler()
	t0 := time.Unix(1000, 0)
	addFrag(t, a, t0, "192.0.2.1:1", fragment(1, 1, 3000, 0, make([]byte, 1000)))
	// The same message with another total length: dropped, and the
	// partial message with it.
	if v, _, _ := addFrag(t, a, t0, "192.0.2.1:1", fragment(1, 1, 4000, 1000, make([]byte, 1000))); v != asmBad {
		t.Fatalf("verdict %d", v)
	}
	if b, m := a.held(); b != 0 || m != 0 {
		t.Fatalf("%d bytes in %d messages held", b, m)
	}
}

func TestHelloLog(t *testing.T) {
	var l helloLog
	h := func(i int) (x [32]byte) { x[0], x[1] = byte(i), byte(i>>8); return }
	for i := range helloLogLen {
		l.add(h(i))
	}
	for i := range helloLogLen {
		if !l.seen(h(i)) {
			t.Fatalf("hello %d forgotten", i)
		}
	}
	l.add(h(helloLogLen))
	if l.seen(h(0)) || !l.seen(h(helloLogLen)) {
		t.Fatal("not a ring of the newest")
	}
}

// TestUDPHelloReplay replays a genuine ClientHello to a responder many
// times from many ports: one handshake is done, the replays are refused
// before any asymmetric work.
func TestUDPHelloReplay(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}}}, ka)
	s, err := session.New(sealingTo(t, session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: kb.priv, PeerPublicKey: ka.pub, Transport: session.Datagram}, a.dev))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(time.Now()); err != nil {
		t.Fatal(err)
	}
	hello := s.Outgoing()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.dev.UDPPort()}
	const ports = 40
	for range ports {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range hello {
			if _, err := c.WriteToUDP(d, dst); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	g := func() GuardStats { return a.dev.GuardStats() }
	defer func() {
		if t.Failed() {
			t.Logf("guard: %+v, stats %+v", g(), a.dev.Stats())
		}
	}()
	// One host: beyond its burst the listener refuses; within it every
	// copy reaches the owner, which answers the first and hands the rest
	// to that session as retransmissions (answered from its cache).
	waitFor(t, "the host limit", func() bool { return g().Refused["rate_host"] >= ports-handshakeHostBurst-2 })
	time.Sleep(100 * time.Millisecond)
	if st := g(); st.HandshakesResponded != 1 {
		t.Fatalf("%d responder handshakes for one hello replayed from %d ports: %+v", st.HandshakesResponded, ports, st)
	}
}

// TestTCPHelloReplay replays a genuine ClientHello on new TCP
// connections: the first is answered, every other one is refused as a
// replay before any asymmetric work.
func TestTCPHelloReplay(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	hello := sealedHelloBytes(t, kb, a.dev)
	const conns = 20
	for range conns {
		c, err := net.Dial("tcp", a.dev.ListenAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	defer func() {
		if t.Failed() {
			t.Logf("guard: %+v", a.dev.GuardStats())
		}
	}()
	// A connection holds one of its host's half-open slots until the
	// owner takes it, so on a slow machine some are refused at accept.
	waitFor(t, "the replays refused", func() bool {
		r := a.dev.GuardStats().Refused
		return r["hello_replay"]+r["tcp_busy"] == conns-1 && r["hello_replay"] > 0
	})
	if st := a.dev.GuardStats(); st.HandshakesResponded != 1 {
		t.Fatalf("%d responder handshakes for one hello on %d connections: %+v", st.HandshakesResponded, conns, st)
	}
}

// TestTCPHalfOpenPerHost: one host cannot hold more than its share of the
// connections waiting for a ClientHello.
func TestTCPHalfOpenPerHost(t *testing.T) {
	ka := newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0}, ka)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range maxHalfOpenPerHost + 4 {
		c, err := net.Dial("tcp", a.dev.ListenAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, "refusals", func() bool { return a.dev.GuardStats().Refused["tcp_busy"] == 4 })
	if n := a.dev.GuardStats().HalfOpen; n != maxHalfOpenPerHost {
		t.Fatalf("%d half-open connections held for one host, bound %d", n, maxHalfOpenPerHost)
	}
}

// TestCandidateAccounting: a ClientHello for an established peer makes a
// candidate, which holds one of the device's candidate slots until it
// proves itself or times out; the slot comes back either way.
func TestCandidateAccounting(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, HandshakeTimeout: 300 * time.Millisecond, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}}}, ka)
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.dev.UDPPort()}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func() {
		s, err := session.New(sealingTo(t, session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: kb.priv, PeerPublicKey: ka.pub, Transport: session.Datagram}, a.dev))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, d := range s.Outgoing() {
			if _, err := c.WriteToUDP(d, dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	send() // the session: A answers and counts it established
	waitFor(t, "the first session", func() bool { return a.dev.Stats().Peers["b"].Established })
	send() // a replacement that never proves itself
	waitFor(t, "a candidate", func() bool { return a.dev.guard.candidates.Load() == 1 })
	waitFor(t, "the candidate's timeout", func() bool { return a.dev.guard.candidates.Load() == 0 })
	if st := a.dev.GuardStats(); st.HandshakesResponded != 2 {
		t.Fatalf("%d handshakes responded, want 2: %+v", st.HandshakesResponded, st)
	}
	var g guard
	for i := range maxCandidates {
		if !g.takeCandidate() {
			t.Fatalf("candidate %d refused", i)
		}
	}
	if g.takeCandidate() {
		t.Fatal("a candidate beyond maxCandidates")
	}
}

// TestOneChallengePerHello: under load (here: the handshake ceiling
// drained) a fragmented ClientHello draws one CookieChallenge (for its
// first fragment), not one per fragment.
func TestOneChallengePerHello(t *testing.T) {
	a := startNode(t, Config{ListenPort: 0}, newKeys(t, testSuite))
	// Empty, and refilled only from an hour on: a refill counts from
	// the bucket's last time.
	g := a.dev.guard.global
	g.mu.Lock()
	g.b.tokens, g.b.last = 0, time.Now().Add(time.Hour)
	g.mu.Unlock()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.dev.UDPPort()}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const hellos = 200
	data := make([]byte, 500)
	for i := range hellos {
		for off := 0; off < 3*len(data); off += len(data) {
			if _, err := c.WriteToUDP(fragment(uint32(i+1), 1, 3*len(data), off, data), dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	challenges := 0
	buf := make([]byte, 2048)
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if n > 0 && buf[0] == session.DatagramCookie {
			challenges++
		}
	}
	if challenges == 0 || challenges > hellos {
		t.Fatalf("%d CookieChallenges for %d hellos of 3 fragments", challenges, hellos)
	}
	t.Logf("%d CookieChallenges for %d hellos", challenges, hellos)
}

// TestRefusedKeyPackageCounted: a pinned peer's ClientHello whose
// KeyPackage the responder refuses (here: its lifetime ended, as from a
// peer whose clock is months behind) gets no answer, so the refusal must
// show in current_unauthenticated_refused_total{reason="bad_key_package"}
// (docs/protocol.md 7.3) over both transports.
func TestRefusedKeyPackageCounted(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	past := time.Now().Add(-mls.DefaultKeyPackageLifetime - 24*time.Hour)
	// A hello key valid then and now, so that the hello opens and the
	// KeyPackage inside is what gets refused.
	wide, err := session.NewHelloKey(testSuite, ka.priv, past.Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.dev.hello.ring.Install(wide); err != nil {
		t.Fatal(err)
	}
	hello := func(tr session.Transport) [][]byte {
		s, err := session.New(sealingTo(t, session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: kb.priv, PeerPublicKey: ka.pub, Transport: tr}, a.dev))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(past); err != nil {
			t.Fatal(err)
		}
		return s.Outgoing()
	}
	refused := func() uint64 { return a.dev.GuardStats().Refused["bad_key_package"] }

	c, err := net.Dial("tcp", a.dev.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(bytes.Join(hello(session.Stream), nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the TCP refusal counted", func() bool { return refused() == 1 })

	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.dev.UDPPort()}
	for _, d := range hello(session.Datagram) {
		if _, err := u.WriteToUDP(d, dst); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the UDP refusal counted", func() bool { return refused() == 2 })
	if p := a.dev.Stats().Peers["b"]; p.Established {
		t.Fatal("a refused KeyPackage established a session")
	}
}

// TestCopiesPassTheCeiling: at the device's handshake ceiling a new hello
// is refused, but a copy of one already opened still reaches its peer
// (which answers from its cache), limited only by its host's bucket.
func TestCopiesPassTheCeiling(t *testing.T) {
	g := newGuard(slog.New(slog.DiscardHandler))
	now := time.Unix(1000, 0)
	for i := 0; g.global.allow(now); i++ {
		if i > 1<<20 {
			t.Fatal("the global limiter never runs dry")
		}
	}
	host := hostOf(netip.MustParseAddr("192.0.2.9"))
	if g.admitCeiling(now, "192.0.2.9:1") {
		t.Fatal("a new hello passed an exhausted device limit")
	}
	if !g.admitCopy(now, host, "192.0.2.9:1") {
		t.Fatal("a copy of an opened hello was refused at the ceiling")
	}
	for i := 0; g.admitCopy(now, host, "192.0.2.9:1"); i++ {
		if i > 1<<20 {
			t.Fatal("copies from one host are not limited")
		}
	}
	if g.refused[refRateHost].Load() == 0 || g.refused[refRateGlobal].Load() == 0 {
		t.Fatalf("refusals not counted: host %d, global %d", g.refused[refRateHost].Load(), g.refused[refRateGlobal].Load())
	}
}
