package tunnel

import (
	"time"

	"github.com/current-vpn/current/session"
)

// Returning to UDP after a fallback. A transport=auto peer that fell back
// to TCP keeps trying UDP in the background: a probe is a fresh UDP
// handshake run as a candidate (candidate.go) next to the established TCP
// session, which carries the traffic meanwhile. The peer's side answers
// the probe's ClientHello as it answers any new hello while established,
// with a candidate of its own that takes over once our first record under
// the new keys authenticates; it then greets us with a keepalive over UDP,
// which proves our candidate in turn. So each side switches only after UDP
// carried an authenticated record both ways (make-before-break), and the
// promotion closes the TCP connection. A probe that proves nothing within
// UDPFallback is dropped, and the next waits twice as long, from
// UDPProbeMin up to UDPProbeMax; a change of our own addresses resets the
// wait and probes at once, since a new network is the likeliest reason
// for UDP to work again.

// udpProbe is the owner's probing state.
type udpProbe struct {
	// since is when the peer fell back to TCP; zero while not fallen back.
	since time.Time
	// at is when the next probe starts (zero: none scheduled); backoff is
	// the wait before it.
	at      time.Time
	backoff time.Duration
	// resolving: the endpoint's name is being resolved for a probe.
	resolving bool
}

// fellBack records the fallback to TCP at now and schedules the first
// probe.
func (p *peer) fellBack(now time.Time) {
	p.probe = udpProbe{since: now}
	p.scheduleProbe(now)
}

// scheduleProbe schedules the next probe, one backoff step later than
// the last.
func (p *peer) scheduleProbe(now time.Time) {
	p.probe.backoff = min(max(2*p.probe.backoff, p.dev.cfg.UDPProbeMin), p.dev.cfg.UDPProbeMax)
	p.probe.at = now.Add(p.probe.backoff)
}

// probeWanted reports whether the peer is one that probes: auto, fallen
// back, with an endpoint to probe and UDP sockets to probe from.
func (p *peer) probeWanted() bool {
	return p.cfg.Transport == TransportAuto && p.useTCP && !p.probe.since.IsZero() &&
		p.cfg.Endpoint != "" && p.dev.udp.bind != nil
}

// probeReady reports whether a probe may run now: the TCP session is
// established (a probe replaces a working session, it does not race a
// handshake) and no other candidate is under way.
func (p *peer) probeReady() bool {
	return p.probeWanted() && p.cand.c == nil &&
		p.conn != nil && !p.conn.datagram() && p.sess != nil && p.sess.Established()
}

// probing reports whether the candidate is our own UDP probe.
func (p *peer) probing() bool {
	dc, ok := p.cand.c.(*dgramCarrier)
	return ok && dc.outbound
}

// probeDue is the probe timer's deadline, zero when no probe may start.
func (p *peer) probeDue() time.Time {
	if p.probe.resolving || !p.probeReady() {
		return time.Time{}
	}
	return p.probe.at
}

// startProbe resolves the endpoint for UDP; onProbeResolved goes on.
func (p *peer) startProbe() {
	p.probe.at = time.Time{}
	p.probe.resolving = true
	endpoint := p.cfg.Endpoint
	p.dev.goFunc(func() { p.dev.resolveUDP(p, endpoint, true) })
}

// onProbeResolved starts the probe's handshake as a candidate, unless the
// peer's state changed while the name was resolved.
func (p *peer) onProbeResolved(r dialResult) {
	p.probe.resolving = false
	now := p.now()
	if r.err != nil {
		p.log.Debug("UDP probe: resolving the endpoint failed", "endpoint", p.cfg.Endpoint, "err", r.err)
		p.scheduleProbe(now)
		return
	}
	if !p.probeReady() {
		// Try again as soon as it may (probeDue).
		if p.probeWanted() {
			p.probe.at = now
		}
		return
	}
	if !p.dev.guard.takeCandidate() {
		p.scheduleProbe(now)
		return
	}
	c := &dgramCarrier{p: p, outbound: true, ep: r.ep, index: p.dev.allocIndex(p, 0)}
	s, err := p.newDatagramSession(c, session.Initiator, nil)
	p.cand = candidate{c: c, s: s, deadline: now.Add(p.dev.cfg.UDPFallback)}
	if err != nil {
		p.log.Warn("UDP probe failed", "err", err)
		p.dropCandidate()
		return
	}
	p.stats.udpProbes.Add(1)
	p.log.Debug("probing UDP", "endpoint", c.remote(), "index", c.index)
	p.candidateProgress()
}

