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
//   - otherwise it takes a token of the device's handshake ceiling and
//     the keyring opens it once: a ClientHello names its peer by the
//     pinned key inside, a ResumptionRequest by its group (byGroup); the
//     opened hello goes to that peer's session (Session.HandleOpenedHello)
//     and is never opened again. A resumption of a group we know gives
//     the ceiling's token back and takes one of the resumption budget;
//     with that empty it is held (its open is paid) until a
//     retransmission finds a token. A hello sealed to a key we no longer
//     hold gets the current key, and the initiator reseals;
//   - a plaintext ClientHello or ResumptionRequest is refused.

// maxOpenedHellos is the least number of retransmission routes
// remembered; a device remembers openedPerPeer more for each of its peers,
// so that under a restart storm every peer's request in flight keeps its
// route (a copy that finds none would be refused as a replay, and the
// peer could never get the answer we hold). Beyond the bound a
// retransmission is dropped and the initiator's next attempt is a new
// hello.
const (
	maxOpenedHellos = 1024
	openedPerPeer   = 4
)

// maxRouteAge bounds how long copies can keep a route alive: an
// initiator gives up a request after session.DefaultGiveUp.
const maxRouteAge = session.DefaultGiveUp

// maxHeldResumptions bounds the opened resumptions waiting for the
// resumption budget. Each holds its opened hello (a few KiB with the
// post-quantum suites); it was paid for by the handshake ceiling, so at
// most that many are opened for it.
const maxHeldResumptions = 2048

// openedHellos maps the hashes of sealed hellos opened recently to the
// peers they went to, for the handshake timeout.
type openedHellos struct {
	mu sync.Mutex
	by map[[32]byte]openedRoute
	// life is how long a route is kept: the handshake timeout.
	life time.Duration
	// limit is the number of routes kept (sizeFor); held counts the
	// routes with a held resumption.
	limit, held int
}

type openedRoute struct {
	p *peer
	// at is when the route was last used (its open, or a copy since),
	// and opened when the hello was opened: a route lives life after
	// its last copy, and at most maxRouteAge after its open.
	at, opened time.Time
	// held is a resumption of p's group opened while the resumption
	// budget was empty: its retransmissions take the budget's token
	// instead of being opened again (which the keyring would refuse as
	// a replay).
	held *session.OpenedHello
}

// sizeFor sets the bound on routes for a device of n peers.
func (o *openedHellos) sizeFor(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.limit = maxOpenedHellos + openedPerPeer*n
}

// add remembers that the hello hashed h went to p, holding oh for later
// when it is not nil; it reports whether oh is held.
func (o *openedHellos) add(now time.Time, h [32]byte, p *peer, oh *session.OpenedHello) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.by == nil {
		o.by = map[[32]byte]openedRoute{}
	}
	if len(o.by) >= max(o.limit, maxOpenedHellos) {
		return false
	}
	if oh != nil && o.held >= maxHeldResumptions {
		oh = nil
	}
	if oh != nil {
		o.held++
	}
	o.by[h] = openedRoute{p: p, at: now, opened: now, held: oh}
	return oh != nil
}

// lookup is the peer a hello hashed h went to, nil if none. A held
// resumption is released to the caller when admit allows it; while it
// is held and admit refuses, lookup reports held.
//
// A copy keeps its route alive (up to maxRouteAge): an initiator
// retransmits its request until it gets the answer, and under a restart
// storm the answer can take longer than the handshake timeout (the
// owner waits for a resumption slot, resumeslots.go). A route that
// expired under a retransmitting peer made every further copy a replay
// for the keyring, refused, and the peer's request unanswerable.
func (o *openedHellos) lookup(now time.Time, h [32]byte, admit func() bool) (p *peer, released *session.OpenedHello, held bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.by[h]
	if !ok {
		return nil, nil, false
	}
	if now.After(r.at) && now.Sub(r.opened) < maxRouteAge {
		r.at = now
		o.by[h] = r
	}
	if r.held == nil {
		return r.p, nil, false
	}
	if !admit() {
		return r.p, nil, true
	}
	released, r.held = r.held, nil
	o.held--
	o.by[h] = r
	return r.p, released, false
}

