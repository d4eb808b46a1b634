package tunnel

import (
	"time"

	"github.com/current-vpn/current/session"
)

// Liveness of a UDP session (issue 16): noticing at once that the peer
// forgot it. A hub that restarted without its state, or that gave our
// session up while we were frozen or asleep, drops every record we send
// without a word: nothing it could say would be authenticated. So the
// silence itself is the signal, and two rules make it one:
//
//   - Passive keepalive: a side that received data and sent nothing
//     within passiveKeepalive sends a keepalive, so a live peer answers
//     traffic within passiveKeepalive plus a round trip even when the
//     traffic is one-way (WireGuard's KEEPALIVE_TIMEOUT, 10 s there).
//   - Dead session: an initiator (a peer with an endpoint) that sent data
//     and heard nothing authenticated for silentAfter handshakes afresh
//     at once (checkLiveness), instead of waiting for the update schedule
//     to give up (WireGuard starts a handshake after 15 s).
//
// Under one-way traffic a peer gets one keepalive per passiveKeepalive
// plus a round trip: a hub receiving from 1,000 peers sends that many
// datagrams per interval, each sealed and sent alone, so the interval is
// as long as the second rule allows. The receive workers send a keepalive
// that fell due with the records that made it due (rxworkers.go), and the
// owner's timer, set keepaliveSlack later, only when the traffic stopped
// first; silentAfter leaves a round trip of 1 s - passiveKeepalive -
// keepaliveSlack = 550 ms after it. A link that loses everything for that
// long gets a new handshake, which costs one round trip once the link is
// back. Over TCP a peer that forgot us resets the connection, and a
// congested one can delay answers by seconds without being dead, so both
// rules are for UDP only.
const (
	passiveKeepalive = 400 * time.Millisecond
	keepaliveSlack   = 50 * time.Millisecond
	silentAfter      = time.Second
)

// While traffic waits for a session, the peer is looked for at least every
// two seconds: the UDP sessions retransmit control messages, ClientHellos
// among them, at most helloRetransmitMax apart (the session's default is
// 8 s), and a backoff between attempts is cut to trafficRedialMax. A peer that comes back after a long absence (a hub
// that rebooted) then carries traffic within that of being up, at the
// price of a hello every 2 s to a dead endpoint while the user keeps
// sending (WireGuard sends one every 5 s).
const (
	helloRetransmitMax = 2 * time.Second
	trafficRedialMax   = 2 * time.Second
)

// liveness is owner state, reset with each connection.
type liveness struct {
	// owed: data arrived at owedSince and we have sent nothing since
	// (compared with peer.lastSent).
	owedSince time.Time
	// awaiting: we sent data at sentSince and heard nothing
	// authenticated since.
	awaiting  bool
	sentSince time.Time
}

// heard records an authenticated record from the peer; data says it
// carried a packet (not a keepalive or control message).
func (p *peer) heard(now time.Time, data bool) {
	p.live.awaiting = false
	if data && !p.live.owedSince.After(p.lastSent) {
		p.live.owedSince = now
	}
}

// sentData records that data records went to the peer over UDP.
func (p *peer) sentData(now time.Time) {
	if !p.live.awaiting {
		p.live.awaiting, p.live.sentSince = true, now
	}
}

// passiveKeepaliveAt is when a keepalive is owed for data received, or
// zero.
func (p *peer) passiveKeepaliveAt() time.Time {
	if !p.liveUDP() || !p.live.owedSince.After(p.lastSent) {
		return time.Time{}
	}
	return p.live.owedSince.Add(passiveKeepalive)
}

// silentAt is when the session counts as forgotten by the peer, or zero.
func (p *peer) silentAt() time.Time {
	if !p.liveUDP() || !p.live.awaiting || p.cfg.Endpoint == "" {
		return time.Time{}
	}
	return p.live.sentSince.Add(silentAfter)
}

func (p *peer) liveUDP() bool {
	return p.sess != nil && p.sess.Established() && p.conn.datagram()
}

// checkLiveness acts on the two deadlines; it reports false if the
// session was dropped.
//
// A silent peer gets a rescue: a fresh handshake of ours to its endpoint,
// run as a candidate next to the silent session (make-before-break). If
// the peer forgot us, the rescue's handshake establishes and takes over
// at once; if the peer is only slow (a loaded hub, a hello flood at it),
// the old session goes on carrying whatever still gets through, and the
// rescue replaces it when it completes, which costs nothing.
func (p *peer) checkLiveness(now time.Time) bool {
	if t := p.silentAt(); !t.IsZero() && !now.Before(t) {
		p.rescue(now)
	}
	if err := p.passiveKeepaliveDue(now); err != nil {
		p.sessionFailed(err)
		return false
	}
	return true
}

// passiveKeepaliveDue sends the passive keepalive if one is due; it
// returns the session's fatal error. The receive workers call it after
// the records they opened, so that under one-way traffic the keepalive
// goes out with the data that made it due, and the owner's timer is only
// the fallback for traffic that stopped.
func (p *peer) passiveKeepaliveDue(now time.Time) error {
	if t := p.passiveKeepaliveAt(); t.IsZero() || now.Before(t) {
		return nil
	}
	if err := p.sess.SendKeepalive(now); err != nil {
		return err
	}
	p.stats.keepalivesTx.Add(1)
	p.flush()
	return nil
}

// rescue starts the rescue handshake, unless a candidate is already
// under way; the silence is measured afresh from now either way, so a
// peer that stays away gets one attempt per candidate lifetime.
func (p *peer) rescue(now time.Time) {
	p.live.sentSince = now
	if p.cand.c != nil {
		return
	}
	dc := p.conn.(*dgramCarrier)
	if dc.ep == nil || !p.dev.guard.takeCandidate() {
		return
	}
	p.log.Info("no answer to our traffic; handshaking afresh", "silent", silentAfter)
	p.stats.silentSessions.Add(1)
	c := &dgramCarrier{p: p, outbound: true, ep: dc.ep, index: p.dev.allocIndex(p, 0)}
	s, err := p.newDatagramSession(c, session.Initiator, nil)
	deadline := now.Add(p.dev.cfg.HandshakeTimeout)
	if p.cfg.Transport == TransportAuto {
		// Auto falls back to TCP when the rescue gets no answer either
		// (dropCandidate): as soon as a first handshake would.
		deadline = now.Add(p.dev.cfg.UDPFallback)
	}
	p.cand = candidate{c: c, s: s, deadline: deadline, started: now, rescue: true}
	if err != nil {
		p.log.Warn("rescue handshake failed", "err", err)
		p.dropCandidate()
		return
	}
	p.candidateProgress()
}