// lateTCPDial drops the TCP connection of a dial that completed only
// after the peer got an established UDP session (the peer's TCP
// connection was taken while ours was on its way, then a probe moved the
// session to UDP): it would replace the session we just moved to.
func (p *peer) lateTCPDial(r dialResult) bool {
	if r.c == nil || p.conn == nil || !p.conn.datagram() || p.sess == nil || !p.sess.Established() {
		return false
	}
	p.log.Debug("dropping a TCP connection made before UDP got through")
	r.c.abort()
	return true
}

// probeTimeout is when the probe's session wants HandleTimeout (its
// ClientHello's retransmissions), zero if no probe runs. A responder's
// candidate waits for the initiator's retransmissions instead.
func (p *peer) probeTimeout() time.Time {
	if !p.probing() {
		return time.Time{}
	}
	return p.cand.s.NextTimeout()
}

// probeSessionTimeout fires the probe session's timers: a ClientHello lost
// on its way (UDP let through again only after it was sent) is sent again.
func (p *peer) probeSessionTimeout(now time.Time) {
	if err := p.cand.s.HandleTimeout(now); err != nil {
		p.log.Debug("UDP probe failed", "err", err)
		p.dropCandidate()
		return
	}
	p.candidateProgress()
}

// probeEstablished sends the first record of a probe whose handshake just
// completed: it is what proves us to the peer's candidate.
func (p *peer) probeEstablished(events []session.Event) {
	if !p.probing() {
		return
	}
	for _, e := range events {
		if _, ok := e.(session.Established); ok {
			if err := p.cand.s.SendKeepalive(p.now()); err == nil {
				p.transmit(p.cand.c, p.cand.s.Outgoing())
			}
			return
		}
	}
}

// probeFailed schedules the next probe after a candidate of ours was
// dropped unproven.
func (p *peer) probeFailed() {
	p.scheduleProbe(p.now())
	p.log.Debug("UDP probe failed", "next_in", p.probe.backoff)
}

// establishedTransport follows a session established over UDP: it ends
// the fallback, whether our probe took over, the peer's did, or the peer
// reached us over UDP while we had no connection.
func (p *peer) establishedTransport() {
	if !p.conn.datagram() || p.cfg.Transport != TransportAuto {
		return
	}
	if p.useTCP {
		p.log.Info("back on UDP", "fallback_since", p.probe.since.UTC().Format(time.RFC3339))
		p.stats.udpReturns.Add(1)
	}
	p.useTCP = false
	p.probe = udpProbe{}
}

// probeOnUnderlayChange probes at once after our addresses changed, and
// from then on with the shortest wait again.
func (p *peer) probeOnUnderlayChange() {
	if !p.probeWanted() {
		return
	}
	if p.probing() && !p.cand.s.Established() {
		// Started from the old address, whose answers may never come.
		p.dropCandidate()
	}
	p.probe.backoff = 0
	p.probe.at = p.now()
}

// keepProbe decides a peer's ClientHello that arrives while our own probe
// runs, both sides having probed at once: as with simultaneous connects,
// the handshake initiated by the side with the lower key is kept, so true
// means the peer's hello is ignored (otherwise our probe gives way to it).
func (p *peer) keepProbe() bool {
	if !p.probing() || !session.PreferOutgoing(p.dev.ownPub, p.cfg.PublicKey) {
		return false
	}
	p.log.Debug("UDP probes crossed: keeping ours")
	return true
}