// peerOf is the peer a hello hashed h went to, nil if none.
func (o *openedHellos) peerOf(h [32]byte) *peer {
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
			if r.held != nil {
				r.held.Wipe()
				o.held--
			}
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
// on a stream): every refusal is counted here. The stream listener does
// all of it on the connection's goroutine; the UDP readers only screen
// and leave the open to the hello workers (helloworkers.go).
func (d *Device) classifyHello(now time.Time, src netip.AddrPort, env []byte, sender uint32, maxDatagram int) sealedVerdict {
	v, open := d.screenHello(now, src, env, sender, maxDatagram)
	if !open {
		return v
	}
	return d.openHello(now, src.String(), env, v.hash, sender, maxDatagram)
}

// screenHello is the listener's work on a hello that needs no
// cryptography: hello key requests, refusals by type, copies of hellos
// opened before, and the host's token of a new sealed hello. open says
// that env is a new sealed hello, hashed v.hash, that its host may have
// opened (openHello).
func (d *Device) screenHello(now time.Time, src netip.AddrPort, env []byte, sender uint32, maxDatagram int) (v sealedVerdict, open bool) {
	from := src.String()
	if len(env) < 3 {
		d.guard.refuse(now, refBadHello, from)
		return sealedVerdict{}, false
	}
	switch session.MsgType(env[2]) {
	case session.MsgHelloKeyRequest:
		return sealedVerdict{answer: d.answerKeyRequest(now, from, env, sender, maxDatagram)}, false
	case session.MsgClientHello, session.MsgResumptionRequest:
		d.guard.refuse(now, refPlaintextHello, from)
		return sealedVerdict{}, false
	case session.MsgSealedHello:
	default:
		d.guard.refuse(now, refBadHello, from)
		return sealedVerdict{}, false
	}
	host := hostOf(src.Addr())
	h := sha256.Sum256(env)
	if v, ok := d.classifyCopy(now, host, from, h, true); ok {
		return v, false
	}
	if !d.guard.admitCopy(now, host, from) {
		return sealedVerdict{}, false
	}
	return sealedVerdict{hash: h}, true
}

// answerKeyRequest is the HelloKeyAnswer to a request env (or to a hello
// sealed to a key we no longer hold), nil when it is refused.
func (d *Device) answerKeyRequest(now time.Time, from string, env []byte, sender uint32, maxDatagram int) [][]byte {
	out, err := d.hello.ring.AnswerRequest(env, sender, maxDatagram)
	if err != nil {
		d.guard.refuseErr(now, refBadHello, from, err)
		return nil
	}
	d.guard.keyAnswers.add(now)
	return out
}

// openHello takes a token of the device's handshake ceiling for a new
// sealed hello hashed h, whose host's token screenHello took, and opens
// it once.
func (d *Device) openHello(now time.Time, from string, env []byte, h [32]byte, sender uint32, maxDatagram int) sealedVerdict {
	if !d.guard.admitCeiling(now, from) {
		return sealedVerdict{}
	}
	ring := d.hello.ring
	oh, err := ring.OpenHello(now, env)
	switch {
	case errors.Is(err, session.ErrUnknownHelloKey):
		return sealedVerdict{answer: d.answerKeyRequest(now, from, env, sender, maxDatagram)}
	case errors.Is(err, session.ErrReplayedHello):
		// The keyring knows these bytes and refused them before any
		// HPKE open (a hash lookup): the ceiling paid for nothing and
		// gets its token back. The host's token stays taken, so a
		// flood of replays is the host's limit, not the device's.
		// (Two copies that raced through the open also end here, one
		// of them after an open; that takes two workers opening the
		// same bytes at once.)
		d.guard.global.refund()
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
		oh.Wipe()
		d.guard.refuse(now, refUnknownPeer, from)
		return sealedVerdict{}
	}
	if oh.Resumption && !d.guard.admitResumption(now) {
		// Opened, and paid for by the ceiling, but over the resumption
		// budget: held, so that the initiator's retransmission goes on
		// without another open once the budget has a token.
		// A stream initiator never resends a hello (it reconnects
		// with a new one), so over TCP there is nothing to hold for.
		d.guard.refuse(now, refRateResume, from)
		if maxDatagram < 0 || !d.opened.add(now, h, p, oh) {
			oh.Wipe()
		}
		return sealedVerdict{}
	}
	d.opened.add(now, h, p, nil)
	return sealedVerdict{p: p, opened: oh, hash: h}
}

// classifyCopy handles a sealed hello hashed h that was opened before;
// ok is false when it was not. A copy costs a hash and a lookup, and its
// peer answers it from its cache. It takes the host's token (unless
// charged says the caller took it), so a flood of copies from one host is
// limited as before, but not the device's: under a restart storm the
// device may sit at its ceiling, and a peer whose answer was lost must
// not be refused again and again while we hold the answer. A copy of a
// held resumption takes the resumption budget's token, and the hello
// opened before goes on.
func (d *Device) classifyCopy(now time.Time, host netip.Prefix, from string, h [32]byte, charge bool) (v sealedVerdict, ok bool) {
	hostOK := !charge
	admitHost := func() bool {
		if !hostOK {
			hostOK = d.guard.admitCopy(now, host, from)
		}
		return hostOK
	}
	p, oh, held := d.opened.lookup(now, h, func() bool {
		// Under the routes' lock: one copy releases a held
		// resumption, never two.
		return admitHost() && d.guard.admitHeldResumption(now)
	})
	switch {
	case p == nil:
		return sealedVerdict{}, false
	case held:
		if hostOK {
			d.guard.refuse(now, refRateResume, from)
		}
		return sealedVerdict{}, true
	case oh == nil && !admitHost():
		return sealedVerdict{}, true
	}
	return sealedVerdict{p: p, opened: oh, hash: h}, true
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
