package session

import (
	"testing"
)

// FuzzResumeState starts datagram sessions of both roles from an arbitrary
// saved state (Config.Resume), as currentd does with a file from its state
// directory that may be truncated or corrupted. Start must not panic; an
// initiator always has something to send (a ResumptionRequest, or a
// ClientHello when the state is unusable); and a group is only resumed
// when the pinned peer is in it.
func FuzzResumeState(f *testing.F) {
	id := testSuites[0]
	ik, rk := newKeys(f, id), newKeys(f, id)
	i, r := newDatagramPair(f, id, ik, rk)
	settle(f, i, r, t0)
	for _, s := range []*Session{i, r} {
		state, err := s.State()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(state)
		f.Add(state[:len(state)/2])
	}
	// The real state resumes: the properties below are not vacuous.
	state, _ := i.State()
	res, err := New(Config{Role: Initiator, Suite: id, SigningKey: ik.priv, PeerPublicKey: rk.pub,
		PeerIndex: r.LocalIndex(), Transport: Datagram, Resume: state})
	if err != nil || res.Start(t0) != nil || !res.res.active {
		f.Fatalf("a real saved state does not resume: %v", err)
	}
	res.Close(t0)
	f.Add([]byte{})
	stranger := newKeys(f, id)
	f.Fuzz(func(t *testing.T, state []byte) {
		if len(state) == 0 {
			state = []byte{0} // nil means no resumption
		}
		for k, c := range []Config{
			{Role: Initiator, SigningKey: ik.priv, PeerPublicKey: rk.pub, PeerIndex: r.LocalIndex()},
			{Role: Responder, SigningKey: rk.priv, PeerPublicKey: ik.pub},
			{Role: Initiator, SigningKey: ik.priv, PeerPublicKey: stranger.pub, PeerIndex: r.LocalIndex()},
		} {
			pinnedStranger := k == 2
			c.Suite, c.Transport, c.Resume = id, Datagram, state
			s, err := New(c)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := s.Start(t0); err != nil {
				continue
			}
			if c.Role == Initiator && len(s.Outgoing()) == 0 {
				t.Fatal("initiator started with nothing to send")
			}
			if s.group != nil && checkGroup(s.group, id, c.PeerPublicKey) != nil {
				t.Fatal("resumed a group without the pinned peer")
			}
			if pinnedStranger && s.res.active {
				t.Fatal("resumed a group pinned to another peer")
			}
			s.Close(t0)
		}
	})
}
