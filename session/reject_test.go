package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// rejectDatagram frames a ResumptionReject naming h as a control datagram
// from sender to receiver.
func rejectDatagram(tb testing.TB, sender, receiver uint32, h [32]byte) []byte {
	tb.Helper()
	env, err := EncodeControl(&ResumptionReject{RequestHash: h})
	if err != nil {
		tb.Fatal(err)
	}
	d := []byte{DatagramHandshake}
	d = binary.BigEndian.AppendUint32(d, sender)
	d = binary.BigEndian.AppendUint32(d, receiver)
	d = append(d, 0)
	d = appendFragHeader(d, 77, len(env), 0)
	return append(d, env...)
}

// decodePlain decodes a control datagram that carries a whole envelope,
// or returns nil.
func decodePlain(d []byte) Message {
	_, _, _, frag, ok := parsePlainHeader(d)
	if !ok {
		return nil
	}
	_, total, off, data, ok := parseFragment(frag)
	if !ok || off != 0 || len(data) != total {
		return nil
	}
	m, err := DecodeControl(data)
	if err != nil {
		return nil
	}
	return m
}

// TestResumptionRejectStale: a side restarting with a stale state (its
// peer moved on since) is rejected and handshakes afresh at once: whether
// the peer is established, restarted at the same time, or a restored
// responder.
func TestResumptionRejectStale(t *testing.T) {
	id := testSuites[0]
	p := newRestartPair(t, id)
	stale := p.state[0]
	for range 3 {
		if err := p.origin[1].Update(t0); err != nil {
			t.Fatal(err)
		}
		settle(t, p.origin[0], p.origin[1], t0)
	}
	p.save()

	check := func(name string, l *lane) {
		t.Helper()
		if !l.run(t0.Add(DefaultRetransmitMin-time.Millisecond), l.bothEstablished) {
			t.Fatalf("%s: not established by %v: %v %v", name, l.now.Sub(t0), l.s[0].Established(), l.s[1].Established())
		}
		t.Logf("%s: fresh handshake after %v", name, l.now.Sub(t0))
		if l.s[0].Resumed() || l.s[0].Epoch() != 1 {
			t.Fatalf("%s: resumed %v at epoch %d", name, l.s[0].Resumed(), l.s[0].Epoch())
		}
		l.traffic()
	}

	// The peer is established (it did not restart).
	a := p.resume(t, 0, stale, t0)
	est := p.origin[1]
	epoch := est.Epoch()
	l := p.lane(t, a, est)
	l.collect()
	// The request is rejected: nothing else comes back, the established
	// session keeps its epoch, and the initiator answers the reject with
	// its ClientHello at once.
	l.run(t0.Add(l.delay), func() bool { return false })
	var got []Message
	for _, f := range l.q {
		got = append(got, decodePlain(f.d))
	}
	if len(got) != 1 || est.Epoch() != epoch || !est.Established() {
		t.Fatalf("established peer answered %v", got)
	}
	if _, ok := got[0].(*ResumptionReject); !ok {
		t.Fatalf("established peer answered %T", got[0])
	}
	check("established peer", l)

	// Both restart, one with the stale state: both requests are rejected.
	p2 := newRestartPair(t, id)
	stale = p2.state[0]
	for range 2 {
		if err := p2.origin[0].Update(t0); err != nil {
			t.Fatal(err)
		}
		settle(t, p2.origin[0], p2.origin[1], t0)
	}
	p2.save()
	check("both restarted", p2.lane(t, p2.resume(t, 0, stale, t0), p2.resume(t, 1, p2.state[1], t0)))
	// The same with the stale side's request lost: the peer's request
	// is rejected, and its ClientHello ends our resumption too.
	l = p2.lane(t, p2.resume(t, 0, stale, t0), p2.resume(t, 1, p2.state[1], t0))
	l.lose = func(from int, d []byte) bool { _, ok := decodePlain(d).(*ResumptionRequest); return from == 0 && ok }
	check("stale request lost", l)
	// One side lost its state altogether and handshakes: the resuming
	// side follows its ClientHello.
	check("peer without state", p2.lane(t, p2.resume(t, 0, p2.state[0], t0), p2.resume(t, 1, nil, t0)))

	// A restored responder at another epoch.
	cfg := p2.config(1)
	cfg.Role, cfg.Resume = Responder, stale
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t0); err != nil {
		t.Fatal(err)
	}
	check("restored responder", p2.lane(t, p2.resume(t, 0, p2.state[0], t0), r))
}

