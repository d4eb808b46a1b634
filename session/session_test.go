package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/record"
)

var testSuites = []mls.CipherSuiteID{
	mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519,
	mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// seeded is a deterministic stand-in for crypto/rand where the API takes
// an io.Reader.
type seeded struct{ r *rand.ChaCha8 }

func newSeeded(seed byte) io.Reader { return seeded{rand.NewChaCha8([32]byte{seed})} }

func (s seeded) Read(p []byte) (int, error) { return s.r.Read(p) }

type keyPair struct{ priv, pub []byte }

func newKeys(tb testing.TB, id mls.CipherSuiteID) keyPair {
	tb.Helper()
	s, err := mls.Suite(id)
	if err != nil {
		tb.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		tb.Fatal(err)
	}
	return keyPair{priv, pub}
}

// peer is one end of an in-memory connection with its bookkeeping.
type peer struct {
	s    *Session
	name string
	// sent are the packets this side sent, in order; next is how many the
	// other side has received.
	sent [][]byte
	next int
	ctr  uint64
}

type link struct {
	tb   testing.TB
	a, b *peer // a is the initiator
	rng  *rand.Rand
	now  time.Time
}

func newSessions(tb testing.TB, id mls.CipherSuiteID, ik, rk keyPair, pinI, pinR []byte) (*Session, *Session) {
	tb.Helper()
	i, err := New(Config{Role: Initiator, Suite: id, SigningKey: ik.priv, PeerPublicKey: pinI, Rand: newSeeded(1)})
	if err != nil {
		tb.Fatal(err)
	}
	r, err := New(Config{Role: Responder, Suite: id, SigningKey: rk.priv, PeerPublicKey: pinR, Rand: newSeeded(2)})
	if err != nil {
		tb.Fatal(err)
	}
	return i, r
}

func newLink(tb testing.TB, id mls.CipherSuiteID, seed uint64) *link {
	tb.Helper()
	return newLinkWith(tb, id, seed, newKeys(tb, id), newKeys(tb, id))
}

func newLinkWith(tb testing.TB, id mls.CipherSuiteID, seed uint64, ik, rk keyPair) *link {
	tb.Helper()
	i, r := newSessions(tb, id, ik, rk, rk.pub, ik.pub)
	l := &link{tb: tb, a: &peer{s: i, name: "initiator"}, b: &peer{s: r, name: "responder"},
		rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), now: t0}
	if err := r.Start(l.now); err != nil {
		tb.Fatal(err)
	}
	if err := i.Start(l.now); err != nil {
		tb.Fatal(err)
	}
	return l
}

// flush moves everything from one side to the other, re-chunked at random
// boundaries as TCP would, and returns the number of bytes moved.
func (l *link) flush(from, to *peer) int {
	l.tb.Helper()
	var stream []byte
	for _, b := range from.s.Outgoing() {
		stream = append(stream, b...)
	}
	n := len(stream)
	for len(stream) > 0 {
		k := min(len(stream), 1+l.rng.IntN(3000))
		if err := to.s.HandleStream(l.now, stream[:k]); err != nil {
			l.tb.Fatalf("%s: HandleStream: %v", to.name, err)
		}
		stream = stream[k:]
	}
	l.check(from, to)
	return n
}

// check verifies that to received from's packets exactly once, in order,
// and unaltered.
func (l *link) check(from, to *peer) {
	l.tb.Helper()
	for _, p := range to.s.Packets() {
		if from.next >= len(from.sent) {
			l.tb.Fatalf("%s received a packet %s never sent", to.name, from.name)
		}
		if !bytes.Equal(p, from.sent[from.next]) {
			l.tb.Fatalf("%s: packet %d altered or out of order", to.name, from.next)
		}
		from.next++
	}
}

func (l *link) pump() {
	l.tb.Helper()
	for {
		n := l.flush(l.a, l.b) + l.flush(l.b, l.a)
		if n == 0 {
			return
		}
	}
}

func (l *link) send(p *peer, n int) {
	l.tb.Helper()
	for range n {
		pkt := make([]byte, 20+l.rng.IntN(1400))
		binary.BigEndian.PutUint64(pkt, p.ctr)
		p.ctr++
		for i := 8; i < len(pkt); i++ {
			pkt[i] = byte(l.rng.Uint32())
		}
		if err := p.s.SendPacket(l.now, pkt); err != nil {
			l.tb.Fatalf("%s: SendPacket: %v", p.name, err)
		}
		p.sent = append(p.sent, pkt)
	}
}

