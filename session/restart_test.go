package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// lane is a lossless datagram network between two sessions with a fixed
// one-way delay, in simulated time. With listen set it plays each side's
// listener as currentd does: a ClientHello that an established session
// does not take (the peer restarted and handshakes afresh) gets a new
// responder session.
type lane struct {
	tb     testing.TB
	now    time.Time
	delay  time.Duration
	s      [2]*Session
	cfg    [2]Config // for the listener's new responders
	listen bool
	q      []flight
	seq    int
	// lose, if set, drops the datagrams it returns true for.
	lose func(from int, d []byte) bool
}

func (l *lane) collect() {
	for i, s := range l.s {
		if s == nil {
			continue // not started yet
		}
		for _, d := range s.Outgoing() {
			if l.lose != nil && l.lose(i, d) {
				continue
			}
			l.q = append(l.q, flight{at: l.now.Add(l.delay), seq: l.seq, to: 1 - i, d: bytes.Clone(d)})
			l.seq++
		}
	}
}

// run delivers datagrams and fires timers in time order until done holds
// or the clock would pass limit; it reports whether done held.
func (l *lane) run(limit time.Time, done func() bool) bool {
	l.tb.Helper()
	for {
		l.collect()
		if done() {
			return true
		}
		t := limit.Add(time.Nanosecond)
		for _, f := range l.q {
			if f.at.Before(t) {
				t = f.at
			}
		}
		for _, s := range l.s {
			if nt := s.NextTimeout(); !nt.IsZero() && nt.Before(t) {
				t = nt
			}
		}
		if t.After(limit) {
			return false
		}
		if t.After(l.now) {
			l.now = t
		}
		var due []flight
		due, l.q = takeDue(l.q, l.now)
		for _, f := range due {
			l.deliver(f.to, f.d)
		}
		for _, s := range l.s {
			if nt := s.NextTimeout(); !nt.IsZero() && !nt.After(l.now) {
				if err := s.HandleTimeout(l.now); err != nil {
					l.tb.Fatalf("HandleTimeout: %v", err)
				}
			}
		}
	}
}

func (l *lane) deliver(to int, d []byte) {
	l.tb.Helper()
	s := l.s[to]
	if l.listen && s.Established() {
		if info, ok := ParseDatagram(d); ok && info.Type == DatagramHandshake && info.Receiver == 0 && info.Sender != s.PeerIndex() {
			cfg := l.cfg[to]
			cfg.Role, cfg.Resume, cfg.LocalIndex, cfg.PeerIndex = Responder, nil, 0, 0
			ns, err := New(cfg)
			if err != nil {
				l.tb.Fatal(err)
			}
			if err := ns.Start(l.now); err != nil {
				l.tb.Fatal(err)
			}
			s.Close(l.now)
			s.Outgoing()
			l.s[to], s = ns, ns
		}
	}
	if err := s.HandleDatagram(l.now, d); err != nil && !errors.Is(err, ErrDropped) {
		l.tb.Fatalf("HandleDatagram: %v", err)
	}
}

func (l *lane) bothEstablished() bool {
	return l.s[0].Established() && l.s[1].Established() && l.s[0].Epoch() == l.s[1].Epoch() && len(l.q) == 0
}

// traffic checks that a packet gets through each way.
func (l *lane) traffic() {
	l.tb.Helper()
	for i, s := range l.s {
		if err := s.SendPacket(l.now, []byte{0x45, byte(i)}); err != nil {
			l.tb.Fatal(err)
		}
	}
	l.run(l.now.Add(time.Second), func() bool { return len(l.q) == 0 && len(l.s[0].Outgoing())+len(l.s[1].Outgoing()) == 0 })
	for i, s := range l.s {
		p := dataPackets(s)
		if len(p) != 1 || !bytes.Equal(p[0], []byte{0x45, byte(1 - i)}) {
			l.tb.Fatalf("side %d received %d packets", i, len(p))
		}
	}
}

// restartPair is what two currentd peers with endpoints do when both
// restart with their saved state: each resumes as initiator, at the
// index it saved, towards the index it saved for the peer.
type restartPair struct {
	id     mls.CipherSuiteID
	keys   [2]keyPair
	state  [2][]byte
	index  [2]uint32
	epoch  uint64
	cfg    [2]Config
	origin [2]*Session
}