// TestResumptionRejectForged: a reject that names another request is
// dropped and the initiator keeps resuming; the genuine one (once) ends
// the resumption; after that, and at an established session, a reject
// changes nothing.
func TestResumptionRejectForged(t *testing.T) {
	id := testSuites[0]
	p := newRestartPair(t, id)
	a := p.resume(t, 0, p.state[0], t0)
	a.Outgoing()
	due := a.NextTimeout()
	peer := p.index[1]
	for _, h := range [][32]byte{{}, {1}, flipBit(a.res.ours)} {
		err := a.HandleDatagram(t0, rejectDatagram(t, peer, a.LocalIndex(), h))
		if !errors.Is(err, ErrDropped) || !a.res.active || len(a.Outgoing()) != 0 || !a.NextTimeout().Equal(due) {
			t.Fatalf("forged reject: %v, still resuming %v", err, a.res.active)
		}
	}
	// Addressed to another index: dropped before it is looked at.
	if err := a.HandleDatagram(t0, rejectDatagram(t, peer, a.LocalIndex()+1, a.res.ours)); !errors.Is(err, ErrDropped) || !a.res.active {
		t.Fatalf("misaddressed reject: %v", err)
	}
	old := a.LocalIndex()
	if err := a.HandleDatagram(t0, rejectDatagram(t, peer, old, a.res.ours)); err != nil {
		t.Fatal(err)
	}
	if a.res.active || a.LocalIndex() == old {
		t.Fatal("genuine reject did not end the resumption with a new index")
	}
	if _, ok := decodePlain(a.Outgoing()[0]).(*ClientHello); !ok {
		t.Fatal("no ClientHello after the reject")
	}
	if err := a.HandleDatagram(t0, rejectDatagram(t, peer, a.LocalIndex(), a.res.ours)); !errors.Is(err, ErrDropped) || len(a.Outgoing()) != 0 {
		t.Fatalf("second reject: %v", err)
	}

	// An established session that resumed: the reject of its old
	// request is dropped.
	b := p.resume(t, 1, p.state[1], t0)
	l := p.lane(t, p.resume(t, 0, p.state[0], t0), b)
	if !l.run(t0.Add(time.Second), l.bothEstablished) {
		t.Fatal("no resumption")
	}
	for _, s := range l.s {
		epoch := s.Epoch()
		err := s.HandleDatagram(l.now, rejectDatagram(t, s.PeerIndex(), s.LocalIndex(), s.res.ours))
		if !errors.Is(err, ErrDropped) || !s.Established() || s.Epoch() != epoch || len(s.Outgoing()) != 0 {
			t.Fatalf("reject at an established session: %v", err)
		}
	}
	l.traffic()
}

func flipBit(h [32]byte) [32]byte { h[31] ^= 1; return h }