func events[T Event](s *Session) []T {
	var out []T
	for _, e := range s.Events() {
		if v, ok := e.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestHandshake(t *testing.T) {
	for _, id := range testSuites {
		t.Run(fmt.Sprintf("%#04x", uint16(id)), func(t *testing.T) {
			l := newLink(t, id, 1)
			l.pump()
			for _, p := range []*peer{l.a, l.b} {
				est := events[Established](p.s)
				if len(est) != 1 || est[0].Epoch != 1 || !p.s.Established() {
					t.Fatalf("%s: established events %v", p.name, est)
				}
			}
			l.send(l.a, 5)
			l.send(l.b, 7)
			l.pump()
			if l.a.next != 5 || l.b.next != 7 {
				t.Fatalf("delivered %d and %d packets", l.a.next, l.b.next)
			}
		})
	}
}

// TestUpdates runs 200 updates started by either side, with forced
// collisions and updates started while the peer's switch is still in
// flight, and packets in both directions throughout.
func TestUpdates(t *testing.T) {
	for _, id := range testSuites {
		t.Run(fmt.Sprintf("%#04x", uint16(id)), func(t *testing.T) {
			l := newLink(t, id, 7)
			l.pump()
			const rounds = 200
			for i := range rounds {
				l.send(l.a, l.rng.IntN(3))
				l.send(l.b, l.rng.IntN(3))
				switch i % 5 {
				case 0:
					mustUpdate(t, l.a)
				case 1:
					mustUpdate(t, l.b)
				case 2: // collision: both commit in the same epoch
					mustUpdate(t, l.a)
					mustUpdate(t, l.b)
				case 3: // collision the other way round
					mustUpdate(t, l.b)
					l.send(l.b, 1)
					mustUpdate(t, l.a)
				case 4: // update while the peer's switch marker is in flight
					mustUpdate(t, l.a)
					l.send(l.a, 2)
					l.flush(l.a, l.b) // b applies, sends EpochKeyUpdate
					mustUpdate(t, l.b)
					if err := l.b.s.Update(l.now); !errors.Is(err, ErrUpdatePending) {
						t.Fatalf("second update while waiting: %v", err)
					}
					l.send(l.b, 2)
				}
				l.send(l.a, l.rng.IntN(3))
				l.send(l.b, l.rng.IntN(3))
				l.pump()
				if ea, eb := l.a.s.Epoch(), l.b.s.Epoch(); ea != eb {
					t.Fatalf("round %d: epochs %d and %d", i, ea, eb)
				}
			}
			l.pump()
			// Every round advances at least one epoch; case 4 advances two.
			if want := uint64(1 + rounds + rounds/5); l.a.s.Epoch() != want {
				t.Fatalf("epoch %d, want %d", l.a.s.Epoch(), want)
			}
			if l.a.next != len(l.a.sent) || l.b.next != len(l.b.sent) {
				t.Fatalf("undelivered packets")
			}
			for _, p := range []*peer{l.a, l.b} {
				if c := events[Closed](p.s); len(c) != 0 {
					t.Fatalf("%s closed: %v", p.name, c[0].Reason)
				}
			}
		})
	}
}

func mustUpdate(t *testing.T, p *peer) {
	t.Helper()
	if err := p.s.Update(t0); err != nil {
		t.Fatalf("%s: Update: %v", p.name, err)
	}
}

func TestUnknownPeerGetsNoAnswer(t *testing.T) {
	id := testSuites[0]
	ik, rk, other := newKeys(t, id), newKeys(t, id), newKeys(t, id)
	i, r := newSessions(t, id, ik, rk, rk.pub, other.pub)
	mustStart(t, r, i)
	var hello []byte
	for _, b := range i.Outgoing() {
		hello = append(hello, b...)
	}
	if err := r.HandleStream(t0, hello); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("HandleStream: %v, want ErrUnknownPeer", err)
	}
	if out := r.Outgoing(); len(out) != 0 {
		t.Fatalf("responder answered a stranger with %d writes", len(out))
	}
	if c := events[Closed](r); len(c) != 1 || !errors.Is(c[0].Reason, ErrUnknownPeer) {
		t.Fatalf("closed events %v", c)
	}
}

func TestInitiatorRefusesUnpinnedResponder(t *testing.T) {
	id := testSuites[0]
	ik, rk, other := newKeys(t, id), newKeys(t, id), newKeys(t, id)
	i, r := newSessions(t, id, ik, rk, other.pub, ik.pub)
	mustStart(t, r, i)
	if err := exchange(r, i); err == nil {
		t.Fatal("initiator joined the group of an unpinned responder")
	}
	if len(i.Outgoing()) != 0 || i.Established() {
		t.Fatal("initiator went on")
	}
}

func TestInitiatorRefusesUnboundGroup(t *testing.T) {
	id := testSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	i, r := newSessions(t, id, ik, rk, rk.pub, ik.pub)
	r.groupExtensions = func() mls.Extensions { return nil }
	mustStart(t, r, i)
	if err := exchange(r, i); !errors.Is(err, ErrNotCurrentGroup) {
		t.Fatalf("got %v, want ErrNotCurrentGroup", err)
	}
	if len(i.Outgoing()) != 0 || i.Established() {
		t.Fatal("initiator went on")
	}
}

func TestCloseAndTamper(t *testing.T) {
	l := newLink(t, testSuites[0], 3)
	l.pump()
	l.a.s.Close(l.now)
	l.pump()
	if c := events[Closed](l.b.s); len(c) != 1 || !errors.Is(c[0].Reason, ErrPeerClosed) {
		t.Fatalf("responder: %v", c)
	}
	if err := l.a.s.SendPacket(l.now, []byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendPacket after Close: %v", err)
	}

	l = newLink(t, testSuites[0], 4)
	l.pump()
	l.send(l.a, 1)
	rec := l.a.s.Outgoing()[0]
	rec[len(rec)-1] ^= 1
	if err := l.b.s.HandleStream(l.now, rec); !errors.Is(err, record.ErrBadRecordMAC) {
		t.Fatalf("tampered record: %v", err)
	}
	// The responder tells the initiator, under protection, and stops.
	alert := l.b.s.Outgoing()
	if len(alert) != 1 {
		t.Fatalf("%d writes after failure", len(alert))
	}
	if err := l.a.s.HandleStream(l.now, alert[0]); err != nil {
		t.Fatal(err)
	}
	if c := events[Closed](l.a.s); len(c) != 1 {
		t.Fatalf("initiator not closed by the alert: %v", c)
	}
}

func mustStart(t *testing.T, r, i *Session) {
	t.Helper()
	if err := r.Start(t0); err != nil {
		t.Fatal(err)
	}
	if err := i.Start(t0); err != nil {
		t.Fatal(err)
	}
	var hello []byte
	for _, b := range i.Outgoing() {
		hello = append(hello, b...)
	}
	// Put the ClientHello back for the caller.
	i.out = [][]byte{hello}
}

// exchange runs ClientHello → ServerHello and returns the initiator's error.
func exchange(r, i *Session) error {
	for _, b := range i.Outgoing() {
		if err := r.HandleStream(t0, b); err != nil {
			return fmt.Errorf("responder: %w", err)
		}
	}
	for _, b := range r.Outgoing() {
		if err := i.HandleStream(t0, b); err != nil {
			return err
		}
	}
	return nil
}

func TestBadEpochKeyUpdateIsFatal(t *testing.T) {
	l := newLink(t, testSuites[0], 5)
	l.pump()
	if err := l.a.s.sendControl(&EpochKeyUpdate{Epoch: 99}); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, o := range l.a.s.Outgoing() {
		b = append(b, o...)
	}
	if err := l.b.s.HandleStream(t0, b); !errors.Is(err, errBadUpdate) {
		t.Fatalf("got %v, want errBadUpdate", err)
	}
	out := l.b.s.Outgoing()
	if len(out) != 1 {
		t.Fatalf("%d writes, want one Alert", len(out))
	}
	if err := l.a.s.HandleStream(t0, out[0]); err != nil {
		t.Fatal(err)
	}
	c := events[Closed](l.a.s)
	var ae *AlertError
	if len(c) != 1 || !errors.As(c[0].Reason, &ae) || ae.Code != AlertBadUpdate {
		t.Fatalf("initiator closed with %v", c)
	}
}
