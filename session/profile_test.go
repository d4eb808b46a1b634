package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/record"
)

// Tests of the two-party profile's rules, the collision rules, stream-mode
// resumption and simultaneous open, fragmentation, cookies and strangers.

func streamOut(s *Session) []byte {
	var b []byte
	for _, o := range s.Outgoing() {
		b = append(b, o...)
	}
	return b
}

// Rule: a party waiting for the EpochKeyUpdate of its own ConnectionUpdate
// sends no other ConnectionUpdate — not on request, not from the policy.
func TestRuleNoSecondUpdateWhileWaiting(t *testing.T) {
	id := testSuites[0]
	l := newLink(t, id, 11)
	l.pump()
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	for _, s := range []*Session{l.a.s, i} {
		s.cfg.UpdateBytes = 10
		if err := s.Update(t0); err != nil {
			t.Fatal(err)
		}
		s.Outgoing()
		if err := s.Update(t0); !errors.Is(err, ErrUpdatePending) {
			t.Fatalf("second Update: %v", err)
		}
		// Neither the byte threshold nor the timer starts one.
		if err := s.SendPacket(t0, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if err := s.HandleTimeout(t0.Add(time.Hour)); err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
		for _, o := range s.Outgoing() {
			if s.cfg.Transport == Datagram && o[0] == record.DatagramTypeRecord && len(o) > 200 {
				t.Fatal("a second commit went out")
			}
		}
	}
}

// Rule: the committer keeps sending under the old epoch until the
// EpochKeyUpdate arrives.
func TestRuleCommitterWaitsForConfirmation(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	e := i.Epoch()
	if err := i.Update(t0); err != nil {
		t.Fatal(err)
	}
	cu := i.Outgoing()
	if err := i.SendPacket(t0, []byte{1}); err != nil {
		t.Fatal(err)
	}
	rec := i.Outgoing()[0]
	if got := binary.BigEndian.Uint16(rec[1:]); uint64(got) != e || i.Epoch() != e {
		t.Fatalf("committer sealed under epoch %d before confirmation (group %d)", got, i.Epoch())
	}
	for _, d := range cu {
		if err := r.HandleDatagram(t0, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.HandleDatagram(t0, rec); err != nil {
		t.Fatalf("old-epoch packet after the switch: %v", err)
	}
	settle(t, i, r, t0)
	if i.Epoch() != e+1 || r.Epoch() != e+1 || len(dataPackets(r)) != 1 {
		t.Fatal("update not completed")
	}
}

// Collision rule, datagram mode: both commit in the same epoch; the
// initiator drops the responder's commit, the responder discards its own
// pending commit and applies the initiator's, and both end one epoch on.
func TestRuleCollisionDatagram(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	e := i.Epoch()
	if err := i.Update(t0); err != nil {
		t.Fatal(err)
	}
	if err := r.Update(t0); err != nil {
		t.Fatal(err)
	}
	fromI, fromR := i.Outgoing(), r.Outgoing()
	for _, d := range fromR {
		if err := i.HandleDatagram(t0, d); !errors.Is(err, ErrDropped) {
			t.Fatalf("initiator took the responder's commit: %v", err)
		}
	}
	if !i.waiting || i.Epoch() != e {
		t.Fatal("initiator gave up its own commit")
	}
	for _, d := range fromI {
		if err := r.HandleDatagram(t0, d); err != nil {
			t.Fatal(err)
		}
	}
	if r.waiting || (r.dg.rtx != nil && !r.dg.rtx.hold) || r.Epoch() != e+1 {
		t.Fatalf("responder: waiting %v epoch %d", r.waiting, r.Epoch())
	}
	settle(t, i, r, t0)
	if i.Epoch() != e+1 || r.Epoch() != e+1 || i.waiting || r.waiting {
		t.Fatalf("epochs %d %d", i.Epoch(), r.Epoch())
	}
	// A late copy of the discarded commit is stale and dropped.
	for _, d := range fromR {
		if err := i.HandleDatagram(t0, d); !errors.Is(err, ErrDropped) {
			t.Fatalf("stale commit: %v", err)
		}
	}
	if i.Epoch() != e+1 || !i.Established() {
		t.Fatal("stale commit changed state")
	}
}

// Collision rule, stream mode: the commits cross on the wire.
func TestRuleCollisionStream(t *testing.T) {
	l := newLink(t, testSuites[0], 12)
	l.pump()
	e := l.a.s.Epoch()
	mustUpdate(t, l.a)
	mustUpdate(t, l.b)
	fromA, fromB := streamOut(l.a.s), streamOut(l.b.s)
	if err := l.a.s.HandleStream(t0, fromB); err != nil {
		t.Fatal(err)
	}
	if !l.a.s.waiting {
		t.Fatal("initiator dropped its own commit")
	}
	if err := l.b.s.HandleStream(t0, fromA); err != nil {
		t.Fatal(err)
	}
	if l.b.s.waiting || l.b.s.Epoch() != e+1 {
		t.Fatal("responder did not apply the initiator's commit")
	}
	l.pump()
	if l.a.s.Epoch() != e+1 || l.b.s.Epoch() != e+1 {
		t.Fatalf("epochs %d %d", l.a.s.Epoch(), l.b.s.Epoch())
	}
	l.send(l.a, 2)
	l.send(l.b, 2)
	l.pump()
	if l.a.next != 2 || l.b.next != 2 {
		t.Fatal("packets lost after the collision")
	}
}

// An EpochKeyUpdate that confirms nothing is dropped in datagram mode (it
// may be a duplicate) and fatal in stream mode (TestBadEpochKeyUpdateIsFatal).
func TestRuleStrayEpochKeyUpdateDatagram(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	if err := i.sendControl(&EpochKeyUpdate{Epoch: i.Epoch() + 1}); err != nil {
		t.Fatal(err)
	}
	for _, d := range i.Outgoing() {
		if err := r.HandleDatagram(t0, d); !errors.Is(err, ErrDropped) {
			t.Fatalf("stray EpochKeyUpdate: %v", err)
		}
	}
	if !r.Established() || r.Epoch() != 1 {
		t.Fatal("state changed")
	}
}

func streamResume(t *testing.T, id mls.CipherSuiteID, k keyPair, pin []byte, role Role, state []byte) *Session {
	t.Helper()
	s, err := New(Config{Role: role, Suite: id, SigningKey: k.priv, PeerPublicKey: pin, Rand: newSeeded(byte(role) + 40), Resume: state})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStreamResumption: a TCP reconnect with both sides restored from
// their persisted groups resumes at epoch e+2 on the new connection; a
// responder that cannot resume makes the initiator fall back to a fresh
// handshake on the same connection after ResumeTimeout.
func TestStreamResumption(t *testing.T) {
	for _, id := range testSuites {
		ik, rk := newKeys(t, id), newKeys(t, id)
		l := newLinkWith(t, id, 13, ik, rk)
		l.pump()
		mustUpdate(t, l.b)
		l.pump()
		e := l.a.s.Epoch()
		si, err := l.a.s.State()
		if err != nil {
			t.Fatal(err)
		}
		sr, err := l.b.s.State()
		if err != nil {
			t.Fatal(err)
		}
		// The connection breaks; both restart from what they persisted.
		l2 := &link{tb: t, rng: l.rng, now: t0,
			a: &peer{s: streamResume(t, id, ik, rk.pub, Initiator, si), name: "initiator"},
			b: &peer{s: streamResume(t, id, rk, ik.pub, Responder, sr), name: "responder"}}
		if err := l2.b.s.Start(t0); err != nil {
			t.Fatal(err)
		}
		if err := l2.a.s.Start(t0); err != nil {
			t.Fatal(err)
		}
		l2.pump()
		if !l2.a.s.Established() || !l2.b.s.Established() || l2.a.s.Epoch() != e+2 || l2.b.s.Epoch() != e+2 {
			t.Fatalf("%#04x: epochs %d %d, want %d", uint16(id), l2.a.s.Epoch(), l2.b.s.Epoch(), e+2)
		}
		if est := events[Established](l2.a.s); len(est) != 1 || est[0].Epoch != e+2 {
			t.Fatalf("events %v", est)
		}
		l2.send(l2.a, 3)
		l2.send(l2.b, 3)
		mustUpdate(t, l2.a)
		l2.pump()
		if l2.a.next != 3 || l2.b.next != 3 || l2.a.s.Epoch() != e+3 {
			t.Fatal("no traffic or updates after resumption")
		}

		// The responder lost its state (a fresh responder) or kept another
		// epoch: it rejects the request, and the initiator handshakes on
		// the same connection at once, no timer involved.
		for _, rstate := range [][]byte{nil, sr} {
			si, _ := l2.a.s.State()
			l3 := &link{tb: t, rng: l.rng, now: t0,
				a: &peer{s: streamResume(t, id, ik, rk.pub, Initiator, si), name: "initiator"},
				b: &peer{s: streamResume(t, id, rk, ik.pub, Responder, rstate), name: "responder"}}
			_ = l3.b.s.Start(t0)
			_ = l3.a.s.Start(t0)
			l3.pump()
			if !l3.a.s.Established() || !l3.b.s.Established() || l3.a.s.Epoch() != 1 || l3.b.s.Epoch() != 1 {
				t.Fatalf("no fallback handshake after the reject: %v %v", l3.a.s.Established(), l3.b.s.Established())
			}
			if l3.a.s.Resumed() || l3.b.s.Resumed() {
				t.Fatal("resumed from mismatched state")
			}
			l3.send(l3.a, 1)
			l3.send(l3.b, 1)
			l3.pump()
		}

		// A responder that says nothing (its reject lost, or none sent):
		// the initiator falls back after ResumeTimeout.
		si, _ = l2.a.s.State()
		l4 := &link{tb: t, rng: l.rng, now: t0,
			a: &peer{s: streamResume(t, id, ik, rk.pub, Initiator, si), name: "initiator"},
			b: &peer{s: streamResume(t, id, rk, ik.pub, Responder, sr), name: "responder"}}
		_ = l4.b.s.Start(t0)
		_ = l4.a.s.Start(t0)
		l4.a.s.Outgoing() // the request is lost with the responder's answer
		due := l4.a.s.NextTimeout()
		if due.Sub(t0) != DefaultResumeTimeout {
			t.Fatalf("resume timer at %v", due.Sub(t0))
		}
		l4.now = due
		if err := l4.a.s.HandleTimeout(due); err != nil {
			t.Fatal(err)
		}
		l4.pump()
		if !l4.a.s.Established() || !l4.b.s.Established() || l4.a.s.Epoch() != 1 {
			t.Fatal("fallback handshake after ResumeTimeout failed")
		}
	}
}

// TestStreamSimultaneousOpen: each TCP connection has a dialer and an
// acceptor, so a stream Session refuses a ClientHello as initiator, and
// PreferOutgoing tells both sides which of two crossing connections to
// keep.
func TestStreamSimultaneousOpen(t *testing.T) {
	id := testSuites[0]
	ak, bk := newKeys(t, id), newKeys(t, id)
	a, _ := newSessions(t, id, ak, bk, bk.pub, ak.pub)
	b, _ := newSessions(t, id, bk, ak, ak.pub, bk.pub)
	mustStart(t, b, a)
	if err := b.Start(t0); err != nil && !errors.Is(err, ErrNotEstablished) && !errors.Is(err, ErrUnexpectedMessage) {
		t.Fatal(err)
	}
	a.Outgoing() // its own ClientHello
	err := a.HandleStream(t0, streamOut(b))
	if !errors.Is(err, ErrSimultaneousOpen) || !errors.Is(err, ErrUnexpectedMessage) {
		t.Fatalf("ClientHello at a stream initiator: %v", err)
	}
	if len(a.Outgoing()) != 0 {
		t.Fatal("initiator answered")
	}
	if PreferOutgoing(ak.pub, bk.pub) == PreferOutgoing(bk.pub, ak.pub) {
		t.Fatal("PreferOutgoing is not antisymmetric")
	}
	if PreferOutgoing(ak.pub, bk.pub) != (compareKeys(ak.pub, bk.pub) < 0) {
		t.Fatal("PreferOutgoing disagrees with datagram mode's tie-break")
	}
}

// TestFragmentationPQ: the post-quantum suite's KeyPackage and Welcome do
// not fit one datagram; every fragment fits, and the handshake completes
// with fragments reordered and duplicated, and with a small MTU.
func TestFragmentationPQ(t *testing.T) {
	id := mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519
	ik, rk := newKeys(t, id), newKeys(t, id)
	for _, mtu := range []int{DefaultMaxDatagramSize, minDatagramSize} {
		mk := func(role Role, k keyPair, pin []byte) *Session {
			s, err := New(Config{Role: role, Suite: id, SigningKey: k.priv, PeerPublicKey: pin, Transport: Datagram, MaxDatagramSize: mtu})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(t0); err != nil {
				t.Fatal(err)
			}
			return s
		}
		i, r := mk(Initiator, ik, rk.pub), mk(Responder, rk, ik.pub)
		hello := i.Outgoing()
		if len(hello) < 2 {
			t.Fatalf("ClientHello in %d datagrams", len(hello))
		}
		total := 0
		for _, d := range hello {
			if len(d) > mtu {
				t.Fatalf("%d-byte datagram, MTU %d", len(d), mtu)
			}
			_, _, _, frag, _ := parsePlainHeader(d)
			_, tl, _, data, ok := parseFragment(frag)
			if !ok {
				t.Fatal("bad fragment")
			}
			total += len(data)
			if tl <= mtu {
				t.Fatalf("KeyPackage envelope of %d bytes fits one datagram", tl)
			}
		}
		// Reversed, with the last one duplicated.
		slices.Reverse(hello)
		hello = append(hello, hello[0])
		for _, d := range hello {
			if err := r.HandleDatagram(t0, bytes.Clone(d)); err != nil {
				t.Fatal(err)
			}
		}
		welcome := r.Outgoing()
		if len(welcome) < 2 {
			t.Fatalf("ServerHello in %d datagrams", len(welcome))
		}
		// Drop one fragment: nothing completes until a retransmission.
		for _, d := range welcome[1:] {
			if err := i.HandleDatagram(t0, d); err != nil {
				t.Fatal(err)
			}
		}
		if i.Established() {
			t.Fatal("established from a partial Welcome")
		}
		due := i.NextTimeout()
		if err := i.HandleTimeout(due); err != nil {
			t.Fatal(err)
		}
		settle(t, i, r, due)
		if !i.Established() || !r.Established() {
			t.Fatalf("MTU %d: not established", mtu)
		}
		if err := i.Update(due); err != nil {
			t.Fatal(err)
		}
		if n := len(i.Outgoing()); n < 2 {
			t.Fatalf("PQ ConnectionUpdate in %d datagrams", n)
		}
	}
}

// TestCookieNoWorkBeforeCookie makes the cookie path's promise explicit:
// under load, Admit answers anything shaped like a ClientHello datagram
// with a challenge without parsing its KeyPackage (garbage is challenged
// just the same), creates no state, and costs no more than an HMAC.
func TestCookieNoWorkBeforeCookie(t *testing.T) {
	jar, err := NewCookieJar(CookieJarConfig{Rand: newSeeded(3)})
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte{DatagramHandshake, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}
	addr := []byte{198, 51, 100, 1, 0, 53}
	adm, reply := jar.Admit(t0, addr, garbage)
	if adm != AdmitChallenge || len(reply) != 6+cookieLen || jar.Sources() != 0 {
		t.Fatalf("garbage: %d %x, %d sources", adm, reply, jar.Sources())
	}
	if binary.BigEndian.Uint32(reply[1:]) != 7 {
		t.Fatal("challenge not addressed to the sender index")
	}
	allocs := testing.AllocsPerRun(100, func() { jar.Admit(t0, addr, garbage) })
	if allocs > 10 || jar.Sources() != 0 {
		t.Fatalf("Admit without a cookie: %v allocations, %d sources", allocs, jar.Sources())
	}
	start := time.Now()
	for range 1000 {
		jar.Admit(t0, addr, garbage)
	}
	// An Ed25519 verification alone takes ~50µs; a thousand challenges
	// must take far less than a thousand verifications.
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Logf("1000 challenges took %v (loaded machine?)", d)
	}
	// Answering a challenge: the cookie makes the same garbage admissible
	// (the jar still knows nothing about keys); the Session then refuses it.
	withCookie := append([]byte{DatagramHandshake, 0, 0, 0, 7, 0, 0, 0, 0, cookieLen}, reply[6:]...)
	withCookie = append(withCookie, garbage[10:]...)
	if adm, _ := jar.Admit(t0, addr, withCookie); adm != AdmitAccept || jar.Sources() != 1 {
		t.Fatalf("valid cookie: %d", adm)
	}
	// Non-initiations are dropped outright.
	for _, d := range [][]byte{nil, {0x80}, {DatagramCookie, 0, 0, 0, 1, 1, 1}, withCookie[:9]} {
		if adm, _ := jar.Admit(t0, addr, d); adm != AdmitDrop {
			t.Fatalf("%x admitted", d)
		}
	}
}

// TestUnknownPeerFirstCheck: the pin is compared before any signature
// check, so a stranger's KeyPackage with a broken signature still fails as
// ErrUnknownPeer; in datagram mode the responder closes silently, and an
// initiator drops a ServerHello from a stranger and keeps waiting for the
// real one.
func TestUnknownPeerFirstCheck(t *testing.T) {
	id := testSuites[0]
	ik, rk, stranger := newKeys(t, id), newKeys(t, id), newKeys(t, id)

	// A stranger's ClientHello, its signature broken, at a datagram responder.
	s, _ := newDatagramPair(t, id, stranger, rk)
	hello := s.Outgoing()
	hello[0][len(hello[0])-1] ^= 0xff
	_, r := newDatagramPair(t, id, ik, rk)
	if err := r.HandleDatagram(t0, hello[0]); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("stranger: %v", err)
	}
	if len(r.Outgoing()) != 0 || r.NextTimeout() != (time.Time{}) {
		t.Fatal("responder answered or kept state")
	}
	// The pinned peer's ClientHello with a broken signature fails validation
	// instead, proving the order of the checks.
	i, r2 := newDatagramPair(t, id, ik, rk)
	good := i.Outgoing()
	bad := bytes.Clone(good[0])
	bad[len(bad)-1] ^= 0xff
	if err := r2.HandleDatagram(t0, bad); err == nil || errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("broken signature from the pinned peer: %v", err)
	}

	// A stranger's responder answers our ClientHello: dropped, we wait.
	i, _ = newDatagramPair(t, id, ik, rk)
	hello = i.Outgoing()
	evil, err := New(Config{Role: Responder, Suite: id, SigningKey: stranger.priv, PeerPublicKey: ik.pub, Transport: Datagram})
	if err != nil {
		t.Fatal(err)
	}
	_ = evil.Start(t0)
	for _, d := range hello {
		if err := evil.HandleDatagram(t0, bytes.Clone(d)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range evil.Outgoing() {
		if err := i.HandleDatagram(t0, d); !errors.Is(err, ErrDropped) {
			t.Fatalf("stranger's ServerHello: %v", err)
		}
	}
	if i.Established() || i.Epoch() != 0 {
		t.Fatal("joined a stranger's group")
	}
	_, real := newDatagramPair(t, id, ik, rk)
	for _, d := range hello {
		_ = real.HandleDatagram(t0, bytes.Clone(d))
	}
	settle(t, i, real, t0)
	if !i.Established() {
		t.Fatal("the real responder was not accepted after a stranger's")
	}
}

// TestSealPacketTo: records sealed in place into a caller buffer open at
// the peer like SendPacket's, in both modes.
func TestSealPacketTo(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	buf := make([]byte, PacketOverhead(Datagram)+4)
	copy(buf[PacketHeadroom(Datagram):], "abcd")
	d, err := i.SealPacketTo(t0, buf[:0], buf[PacketHeadroom(Datagram):PacketHeadroom(Datagram)+4])
	if err != nil || &d[0] != &buf[0] {
		t.Fatalf("not sealed in place: %v", err)
	}
	if err := r.HandleDatagram(t0, d); err != nil {
		t.Fatal(err)
	}
	if p := r.Packets(); len(p) != 1 || string(p[0]) != "abcd" {
		t.Fatalf("packets %q", p)
	}
	l := newLink(t, id, 14)
	l.pump()
	rec, err := l.a.s.SealPacketTo(t0, nil, []byte("efgh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.b.s.HandleStream(t0, rec); err != nil {
		t.Fatal(err)
	}
	if p := l.b.s.Packets(); len(p) != 1 || string(p[0]) != "efgh" {
		t.Fatalf("packets %q", p)
	}
	if _, err := l.a.s.SealPacketTo(t0, nil, nil); !errors.Is(err, ErrPacketSize) {
		t.Fatalf("empty packet: %v", err)
	}
}