// TestReplayedResumptionRequest: requests replayed to an established
// session change nothing. The one it answered gets the cached answer
// while the peer may still need it, then nothing; an older one gets one
// reject, then nothing; a forged request for the right epoch does not cost
// the session its own update in flight.
func TestReplayedResumptionRequest(t *testing.T) {
	id := testSuites[0]
	p := newRestartPair(t, id)
	oldState := p.state[0]
	// Side 0 restarts and resumes with the established side 1; its
	// request is recorded for replay.
	var req [][]byte
	a := p.resume(t, 0, p.state[0], t0)
	l := p.lane(t, a, p.origin[1])
	l.lose = func(from int, d []byte) bool {
		if _, ok := decodePlain(d).(*ResumptionRequest); ok && from == 0 {
			req = append(req, bytes.Clone(d))
		}
		return false
	}
	if !l.run(t0.Add(time.Second), l.bothEstablished) {
		t.Fatal("no resumption")
	}
	l.lose = nil
	b := l.s[1]
	replay := func(d []byte) []Message {
		t.Helper()
		epoch, waiting := b.Epoch(), b.waiting
		if err := b.HandleDatagram(l.now, bytes.Clone(d)); err != nil && !errors.Is(err, ErrDropped) {
			t.Fatal(err)
		}
		if !b.Established() || b.Epoch() != epoch || b.waiting != waiting {
			t.Fatal("replayed request changed the established session")
		}
		var out []Message
		for _, d := range b.Outgoing() {
			out = append(out, decodePlain(d))
		}
		return out
	}
	if out := replay(req[0]); len(out) != 1 {
		t.Fatalf("duplicate before the peer's first record: %d answers", len(out))
	} else if _, ok := out[0].(*ResumptionResponse); !ok {
		t.Fatalf("duplicate answered with %T", out[0])
	}
	l.traffic() // a record of the peer's: the answer arrived
	if out := replay(req[0]); len(out) != 0 {
		t.Fatalf("replay after the peer's record: %d answers", len(out))
	}

	// A request of an older restart (another epoch): one reject, which
	// the established peer ignores, and nothing on a second replay.
	old := p.resume(t, 0, oldState, t0)
	stale := old.Outgoing()[0]
	binary.BigEndian.PutUint32(stale[5:], b.LocalIndex())
	out := replay(stale)
	if len(out) != 1 {
		t.Fatalf("old request: %d answers", len(out))
	}
	rj, ok := out[0].(*ResumptionReject)
	if !ok || rj.RequestHash != old.res.ours {
		t.Fatalf("old request answered with %T", out[0])
	}
	if out := replay(stale); len(out) != 0 {
		t.Fatalf("old request replayed: %d answers", len(out))
	}

	// A forged request for the current epoch while b's update is in
	// flight: the update survives it.
	if err := b.Update(l.now); err != nil {
		t.Fatal(err)
	}
	cu := b.Outgoing()
	forged := forgeRequest(t, b)
	if out := replay(forged); len(out) != 1 {
		t.Fatalf("forged request: %d answers", len(out))
	}
	for _, d := range cu {
		l.q = append(l.q, flight{at: l.now, to: 0, d: d})
	}
	epoch := b.Epoch()
	if !l.run(l.now.Add(time.Second), func() bool { return !b.waiting && l.bothEstablished() }) || b.Epoch() != epoch+1 {
		t.Fatal("update did not complete after the forged request")
	}
	l.traffic()
}

