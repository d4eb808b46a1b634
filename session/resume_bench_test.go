package session

import (
	"testing"

	"github.com/current-vpn/current/session/mls"
)

// resumeFixtures is how many distinct groups (each with its own peer and
// hello key) the benchmarks cycle through: more than the engine's caches
// of verified signatures and parsed public keys hold, so that, as in a
// restart of thousands of peers, no resumption finds the last one's checks
// cached.
const resumeFixtures = 72

func newResumeFixtures(tb testing.TB, id mls.CipherSuiteID, rk keyPair) []*resumeFixture {
	fs := make([]*resumeFixture, resumeFixtures)
	for k := range fs {
		fs[k] = newResumeFixture(tb, id, rk)
	}
	return fs
}

// resumeFixture is a sealed datagram-mode pair that completed a handshake
// and one update, saved as currentd saves it: each side's Session.State()
// and indices. Every resumption in the benchmarks starts from these bytes,
// as a restarted hub and its peers do.
type resumeFixture struct {
	id     mls.CipherSuiteID
	ik, rk keyPair
	ring   *HelloKeyring
	key    []byte // the hub's hello key as the peer cached it
	state  [2][]byte
	index  [2]uint32
}

func newResumeFixture(tb testing.TB, id mls.CipherSuiteID, rk keyPair) *resumeFixture {
	tb.Helper()
	f := &resumeFixture{id: id, ik: newKeys(tb, id), rk: rk, ring: newKeyring(tb, id, rk, t0)}
	f.key = encodedKey(tb, f.ring.Current())
	i, r := hidingPair(tb, Datagram, id, f.ik, rk, f.ring, f.key, t0)
	settle(tb, i, r, t0)
	if err := i.Update(t0); err != nil {
		tb.Fatal(err)
	}
	settle(tb, i, r, t0)
	if !i.Established() || !r.Established() || i.Epoch() != 2 {
		tb.Fatal("fixture pair not established at epoch 2")
	}
	for k, s := range []*Session{i, r} {
		st, err := s.State()
		if err != nil {
			tb.Fatal(err)
		}
		f.state[k], f.index[k] = st, s.LocalIndex()
	}
	return f
}

// peer restores the resuming side from its saved state and sends the
// sealed ResumptionRequest (New and Start).
func (f *resumeFixture) peer(tb testing.TB) *Session {
	return f.restore(tb, Config{Role: Initiator, SigningKey: f.ik.priv, PeerPublicKey: f.rk.pub,
		HideIdentity: true, PeerHelloKey: f.key, LocalIndex: f.index[0], PeerIndex: f.index[1]}, 0)
}

// hub restores the hub's side of the group, which waits for the request.
func (f *resumeFixture) hub(tb testing.TB) *Session {
	return f.restore(tb, Config{Role: Responder, SigningKey: f.rk.priv, PeerPublicKey: f.ik.pub,
		HelloKeys: f.ring, LocalIndex: f.index[1], PeerIndex: f.index[0]}, 1)
}

func (f *resumeFixture) restore(tb testing.TB, cfg Config, side int) *Session {
	tb.Helper()
	cfg.Suite, cfg.Transport, cfg.UpdateInterval, cfg.UpdateBytes = f.id, Datagram, -1, -1
	// startResume wipes the state it is given.
	cfg.Resume = append([]byte(nil), f.state[side]...)
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(t0); err != nil {
		tb.Fatal(err)
	}
	return s
}

// resumed checks that both sides of one resumption are established at the
// saved epoch + 2, and resumed rather than handshaken afresh.
func resumed(tb testing.TB, peer, hub *Session) {
	tb.Helper()
	if !peer.Established() || !hub.Established() || !peer.Resumed() || !hub.Resumed() || peer.Epoch() != 4 || hub.Epoch() != 4 {
		tb.Fatalf("resumption failed: established %v/%v resumed %v/%v epochs %d/%d",
			peer.Established(), hub.Established(), peer.Resumed(), hub.Resumed(), peer.Epoch(), hub.Epoch())
	}
}

// BenchmarkResumeHub is the hub's CPU per resumption of a peer (docs/
// protocol.md 7.10), identity hiding on, as a restarted currentd hub
// does it: restore the group from its saved state (New, Start), open the
// sealed ResumptionRequest, verify and apply the peer's commit, commit
// and merge its own, seal the answer, install epoch e+2's keys. The
// peers' requests are made in batches with the timer stopped, and every
// peer must accept its answer.
func BenchmarkResumeHub(b *testing.B) {
	eachResponderSuite(b, func(b *testing.B, id mls.CipherSuiteID, rk keyPair) {
		fs := newResumeFixtures(b, id, rk)
		var peers, hubs []*Session
		var requests [][][]byte
		b.ReportAllocs()
		timedSteps(b, 32, untimed(func(done, n int) {
			peers, hubs, requests = make([]*Session, n), make([]*Session, n), make([][][]byte, n)
			for k := range peers {
				peers[k] = fs[(done+k)%len(fs)].peer(b)
				requests[k] = peers[k].Outgoing()
			}
		}), timed(func(done int) {
			for k := range hubs {
				hubs[k] = fs[(done+k)%len(fs)].hub(b)
				for _, d := range requests[k] {
					_ = hubs[k].HandleDatagram(t0, d)
				}
			}
		}), untimed(func(int, int) {
			for k := range hubs {
				settle(b, hubs[k], peers[k], t0)
				resumed(b, peers[k], hubs[k])
			}
		}))
	})
}

// BenchmarkResumePeer is the resuming side's CPU per resumption: restore
// the group from its saved state and send the sealed request (New,
// Start), then open the hub's sealed answer, merge its own commit, apply
// the hub's and install e+2's keys. The hub's answers are made with the
// timer stopped.
func BenchmarkResumePeer(b *testing.B) {
	eachResponderSuite(b, func(b *testing.B, id mls.CipherSuiteID, rk keyPair) {
		fs := newResumeFixtures(b, id, rk)
		var peers, hubs []*Session
		var answers [][][]byte
		b.ReportAllocs()
		timedSteps(b, 32, untimed(func(_, n int) {
			peers, hubs, answers = make([]*Session, n), make([]*Session, n), make([][][]byte, n)
		}), timed(func(done int) {
			for k := range peers {
				peers[k] = fs[(done+k)%len(fs)].peer(b)
			}
		}), untimed(func(done, _ int) {
			for k := range hubs {
				hubs[k] = fs[(done+k)%len(fs)].hub(b)
				deliver(b, peers[k], hubs[k], t0)
				answers[k] = hubs[k].Outgoing()
			}
		}), timed(func(int) {
			for k := range peers {
				for _, d := range answers[k] {
					_ = peers[k].HandleDatagram(t0, d)
				}
			}
		}), untimed(func(int, int) {
			for k := range hubs {
				resumed(b, peers[k], hubs[k])
			}
		}))
	})
}