func newRestartPair(t *testing.T, id mls.CipherSuiteID) *restartPair {
	t.Helper()
	p := &restartPair{id: id, keys: [2]keyPair{newKeys(t, id), newKeys(t, id)}}
	a, b := newDatagramPair(t, id, p.keys[0], p.keys[1])
	settle(t, a, b, t0)
	if err := a.Update(t0); err != nil {
		t.Fatal(err)
	}
	settle(t, a, b, t0)
	p.origin = [2]*Session{a, b}
	p.save()
	return p
}

// save records both sides' state, as currentd does at shutdown.
func (p *restartPair) save() {
	for i, s := range p.origin {
		st, err := s.State()
		if err != nil {
			panic(err)
		}
		p.state[i], p.index[i] = st, s.LocalIndex()
	}
	p.epoch = p.origin[0].Epoch()
}

func (p *restartPair) config(i int) Config {
	return Config{Role: Initiator, Suite: p.id, SigningKey: p.keys[i].priv, PeerPublicKey: p.keys[1-i].pub,
		Rand: newSeeded(byte(10 + i)), Transport: Datagram, LocalIndex: p.index[i], PeerIndex: p.index[1-i]}
}

// resume starts side i from state (nil: no state) at now.
func (p *restartPair) resume(t *testing.T, i int, state []byte, now time.Time) *Session {
	t.Helper()
	cfg := p.config(i)
	cfg.Resume = state
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(now); err != nil {
		t.Fatal(err)
	}
	return s
}

func (p *restartPair) lane(t *testing.T, a, b *Session) *lane {
	return &lane{tb: t, now: t0, delay: 10 * time.Millisecond, s: [2]*Session{a, b}, cfg: [2]Config{p.config(0), p.config(1)}, listen: true}
}

// lower is the side with the lower signature key, which stays initiator.
func (p *restartPair) lower() int {
	if compareKeys(p.keys[0].pub, p.keys[1].pub) < 0 {
		return 0
	}
	return 1
}

// TestSimultaneousResumption: both sides restart at once with their saved
// state and resume as initiators; the crossing requests are resolved by
// the key order and both end in one group at e+2 within a round trip or
// two, long before any timer (the first is RetransmitMin) could fire.
func TestSimultaneousResumption(t *testing.T) {
	for _, id := range testSuites {
		p := newRestartPair(t, id)
		for _, tc := range []struct {
			name string
			// late delays side 1's start; lost drops side 0's first
			// request (side 1 was not up yet).
			late time.Duration
			lost bool
		}{
			{name: "crossing"},
			{name: "one side later", late: 3 * time.Millisecond},
			{name: "first request lost", late: 30 * time.Millisecond, lost: true},
		} {
			a := p.resume(t, 0, p.state[0], t0)
			l := p.lane(t, a, nil)
			first := true
			l.lose = func(from int, d []byte) bool {
				if from == 0 && tc.lost && first {
					first = false
					return true
				}
				return false
			}
			if tc.late > 0 {
				l.collect()
				l.now = t0.Add(tc.late)
			}
			l.s[1] = p.resume(t, 1, p.state[1], l.now)
			if !l.run(t0.Add(DefaultRetransmitMin-time.Millisecond), l.bothEstablished) {
				t.Fatalf("%#04x %s: not established by %v: %v %v", uint16(id), tc.name, l.now.Sub(t0), l.s[0].Established(), l.s[1].Established())
			}
			t.Logf("%#04x %s: established after %v", uint16(id), tc.name, l.now.Sub(t0))
			for i, s := range l.s {
				if !s.Resumed() || s.Epoch() != p.epoch+2 {
					t.Fatalf("%s: side %d resumed %v at epoch %d, want %d", tc.name, i, s.Resumed(), s.Epoch(), p.epoch+2)
				}
			}
			if lo := p.lower(); l.s[lo].Role() != Initiator || l.s[1-lo].Role() != Responder {
				t.Fatalf("%s: roles %d %d, lower key is side %d", tc.name, l.s[0].Role(), l.s[1].Role(), lo)
			}
			l.traffic()
			// An update still works, and so does the next restart.
			if err := l.s[0].Update(l.now); err != nil {
				t.Fatal(err)
			}
			if !l.run(l.now.Add(time.Second), func() bool { return l.bothEstablished() && !l.s[0].waiting }) || l.s[1].Epoch() != p.epoch+3 {
				t.Fatalf("%s: update after resumption failed", tc.name)
			}
		}
	}
}