// forgeRequest makes a ResumptionRequest that claims s's group and epoch
// but is signed by nobody in it, addressed to s.
func forgeRequest(t *testing.T, s *Session) []byte {
	t.Helper()
	suite, _ := mls.Suite(s.suite.ID)
	priv, pub, err := suite.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	cred := mls.Credential{CredentialType: mls.CredentialBasic, Identity: pub}
	g, err := mls.NewGroup(suite, s.group.GroupID(), priv, cred, bindingExtensions(), mls.GroupConfig{LeafCapabilities: leafCapabilities()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	res, err := g.SelfUpdate()
	if err != nil {
		t.Fatal(err)
	}
	res.Commit.PublicMessage.Content.Epoch = s.group.Epoch()
	env, err := EncodeControl(&ResumptionRequest{Commit: res.Commit})
	if err != nil {
		t.Fatal(err)
	}
	d := []byte{DatagramHandshake}
	d = binary.BigEndian.AppendUint32(d, s.PeerIndex())
	d = binary.BigEndian.AppendUint32(d, s.LocalIndex())
	d = append(d, 0)
	d = appendFragHeader(d, 5, len(env), 0)
	return append(d, env...)
}

// TestStreamReject: in stream mode a reject of another request is fatal
// (the stream is reliable, so it cannot be stale), and the reject of our
// request that crosses our fallback after ResumeTimeout is ignored.
func TestStreamReject(t *testing.T) {
	id := testSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	l := newLinkWith(t, id, 21, ik, rk)
	l.pump()
	state, err := l.a.s.State()
	if err != nil {
		t.Fatal(err)
	}
	resume := func() *Session {
		i := streamResume(t, id, ik, rk.pub, Initiator, state)
		if err := i.Start(t0); err != nil {
			t.Fatal(err)
		}
		return i
	}
	plain := func(m Message) []byte {
		env, err := EncodeControl(m)
		if err != nil {
			t.Fatal(err)
		}
		return appendPlainRecords(nil, env)[0]
	}

	i := resume()
	if err := i.HandleStream(t0, plain(&ResumptionReject{RequestHash: flipBit(i.res.ours)})); !errors.Is(err, ErrUnexpectedMessage) {
		t.Fatalf("reject of another request: %v", err)
	}

	// The responder has no state: it rejects; our ClientHello went out
	// after ResumeTimeout before the reject arrived.
	i = resume()
	r := streamResume(t, id, rk, ik.pub, Responder, nil)
	if err := r.Start(t0); err != nil {
		t.Fatal(err)
	}
	req := streamOut(i)
	if err := i.HandleTimeout(t0.Add(DefaultResumeTimeout)); err != nil {
		t.Fatal(err)
	}
	hello := streamOut(i)
	if len(hello) == 0 {
		t.Fatal("no ClientHello after ResumeTimeout")
	}
	if err := r.HandleStream(t0, append(req, hello...)); err != nil {
		t.Fatal(err)
	}
	answer := streamOut(r)
	if _, ok := decodeStreamFirst(t, answer).(*ResumptionReject); !ok {
		t.Fatal("the responder did not reject first")
	}
	if err := i.HandleStream(t0, answer); err != nil {
		t.Fatalf("late reject: %v", err)
	}
	if !i.Established() || !r.Established() || i.Resumed() {
		t.Fatal("no fresh handshake")
	}
}

// decodeStreamFirst decodes the first plaintext record of b, which holds
// a whole envelope.
func decodeStreamFirst(t *testing.T, b []byte) Message {
	t.Helper()
	frag, _, err := nextPlainRecord(b)
	if err != nil || frag == nil {
		t.Fatalf("no plaintext record: %v", err)
	}
	m, err := DecodeControl(frag)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLostResumptionReject: the initiator's retransmission of a rejected
// request gets the reject again, so a lost reject costs one retransmission
// interval, not ResumeTimeout; copies of the request earn at most
// rejectRepeats rejects, one per half RetransmitMin.
func TestLostResumptionReject(t *testing.T) {
	p := newRestartPair(t, testSuites[0])
	stale := p.state[0]
	if err := p.origin[1].Update(t0); err != nil {
		t.Fatal(err)
	}
	settle(t, p.origin[0], p.origin[1], t0)
	p.save()

	est := p.origin[1]
	l := p.lane(t, p.resume(t, 0, stale, t0), est)
	var req []byte
	lost := 0
	l.lose = func(from int, d []byte) bool {
		switch decodePlain(d).(type) {
		case *ResumptionRequest:
			req = bytes.Clone(d)
		case *ResumptionReject:
			if lost == 0 {
				lost++
				return true
			}
		}
		return false
	}
	limit := t0.Add(DefaultRetransmitMin + DefaultRetransmitMin/2)
	if !l.run(limit, l.bothEstablished) {
		t.Fatalf("first reject lost: not established by %v (ResumeTimeout is %v)", limit.Sub(t0), DefaultResumeTimeout)
	}
	if lost != 1 || l.s[0].Resumed() {
		t.Fatalf("lost %d rejects, resumed %v", lost, l.s[0].Resumed())
	}
	t.Logf("established %v after the first reject was lost", l.now.Sub(t0))

	// Copies of a stale request, as a replaying attacker sends them, to
	// an established session: rejectRepeats rejects in all, spaced.
	b := l.s[1]
	if !b.Established() {
		t.Fatal("side 1 not established")
	}
	req = p.resume(t, 0, stale, l.now).Outgoing()[0]
	binary.BigEndian.PutUint32(req[5:], b.LocalIndex())
	rejects := 0
	for i := range 40 {
		now := l.now.Add(time.Duration(i) * DefaultRetransmitMin / 8)
		if err := b.HandleDatagram(now, bytes.Clone(req)); err != nil && !errors.Is(err, ErrDropped) {
			t.Fatal(err)
		}
		for _, d := range b.Outgoing() {
			if _, ok := decodePlain(d).(*ResumptionReject); !ok {
				t.Fatalf("replayed request answered with %T", decodePlain(d))
			}
			rejects++
		}
	}
	if rejects != rejectRepeats {
		t.Fatalf("40 copies of a request earned %d rejects, want %d", rejects, rejectRepeats)
	}
}
