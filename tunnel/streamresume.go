package tunnel

import (
	"errors"

	"github.com/current-vpn/current/session"
)

// Resumption over TCP (docs/protocol.md 7.10, stream mode). A TCP session
// ends with its connection, but its group need not: both sides keep it to
// resume from (peer.saved), the one read from StateDir at start or, when
// an established connection is lost, the session's own. The next
// connection then starts with a ResumptionRequest instead of a handshake:
// the dialer sends it, sealed like every hello, and the accepter's listener
// opens it and routes it to the peer by its group (sealed.go), whose new
// session restored from the same group answers. Both move two epochs
// forward from the kept one, so no record key is used twice, however
// often one group is resumed from (each resumption commits fresh secrets).
//
// What makes a resumption fail falls back as the protocol says: a peer
// without the group (or at another epoch) rejects and the dialer sends a
// ClientHello on the same connection. A listener that does not know the
// group at all closes without a word, as for any stranger; a dialer whose
// resuming connection ends before it established therefore dials afresh
// next time (dialFailed), keeping the state for the peer's own request.
// A peer that closed the session, a session that established (its state
// is saved instead) or one replaced by another connection leaves nothing
// to resume.

// forgetSaved zeroes and drops the state kept to resume from.
func (p *peer) forgetSaved() {
	if p.saved != nil {
		clear(p.saved.Group)
		p.saved = nil
	}
}

// streamResume is the group a new session on c resumes from, nil for a
// handshake: a dialer's saved state, unless a resumption with it failed;
// for an accepted ResumptionRequest the saved state or, when the peer
// reconnects while its old session still looks alive to us, that
// session's group. The caller's copy is its own; it must clear it.
func (p *peer) streamResume(c *streamConn) []byte {
	if c.outbound {
		if p.saved == nil || p.saved.dialFailed {
			return nil
		}
		return append([]byte(nil), p.saved.Group...)
	}
	if c.opened == nil || !c.opened.Resumption {
		return nil
	}
	if p.saved != nil {
		return append([]byte(nil), p.saved.Group...)
	}
	if p.sess != nil && p.sess.Established() {
		if g, err := p.sess.State(); err == nil {
			return g
		}
	}
	// Nothing to resume: the session rejects the request and reads the
	// ClientHello that follows.
	return nil
}

// streamDropped keeps what a stream session that ends leaves to resume
// from; the owner calls it before the session is closed.
func (p *peer) streamDropped(reason error) {
	if p.conn == nil || p.conn.datagram() || p.sess == nil {
		return
	}
	if reason == errShutdown || reason == errReplaced {
		// At shutdown the state is saved (dropConn); a replaced session
		// gives way to a newer one.
		return
	}
	if !p.sess.Established() {
		if p.attempt.resuming && p.conn.isOutbound() && p.saved != nil {
			p.saved.dialFailed = true
		}
		return
	}
	if errors.Is(reason, session.ErrPeerClosed) {
		return // removeState forgot it
	}
	st, err := p.sessionState()
	if err != nil {
		return
	}
	p.forgetSaved()
	p.saved = st
}

// restoreTransport chooses how a peer starts from a state saved by a TCP
// session. Resuming needs the transport the state came from (a datagram
// resumption needs receiver indexes a stream session never had), so a
// transport=auto peer that was in TCP fallback starts there, as fallen
// back, and returns to UDP by the probes of probe.go; a udp peer cannot
// use the state and handshakes.
func (p *peer) restoreTransport() {
	st := p.saved
	if st == nil || !st.stream() || p.cfg.Endpoint == "" || p.useTCP || p.dev.udp.bind == nil {
		return
	}
	if p.cfg.Transport == TransportAuto {
		p.log.Info("resuming the saved TCP session over TCP; UDP is probed from there")
		p.useTCP = true
		p.fellBack(p.now())
		return
	}
	p.log.Info("ignoring saved session state of a TCP session: the peer is reached over UDP")
	p.forgetSaved()
}