// TestFragmentsAcrossRestart: a peer that restarts at its saved index
// numbers its messages from 0 again, so a message its old session left
// half received and one of its new session can share an id. The halves
// were sealed under different epochs and must not make one message.
func TestFragmentsAcrossRestart(t *testing.T) {
	id := testSuites[1] // a commit of the post-quantum suite spans datagrams
	p := newRestartPair(t, id)
	a, b := p.origin[0], p.origin[1]
	if err := a.Update(t0); err != nil {
		t.Fatal(err)
	}
	old := a.Outgoing()
	if len(old) < 2 {
		t.Fatalf("a commit in %d datagrams", len(old))
	}
	// All but the first fragment arrive: the first fragment of the new
	// session's message with that id would complete it.
	for _, d := range old[1:] {
		if err := b.HandleDatagram(t0, d); err != nil {
			t.Fatal(err)
		}
	}
	// a crashes before the rest leaves, and resumes at its index.
	l := p.lane(t, p.resume(t, 0, p.state[0], t0), b)
	if !l.run(t0.Add(time.Second), l.bothEstablished) {
		t.Fatal("no resumption")
	}
	for range 3 {
		epoch := b.Epoch()
		if err := l.s[0].Update(l.now); err != nil {
			t.Fatal(err)
		}
		if !l.run(l.now.Add(time.Second), func() bool { return l.bothEstablished() && !l.s[0].waiting }) || b.Epoch() != epoch+1 {
			t.Fatalf("update after the restart failed at epoch %d", b.Epoch())
		}
	}
	l.traffic()
}

// TestHelloWhileResuming: a ClientHello reaching a resuming initiator ends
// its resumption only if it is the pinned peer's and valid; a forged one
// (the pinned key with a broken signature) and a stranger's are dropped
// and leave the resumption as it was.
func TestHelloWhileResuming(t *testing.T) {
	id := testSuites[0]
	p := newRestartPair(t, id)
	a := p.resume(t, 0, p.state[0], t0)
	a.Outgoing()
	due := a.NextTimeout()
	hello := func(k keyPair, forge bool) []byte {
		t.Helper()
		s, err := New(Config{Role: Initiator, Suite: id, SigningKey: k.priv, PeerPublicKey: p.keys[0].pub, Transport: Datagram})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t0); err != nil {
			t.Fatal(err)
		}
		d := s.Outgoing()[0]
		if !forge {
			return d
		}
		ch := decodePlain(d).(*ClientHello)
		ch.KeyPackage.KeyPackage.Signature[0] ^= 1
		env, err := EncodeControl(ch)
		if err != nil {
			t.Fatal(err)
		}
		sender, _, _, _, _ := parsePlainHeader(d)
		f := []byte{DatagramHandshake}
		f = binary.BigEndian.AppendUint32(f, sender)
		f = binary.BigEndian.AppendUint32(f, 0)
		f = append(f, 0)
		f = appendFragHeader(f, 0, len(env), 0)
		return append(f, env...)
	}
	for _, d := range [][]byte{hello(p.keys[1], true), hello(newKeys(t, id), false)} {
		err := a.HandleDatagram(t0, d)
		if !errors.Is(err, ErrDropped) || !a.res.active || a.Role() != Initiator || len(a.Outgoing()) != 0 || !a.NextTimeout().Equal(due) {
			t.Fatalf("forged ClientHello: %v; resuming %v", err, a.res.active)
		}
	}
	if err := a.HandleDatagram(t0, hello(p.keys[1], false)); err != nil {
		t.Fatal(err)
	}
	if a.res.active {
		t.Fatal("the peer's ClientHello left the resumption going")
	}
	out := a.Outgoing()
	want := MsgClientHello // the lower key handshakes as initiator
	if p.lower() != 0 {
		want = MsgServerHello
	}
	if len(out) == 0 || decodePlain(out[0]) == nil || decodePlain(out[0]).Type() != want {
		t.Fatalf("answered the peer's ClientHello with %d datagrams, want a %s", len(out), want)
	}
}
