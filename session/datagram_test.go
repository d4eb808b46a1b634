package session

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

func newDatagramPair(tb testing.TB, id mls.CipherSuiteID, ik, rk keyPair) (*Session, *Session) {
	tb.Helper()
	mk := func(role Role, k keyPair, pin []byte, seed byte) *Session {
		s, err := New(Config{Role: role, Suite: id, SigningKey: k.priv, PeerPublicKey: pin,
			Rand: newSeeded(seed), Transport: Datagram})
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.Start(t0); err != nil {
			tb.Fatal(err)
		}
		return s
	}
	return mk(Initiator, ik, rk.pub, 1), mk(Responder, rk, ik.pub, 2)
}

// deliver hands every outgoing datagram of from to to, losslessly.
func deliver(tb testing.TB, from, to *Session, now time.Time) int {
	tb.Helper()
	out := from.Outgoing()
	for _, d := range out {
		if len(d) > DefaultMaxDatagramSize {
			tb.Fatalf("datagram of %d bytes", len(d))
		}
		if err := to.HandleDatagram(now, d); err != nil && !errors.Is(err, ErrDropped) {
			tb.Fatalf("HandleDatagram: %v", err)
		}
	}
	return len(out)
}

// dataPackets is what s delivered, keepalives (empty packets: the
// committer sends one after every datagram update, update.go) left out.
func dataPackets(s *Session) [][]byte {
	var out [][]byte
	for _, p := range s.Packets() {
		if len(p) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// startResumed starts a session resuming with cfg against peer and
// requires both at epoch want once settled.
func startResumed(t *testing.T, cfg Config, peer *Session, want uint64) *Session {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t0); err != nil {
		t.Fatal(err)
	}
	settle(t, s, peer, t0)
	if !s.Established() || s.Epoch() != want || peer.Epoch() != want {
		t.Fatalf("epochs %d %d, want %d", s.Epoch(), peer.Epoch(), want)
	}
	return s
}

func settle(tb testing.TB, a, b *Session, now time.Time) {
	tb.Helper()
	for deliver(tb, a, b, now)+deliver(tb, b, a, now) > 0 {
	}
}

func TestDatagramHandshakeAndUpdates(t *testing.T) {
	for _, id := range testSuites {
		t.Run(fmt.Sprintf("%#04x", uint16(id)), func(t *testing.T) {
			i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
			settle(t, i, r, t0)
			if !i.Established() || !r.Established() {
				t.Fatal("not established")
			}
			if i.PeerIndex() != r.LocalIndex() || r.PeerIndex() != i.LocalIndex() {
				t.Fatal("indices not exchanged")
			}
			for k := range 10 {
				a, b := i, r
				if k%2 == 1 {
					a, b = r, i
				}
				if err := a.Update(t0); err != nil {
					t.Fatal(err)
				}
				if k%3 == 2 { // collision
					if err := b.Update(t0); err != nil {
						t.Fatal(err)
					}
				}
				settle(t, i, r, t0)
				if i.Epoch() != r.Epoch() || i.waiting || r.waiting || i.holding() || r.holding() {
					t.Fatalf("round %d: epochs %d %d", k, i.Epoch(), r.Epoch())
				}
				if err := i.SendPacket(t0, []byte{byte(k)}); err != nil {
					t.Fatal(err)
				}
				settle(t, i, r, t0)
				if p := dataPackets(r); len(p) != 1 || p[0][0] != byte(k) {
					t.Fatalf("round %d: packets %v", k, p)
				}
			}
		})
	}
}

// TestDatagramDuplicates: a duplicate ClientHello gets the same
// ServerHello again, a duplicate ConnectionUpdate the same EpochKeyUpdate,
// and neither changes any state.
func TestDatagramDuplicates(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	hello := i.Outgoing()
	for _, d := range hello {
		if err := r.HandleDatagram(t0, bytes.Clone(d)); err != nil {
			t.Fatal(err)
		}
	}
	sh := r.Outgoing()
	for _, d := range hello {
		if err := r.HandleDatagram(t0, bytes.Clone(d)); err != nil {
			t.Fatal(err)
		}
	}
	if again := r.Outgoing(); len(again) != len(sh) || !bytes.Equal(again[0], sh[0]) {
		t.Fatal("duplicate ClientHello not answered with the same ServerHello")
	}
	for _, d := range sh {
		if err := i.HandleDatagram(t0, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := i.Update(t0); err != nil {
		t.Fatal(err)
	}
	cu := i.Outgoing()
	// A replayed record is dropped by the replay window; a retransmission
	// is a new record with the same message.
	if err := i.HandleTimeout(i.NextTimeout()); err != nil {
		t.Fatal(err)
	}
	cu = append(cu, cu[0])
	cu = append(cu, i.Outgoing()...)
	for k, d := range cu {
		err := r.HandleDatagram(t0, bytes.Clone(d))
		if (k == 1) != errors.Is(err, ErrDropped) || (k != 1 && err != nil) {
			t.Fatalf("datagram %d: %v", k, err)
		}
	}
	if r.Epoch() != 2 {
		t.Fatalf("responder at epoch %d", r.Epoch())
	}
	// The first EpochKeyUpdate is lost; the retransmitted commit is answered
	// again, under the old keys the initiator still holds.
	ekus := r.Outgoing()
	if len(ekus) != 2 {
		t.Fatalf("%d answers", len(ekus))
	}
	if err := i.HandleDatagram(t0, ekus[1]); err != nil {
		t.Fatal(err)
	}
	if i.Epoch() != 2 || i.waiting {
		t.Fatalf("initiator at epoch %d", i.Epoch())
	}
}

// TestDatagramRetransmitAndGiveUp: an unanswered ClientHello is resent
// with doubling intervals and the session closes after GiveUp.
func TestDatagramRetransmitAndGiveUp(t *testing.T) {
	id := testSuites[0]
	i, _ := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	first := i.Outgoing()
	var gaps []time.Duration
	last := t0
	for {
		next := i.NextTimeout()
		if next.IsZero() {
			t.Fatal("no timer")
		}
		err := i.HandleTimeout(next)
		if err != nil {
			if !errors.Is(err, ErrTimeout) || next.Sub(t0) != DefaultGiveUp {
				t.Fatalf("%v at %v", err, next.Sub(t0))
			}
			break
		}
		out := i.Outgoing()
		if len(out) != len(first) || !bytes.Equal(out[0], first[0]) {
			t.Fatal("retransmission differs")
		}
		gaps = append(gaps, next.Sub(last))
		last = next
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	if len(gaps) < len(want) || fmt.Sprint(gaps[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("retransmission gaps %v", gaps)
	}
}

func TestSimultaneousOpen(t *testing.T) {
	id := testSuites[0]
	ak, bk := newKeys(t, id), newKeys(t, id)
	mk := func(k keyPair, pin []byte, seed byte) *Session {
		s, err := New(Config{Role: Initiator, Suite: id, SigningKey: k.priv, PeerPublicKey: pin, Rand: newSeeded(seed), Transport: Datagram})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t0); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := mk(ak, bk.pub, 1), mk(bk, ak.pub, 2)
	settle(t, a, b, t0)
	if !a.Established() || !b.Established() || a.Epoch() != b.Epoch() {
		t.Fatal("did not converge")
	}
	lower := a
	if compareKeys(bk.pub, ak.pub) < 0 {
		lower = b
	}
	if lower.Role() != Initiator || a.Role() == b.Role() {
		t.Fatalf("roles %d %d", a.Role(), b.Role())
	}
	if err := a.SendPacket(t0, []byte{1}); err != nil {
		t.Fatal(err)
	}
	settle(t, a, b, t0)
	if len(b.Packets()) != 1 {
		t.Fatal("no packet")
	}
}

func TestResumption(t *testing.T) {
	id := testSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	i, r := newDatagramPair(t, id, ik, rk)
	settle(t, i, r, t0)
	state, err := i.State()
	if err != nil {
		t.Fatal(err)
	}
	epoch := i.Epoch()
	i2 := startResumed(t, Config{Role: Initiator, Suite: id, SigningKey: ik.priv, PeerPublicKey: rk.pub,
		Transport: Datagram, Resume: state, PeerIndex: r.LocalIndex()}, r, epoch+2)
	if err := r.SendPacket(t0, []byte{7}); err != nil {
		t.Fatal(err)
	}
	settle(t, i2, r, t0)
	if p := i2.Packets(); len(p) != 1 {
		t.Fatal("no packet after resumption")
	}

	// A peer without the state never answers: fall back to a handshake.
	fresh, err := New(Config{Role: Responder, Suite: id, SigningKey: rk.priv, PeerPublicKey: ik.pub, Transport: Datagram})
	if err != nil {
		t.Fatal(err)
	}
	_ = fresh.Start(t0)
	state, _ = i2.State()
	i3, _ := New(Config{Role: Initiator, Suite: id, SigningKey: ik.priv, PeerPublicKey: rk.pub,
		Transport: Datagram, Resume: state, PeerIndex: 99})
	_ = i3.Start(t0)
	settle(t, i3, fresh, t0)
	now := t0
	for !i3.Established() {
		now = i3.NextTimeout()
		if now.Sub(t0) > 10*time.Second {
			t.Fatal("no fallback")
		}
		if err := i3.HandleTimeout(now); err != nil {
			t.Fatal(err)
		}
		settle(t, i3, fresh, now)
	}
	if i3.Epoch() != 1 || !fresh.Established() {
		t.Fatalf("fallback handshake: epoch %d", i3.Epoch())
	}
}

// TestUpdatePolicy: the timer starts updates from both sides, with jitter.
func TestUpdatePolicy(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	now := t0
	for k := 0; k < 1000 && i.Epoch() < 6; k++ {
		a, b := i.NextTimeout(), r.NextTimeout()
		next := a
		if b.Before(a) {
			next = b
		}
		d := next.Sub(now)
		if d < 0 || d > 11*DefaultUpdateInterval/10 {
			t.Fatalf("next timer in %v", d)
		}
		now = next
		_ = i.HandleTimeout(now)
		_ = r.HandleTimeout(now)
		settle(t, i, r, now)
	}
	if i.Epoch() < 6 || i.Epoch() != r.Epoch() || now.Sub(t0) > 6*DefaultUpdateInterval {
		t.Fatalf("epochs %d %d after %v", i.Epoch(), r.Epoch(), now.Sub(t0))
	}
	// The byte threshold.
	i2, r2 := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	i2.cfg.UpdateBytes = 1000
	settle(t, i2, r2, t0)
	for range 3 {
		_ = i2.SendPacket(t0, make([]byte, 400))
	}
	if !i2.waiting {
		t.Fatal("byte threshold did not start an update")
	}
}

// TestCookie: under load a ClientHello without a cookie is answered with a
// stateless challenge and creates no session; the initiator retries with
// the cookie and gets in. Rate limiting then bounds sessions per source.
func TestCookie(t *testing.T) {
	id := testSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	load := true
	jar, err := NewCookieJar(CookieJarConfig{UnderLoad: func() bool { return load }, Rand: newSeeded(9), Burst: 2, Rate: 0.001, MaxSources: 4})
	if err != nil {
		t.Fatal(err)
	}
	addr := []byte{192, 0, 2, 1, 0x12, 0x34}
	created := 0
	var r *Session
	// listener is what a server does with a datagram matching no session.
	listener := func(now time.Time, from []byte, d []byte) []byte {
		switch adm, reply := jar.Admit(now, from, d); adm {
		case AdmitChallenge:
			return reply
		case AdmitAccept:
			created++
			r, err = New(Config{Role: Responder, Suite: id, SigningKey: rk.priv, PeerPublicKey: ik.pub, Transport: Datagram})
			if err != nil {
				t.Fatal(err)
			}
			_ = r.Start(now)
			if err := r.HandleDatagram(now, d); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}
	i, err := New(Config{Role: Initiator, Suite: id, SigningKey: ik.priv, PeerPublicKey: rk.pub, Transport: Datagram})
	if err != nil {
		t.Fatal(err)
	}
	_ = i.Start(t0)
	hello := i.Outgoing()
	challenge := listener(t0, addr, hello[0])
	if challenge == nil || created != 0 || jar.Sources() != 0 {
		t.Fatalf("no challenge (created %d, sources %d)", created, jar.Sources())
	}
	// From another address the cookie is worthless.
	if err := i.HandleDatagram(t0, challenge); err != nil {
		t.Fatal(err)
	}
	withCookie := i.Outgoing()
	if listener(t0, []byte{192, 0, 2, 2, 0x12, 0x34}, withCookie[0]) == nil || created != 0 {
		t.Fatal("cookie accepted from another address")
	}
	// Expired cookies are refused too.
	if listener(t0.Add(10*time.Minute), addr, withCookie[0]) == nil || created != 0 {
		t.Fatal("stale cookie accepted")
	}
	if listener(t0, addr, withCookie[0]) != nil || created != 1 {
		t.Fatal("valid cookie refused")
	}
	settle(t, i, r, t0)
	if !i.Established() || !r.Established() {
		t.Fatal("not established")
	}
	// Rate limit: the burst of 2 allows one more session from this source.
	load = false
	listener(t0, addr, withCookie[0])
	listener(t0, addr, withCookie[0])
	if created != 2 {
		t.Fatalf("%d sessions, want the rate limit to stop at 2", created)
	}
	for k := range 10 {
		listener(t0, []byte{10, 0, 0, byte(k)}, withCookie[0])
	}
	if jar.Sources() > 4 {
		t.Fatalf("rate limiter tracks %d sources", jar.Sources())
	}
}

func TestBindingVersionRefused(t *testing.T) {
	id := testSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	// Another version, and protocol 1.0's (1): a group of 1.0 is not
	// passed off as a 1.1 session, which would undo identity hiding.
	for _, v := range []byte{3, 1} {
		i, r := newSessions(t, id, ik, rk, rk.pub, ik.pub)
		r.groupExtensions = func() mls.Extensions {
			return mls.Extensions{{Type: ExtCurrentSession, Data: []byte{0, v}}}
		}
		mustStart(t, r, i)
		if err := exchange(r, i); !errors.Is(err, ErrNotCurrentGroup) {
			t.Fatalf("version %d: got %v, want ErrNotCurrentGroup", v, err)
		}
	}
}

func BenchmarkDatagramHandshake(b *testing.B) {
	for _, id := range testSuites {
		b.Run(fmt.Sprintf("%#04x", uint16(id)), func(b *testing.B) {
			ik, rk := newKeys(b, id), newKeys(b, id)
			b.ReportAllocs()
			var hello, welcome int
			for b.Loop() {
				i, r := newDatagramPair(b, id, ik, rk)
				hello = len(i.out)
				deliver(b, i, r, t0)
				welcome = len(r.out)
				deliver(b, r, i, t0)
				if !i.Established() {
					b.Fatal("not established")
				}
			}
			b.ReportMetric(float64(hello), "ClientHello-datagrams")
			b.ReportMetric(float64(welcome), "ServerHello-datagrams")
		})
	}
}

// TestResumptionBySwappedRole: the side that was the responder of the
// handshake restarts and resumes as initiator (the restarting side always
// sends the ResumptionRequest). The record keys' directions follow the
// group, not the resumption's roles, so data flows both ways.
func TestResumptionBySwappedRole(t *testing.T) {
	id := testSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	i, r := newDatagramPair(t, id, ik, rk)
	settle(t, i, r, t0)
	state, err := r.State()
	if err != nil {
		t.Fatal(err)
	}
	epoch := r.Epoch()
	r2, err := New(Config{Role: Initiator, Suite: id, SigningKey: rk.priv, PeerPublicKey: ik.pub,
		Transport: Datagram, Resume: state, LocalIndex: r.LocalIndex(), PeerIndex: i.LocalIndex()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Start(t0); err != nil {
		t.Fatal(err)
	}
	settle(t, r2, i, t0)
	if !r2.Established() || r2.Epoch() != epoch+2 || i.Epoch() != epoch+2 {
		t.Fatalf("epochs %d %d, want %d", r2.Epoch(), i.Epoch(), epoch+2)
	}
	if err := r2.SendPacket(t0, []byte{7}); err != nil {
		t.Fatal(err)
	}
	settle(t, r2, i, t0)
	if p := dataPackets(i); len(p) != 1 {
		t.Fatal("no packet from the resumed side")
	}
	if err := i.SendPacket(t0, []byte{8}); err != nil {
		t.Fatal(err)
	}
	settle(t, r2, i, t0)
	if p := dataPackets(r2); len(p) != 1 {
		t.Fatal("no packet to the resumed side")
	}
	// A commit collision still has one winner: the handshake's initiator.
	epoch = i.Epoch()
	if err := i.Update(t0); err != nil {
		t.Fatal(err)
	}
	if err := r2.Update(t0); err != nil {
		t.Fatal(err)
	}
	settle(t, r2, i, t0)
	if i.Epoch() != epoch+1 || r2.Epoch() != epoch+1 {
		t.Fatalf("after a collision: epochs %d %d, want %d", i.Epoch(), r2.Epoch(), epoch+1)
	}
	if err := i.SendPacket(t0, []byte{9}); err != nil {
		t.Fatal(err)
	}
	settle(t, r2, i, t0)
	if p := dataPackets(r2); len(p) != 1 {
		t.Fatal("no packet after the collision")
	}
}

// TestServerHelloForgotten: the responder keeps its ServerHello for a
// duplicate ClientHello only until a record of the initiator's proves it
// arrived; an idle session then holds no Welcome.
func TestServerHelloForgotten(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	if r.dg.helloAnswer == nil {
		t.Fatal("no ServerHello cached before the initiator sent anything")
	}
	if err := i.SendPacket(t0, []byte{0x45}); err != nil {
		t.Fatal(err)
	}
	settle(t, i, r, t0)
	if r.dg.helloAnswer != nil || r.dg.last != nil {
		t.Fatal("ServerHello still cached after a record of the initiator's authenticated")
	}
}
