package tunnel

import (
	"errors"
	"time"

	"github.com/current-vpn/current/session"
)

// A ClientHello travels in the clear and carries nothing fresh that the
// responder could check, so anyone who saw one can replay it. If a
// replayed hello replaced the peer's established connection, an observer
// could cut the tunnel at will. So a new inbound connection (or, over UDP,
// a new ClientHello) that would replace an established session runs next
// to it as a candidate, and takes over only once it has proved to be the
// peer: when a protected record from it authenticates (only the holder of
// the KeyPackage's private keys can open our Welcome and key records), or
// when the established connection dies. A candidate that proves nothing
// within the handshake timeout is dropped. A replay thus costs us one
// handshake and no traffic.

// candidate is the owner's second connection slot.
type candidate struct {
	c        carrier
	s        *session.Session
	deadline time.Time
	started  time.Time // for the handshake duration
	// hello is the ClientHello the candidate answers.
	hello [32]byte
	// rescue: a handshake of ours to a peer that went silent
	// (liveness.go); its own handshake proves it.
	rescue bool
	// What the session produced before promotion, handled after it.
	pkts   [][]byte
	events []session.Event
}

func (p *peer) startCandidate(c *streamConn) {
	p.dropCandidate() // one at a time; the newest is the likeliest genuine
	if !p.dev.guard.takeCandidate() {
		p.dev.guard.refuse(p.now(), refCandidates, c.remote())
		c.abort()
		return
	}
	s, err := p.startSession(c)
	p.cand = candidate{c: c, s: s, started: p.now(), deadline: p.now().Add(p.dev.cfg.HandshakeTimeout), hello: c.helloHash}
	if err != nil {
		p.candidateFailed(err)
		return
	}
	p.log.Debug("replacement connection pending proof")
	// The ServerHello goes out now; packets and events wait for the
	// promotion.
	c.send(s.Outgoing())
}

// startDatagramCandidate answers a new sealed ClientHello over UDP while
// a session is established.
func (p *peer) startDatagramCandidate(in *packetBuf, oh *session.OpenedHello, hello [32]byte) {
	if p.keepProbe() {
		return
	}
	p.dropCandidate()
	if !p.dev.guard.takeCandidate() {
		p.dev.guard.refuse(p.now(), refCandidates, endpointAddr(in.ep).String())
		return
	}
	c := &dgramCarrier{p: p, ep: in.ep, index: p.dev.allocIndex(p, 0)}
	s, err := p.newDatagramSession(c, session.Responder, nil)
	p.cand = candidate{c: c, s: s, started: p.now(), deadline: p.now().Add(p.dev.cfg.HandshakeTimeout), hello: hello}
	if err == nil {
		err = s.HandleOpenedHello(p.now(), oh, helloSender(in))
	}
	if err != nil {
		p.candidateFailed(err)
		return
	}
	p.log.Debug("replacement session pending proof")
	p.candidateProgress()
}

// feedCandidate gives the candidate a retransmission of its ClientHello,
// which its session answers from its cache.
func (p *peer) feedCandidate(in *packetBuf) {
	if err := feedAll(p.now(), p.cand.s, in.frags); err != nil && !errors.Is(err, session.ErrDropped) {
		p.candidateFailed(err)
		return
	}
	p.candidateProgress()
}

func (p *peer) onCandidateEvent(ev connEvent) {
	if ev.err != nil {
		p.dropCandidate()
		return
	}
	if err := p.cand.s.HandleStream(p.now(), ev.data); err != nil {
		p.candidateFailed(err)
		return
	}
	p.candidateProgress()
}

func (p *peer) onCandidateDatagram(in *packetBuf) {
	err := p.cand.s.HandleDatagram(p.now(), in.pkt)
	if errors.Is(err, session.ErrDropped) {
		p.countDrop(err)
		return
	}
	if err != nil {
		p.candidateFailed(err)
		return
	}
	if dc := p.cand.c.(*dgramCarrier); in.pkt[0] == recordType {
		dc.ep = in.ep
	}
	p.candidateProgress()
}

// candidateProgress sends what the candidate's session produced and
// promotes it once it proved itself.
func (p *peer) candidateProgress() {
	s := p.cand.s
	if t := s.HelloTime(); t.After(p.helloFloor) {
		p.helloFloor = t
	}
	p.transmit(p.cand.c, s.Outgoing())
	pkts, events := s.Packets(), s.Events()
	p.probeEstablished(events)
	p.cand.pkts = append(p.cand.pkts, pkts...)
	p.cand.events = append(p.cand.events, events...)
	// Bytes accepted are no proof (a record header is buffered before it
	// is checked), but a packet or any event after Established is: it
	// came out of a record that authenticated under the new keys.
	proven := len(pkts) > 0
	for _, e := range events {
		if _, ok := e.(session.Established); !ok || p.cand.rescue {
			// A rescue is our own handshake: the peer's answer to our
			// fresh KeyPackage, signed by its pinned key, is the proof
			// (no replay can produce it).
			proven = true
		}
	}
	if proven {
		p.promote()
	}
}

// promote makes the candidate the peer's connection.
func (p *peer) promote() {
	c := p.cand
	p.cand = candidate{}
	p.dev.guard.candidates.Add(-1)
	if p.conn != nil {
		p.stats.connsReplaced.Add(1)
		p.dropConn(errReplaced)
	}
	p.use(c.c, c.s)
	p.attempt.start = c.started
	if sc, ok := c.c.(*streamConn); ok && sc.resumes {
		p.markResumption(true)
	}
	p.sessHello = c.hello
	p.timers.handshakeDeadline = time.Time{}
	if !c.s.Established() {
		// Promoted because the old connection died: the candidate must
		// still establish in time.
		p.timers.handshakeDeadline = c.deadline
	}
	p.log.Debug("replacement connection took over")
	// The events first: every packet the candidate holds came out of a
	// record opened after its Established, and whoever reads a packet of
	// the new session from the TUN must find the session counted and
	// marked established (handle delivers before it handles events, so
	// the packets would otherwise race the counters to the reader).
	p.handle(nil, c.events)
	if len(c.pkts) > 0 {
		p.deliver(c.pkts)
	}
	if p.sess != nil {
		p.process()
	}
}

// candidateFailed drops a candidate whose session failed. A refused
// KeyPackage is counted and logged as such; anything else is the noise a
// replayed hello makes, logged at debug level.
func (p *peer) candidateFailed(err error) {
	if !p.dev.guard.refusedKeyPackage(p.now(), p.cand.c, err) {
		p.log.Debug("replacement session failed", "err", err)
	}
	p.dropCandidate()
}

func (p *peer) dropCandidate() {
	if p.cand.c == nil {
		return
	}
	probe := p.probing()
	rescueFailed := p.cand.rescue && (p.cand.s == nil || !p.cand.s.Established())
	if p.cand.s != nil {
		p.cand.s.Close(p.now())
		p.transmit(p.cand.c, p.cand.s.Outgoing())
	}
	p.cand.c.close()
	p.cand = candidate{}
	p.dev.guard.candidates.Add(-1)
	if probe && p.probeWanted() {
		p.probeFailed()
	}
	if rescueFailed && p.cfg.Transport == TransportAuto && p.live.awaiting && p.conn != nil && p.conn.datagram() {
		// UDP went silent both ways: neither the session nor a fresh
		// handshake got an answer.
		p.fallBackToTCP(p.now())
	}
}
