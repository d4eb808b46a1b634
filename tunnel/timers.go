package tunnel

import (
	"time"
)

// peerTimers are the owner's deadlines. One time.Timer per peer is reset
// to the earliest of them after every event, so no timer goroutine or
// callback ever touches owner state.
type peerTimers struct {
	handshakeDeadline time.Time // current connection must establish by then
	redialAt          time.Time // next connection attempt
	backoff           time.Duration
	// epochs limits the INFO lines of epoch changes (epochlog.go).
	epochs epochLog
}

// scheduleRedial backs off exponentially between failed attempts; an
// established session resets the backoff.
func (t *peerTimers) scheduleRedial(now time.Time, lo, hi time.Duration) {
	t.backoff = min(max(2*t.backoff, lo), hi)
	t.redialAt = now.Add(t.backoff)
}

// next is the earliest deadline that applies in the peer's state, or zero.
func (p *peer) nextDeadline() time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if p.conn != nil {
		earliest(p.timers.handshakeDeadline)
	}
	if p.sess != nil {
		earliest(p.sess.NextTimeout())
	}
	if p.cand.c != nil {
		earliest(p.cand.deadline)
	}
	if p.conn == nil && !p.dialing && p.cfg.Endpoint != "" {
		earliest(p.timers.redialAt)
	}
	if t := p.keepaliveAt(); !t.IsZero() {
		earliest(t)
	}
	earliest(p.probeDue())
	earliest(p.probeTimeout())
	if t := p.passiveKeepaliveAt(); !t.IsZero() {
		earliest(t.Add(keepaliveSlack))
	}
	earliest(p.silentAt())
	return next
}

// resetTimer sets the owner's timer to the next deadline; most wake-ups
// leave it where it was, and then the timer is not touched.
func (p *peer) resetTimer(t *time.Timer) {
	next := p.nextDeadline()
	if next.Equal(p.armed) {
		return
	}
	p.armed = next
	if next.IsZero() {
		t.Stop()
		return
	}
	t.Reset(max(next.Sub(p.now()), 0))
}

// servedDeadlineMoved reports whether a deadline a receive worker can
// move (records and keepalives touch the liveness, the session's timers
// and, for a responder that learnt the endpoint, the persistent
// keepalive) is now earlier than the one the owner's timer is set for:
// the worker then wakes the owner, which sets it again. A later one needs
// nothing: the timer fires early and the owner sets it again then.
func (p *peer) servedDeadlineMoved() bool {
	before := func(t time.Time) bool {
		return !t.IsZero() && (p.armed.IsZero() || t.Before(p.armed))
	}
	if t := p.passiveKeepaliveAt(); !t.IsZero() && before(t.Add(keepaliveSlack)) {
		return true
	}
	return p.sess != nil && before(p.sess.NextTimeout()) || before(p.keepaliveAt())
}

// onTimer acts on every deadline that has passed.
func (p *peer) onTimer() {
	now := p.now()
	if p.conn != nil && !p.timers.handshakeDeadline.IsZero() && !now.Before(p.timers.handshakeDeadline) {
		if p.conn.datagram() && p.cfg.Transport == TransportAuto && !p.useTCP {
			p.fallBackToTCP(now)
		} else {
			var hint []any
			if p.conn.isOutbound() {
				// A responder answers a refused ClientHello with silence
				// (docs/protocol.md 7.3), so the reason is only in its log.
				hint = []any{"hint", "no answer; if the peer is up, its log says why it refused our hello (unknown_peer, bad_key_package: e.g. a clock far off)"}
			}
			p.log.Info("handshake timed out", hint...)
			p.dropConn(errTimeout)
		}
	}
	if p.cand.c != nil && !now.Before(p.cand.deadline) {
		p.log.Debug("replacement connection did not prove itself in time")
		p.dropCandidate()
	}
	if p.sess != nil {
		if t := p.sess.NextTimeout(); !t.IsZero() && !now.Before(t) {
			p.sessionTimeout(now)
		}
	}
	if p.conn == nil && !p.dialing && p.cfg.Endpoint != "" && !p.timers.redialAt.IsZero() && !now.Before(p.timers.redialAt) {
		p.startDial()
	}
	if t := p.probeDue(); !t.IsZero() && !now.Before(t) {
		p.startProbe()
	}
	if t := p.probeTimeout(); !t.IsZero() && !now.Before(t) {
		p.probeSessionTimeout(now)
	}
	if !p.checkLiveness(now) {
		return
	}
	if t := p.keepaliveAt(); !t.IsZero() && !now.Before(t) {
		if err := p.sess.SendKeepalive(now); err != nil {
			p.sessionFailed(err)
			return
		}
		p.stats.keepalivesTx.Add(1)
		p.flush()
	}
}

// keepaliveAt is when a persistent keepalive is due, or zero.
func (p *peer) keepaliveAt() time.Time {
	ka := p.cfg.PersistentKeepalive
	if ka <= 0 || p.sess == nil || !p.sess.Established() || !p.conn.roomForData() {
		return time.Time{}
	}
	return p.lastSent.Add(ka)
}

// sessionTimeout fires the session's own timers (the update schedule in
// stream mode; retransmission and grace periods too in datagram mode).
func (p *peer) sessionTimeout(now time.Time) {
	if err := p.sess.HandleTimeout(now); err != nil {
		p.sessionFailed(err)
		return
	}
	p.process()
}

// fallBackToTCP gives UDP up for a transport=auto peer: no answer over it
// (a handshake, or a rescue of a silent session, liveness.go).
func (p *peer) fallBackToTCP(now time.Time) {
	p.log.Info("no answer over UDP; falling back to TCP", "endpoint", p.cfg.Endpoint)
	p.useTCP = true
	p.stats.fallbacks.Add(1)
	p.fellBack(now)
	p.dropConn(errTimeout)
	p.timers.redialAt = now
}
