package tunnel

import (
	"crypto/sha256"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/current-vpn/current/session"
)

// Identity hiding at the listener (docs/protocol.md 7.14). Initiators seal
// their hellos to the device's hello key, so the listener learns whose a
// hello is only by opening it: the one asymmetric operation before a peer
// is known, so it comes after every budget, cookie and rate limit that
// used to stand in front of the peer's session. In order:
//
//   - a HelloKeyRequest is answered statelessly with the current key (at
//     most three times its size over UDP: no amplification);
//   - a SealedHello is charged to the host's handshake rate; one the
//     keyring opened before is a retransmission: it goes to the peer it
//     went to (openedHellos), whose session answers from its cache, or
//     nowhere;
//   - otherwise the keyring opens it once: a ClientHello names its peer by the pinned key inside, a
//     ResumptionRequest by its group (byGroup); the opened hello goes to
//     that peer's session (Session.HandleOpenedHello) and is never opened
//     again. A hello sealed to a key we no longer hold gets the current
//     key, and the initiator reseals;
//   - a plaintext ClientHello or ResumptionRequest is refused.

// maxOpenedHellos bounds the retransmission routes remembered; beyond it a
// retransmission is dropped and the initiator's next attempt is a new
// hello.
const maxOpenedHellos = 1024

// openedHellos maps the hashes of sealed hellos opened recently to the
// peers they went to, for the handshake timeout.
type openedHellos struct {
	mu sync.Mutex
	by map[[32]byte]openedRoute
	// life is how long a route is kept: the handshake timeout.
	life time.Duration
}

type openedRoute struct {
	p  *peer
	at time.Time
}

func (o *openedHellos) add(now time.Time, h [32]byte, p *peer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.by == nil {
		o.by = map[[32]byte]openedRoute{}
	}
	if len(o.by) < maxOpenedHellos {
		o.by[h] = openedRoute{p: p, at: now}
	}
}

func (o *openedHellos) lookup(h [32]byte) *peer {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.by[h].p
}

// expire drops the routes older than their lifetime, and those of p when
// p is not nil (a removed peer).
func (o *openedHellos) expire(now time.Time) { o.drop(now, nil) }

func (o *openedHellos) drop(now time.Time, p *peer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for h, r := range o.by {
		if r.p == p || now.Sub(r.at) >= o.life {
			delete(o.by, h)
		}
	}
}

// sealedVerdict is what the listener made of a reassembled hello.
type sealedVerdict struct {
	p      *peer                // the peer to hand it to, if any
	opened *session.OpenedHello // nil for a retransmission
	answer [][]byte             // what to send back (a hello key)
	hash   [32]byte
}

// classifyHello is the listener's work on one reassembled handshake
// message env from src (whose sender index is sender; maxDatagram is -1
// on a stream): every refusal is counted here.
func (d *Device) classifyHello(now time.Time, src netip.AddrPort, env []byte, sender uint32, maxDatagram int) sealedVerdict {
	from := src.String()
	if len(env) < 3 {
		d.guard.refuse(now, refBadHello, from)
		return sealedVerdict{}
	}
	ring := d.hello.ring
	switch session.MsgType(env[2]) {
	case session.MsgHelloKeyRequest:
		out, err := ring.AnswerRequest(env, sender, maxDatagram)
		if err != nil {
			d.guard.refuseErr(now, refBadHello, from, err)
		}
		return sealedVerdict{answer: out}
	case session.MsgClientHello, session.MsgResumptionRequest:
		d.guard.refuse(now, refPlaintextHello, from)
		return sealedVerdict{}
	case session.MsgSealedHello:
	default:
		d.guard.refuse(now, refBadHello, from)
		return sealedVerdict{}
	}
	host := hostOf(src.Addr())
	h := sha256.Sum256(env)
	if p := d.opened.lookup(h); p != nil {
		// A copy of a hello opened before costs a hash and a lookup, and
		// its peer answers it from its cache. It takes the host's token,
		// so a flood of copies from one host is limited as before, but
		// not the device's: under a restart storm the device sits at its
		// ceiling, and a peer whose answer was lost must not be refused
		// again and again while we hold the answer.
		if !d.guard.admitCopy(now, host, from) {
			return sealedVerdict{}
		}
		return sealedVerdict{p: p, hash: h}
	}
	if !d.guard.admitHandshake(now, host, from) {
		return sealedVerdict{}
	}
	oh, err := ring.OpenHello(now, env)
	switch {
	case errors.Is(err, session.ErrUnknownHelloKey):
		out, err := ring.AnswerRequest(env, sender, maxDatagram)
		if err != nil {
			d.guard.refuseErr(now, refBadHello, from, err)
		}
		return sealedVerdict{answer: out}
	case errors.Is(err, session.ErrReplayedHello):
		d.guard.refuse(now, refHelloReplay, from)
		return sealedVerdict{}
	case err != nil:
		d.guard.refuseErr(now, refBadHello, from, err)
		return sealedVerdict{}
	}
	var p *peer
	if oh.Resumption {
		p = d.peerByGroup(oh.GroupID)
	} else {
		p = d.peerByKey(oh.SignatureKey)
	}
	if p == nil {
		d.guard.refuse(now, refUnknownPeer, from)
		return sealedVerdict{}
	}
	d.opened.add(now, h, p)
	return sealedVerdict{p: p, opened: oh, hash: h}
}

func (d *Device) peerByGroup(id []byte) *peer {
	if len(id) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byGroup[string(id)]
}

// noteGroup keeps byGroup in step with p's session. Owner only.
func (p *peer) noteGroup(s *session.Session) {
	id := s.GroupID()
	if id == nil || string(id) == p.groupID {
		return
	}
	d := p.dev
	d.mu.Lock()
	if d.byGroup[p.groupID] == p {
		delete(d.byGroup, p.groupID)
	}
	if d.byKey[string(p.cfg.PublicKey)] == p {
		// Not for a peer Reconfigure removed meanwhile.
		d.byGroup[string(id)] = p
	}
	p.groupID = string(id)
	d.mu.Unlock()
}

// forgetPeerLocked drops a removed peer's routes. Under d.mu.
func (d *Device) forgetPeerLocked(p *peer) {
	for id, q := range d.byGroup {
		if q == p {
			delete(d.byGroup, id)
		}
	}
	d.opened.drop(time.Time{}, p)
}
