package tunnel

// Connecting a peer: dialing, choosing between carriers, and starting the
// datagram or stream session on the one chosen (the owner goroutine's
// part; run and handle in peer.go call these).

import (
	"errors"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/current-vpn/current/session"
)

func (p *peer) startDial() {
	p.dialing = true
	p.timers.redialAt = time.Time{}
	p.stats.dials.Add(1)
	endpoint := p.cfg.Endpoint
	if p.useTCP || p.dev.udp.bind == nil {
		p.dev.goFunc(func() { p.dev.dial(p, endpoint) })
	} else {
		p.dev.goFunc(func() { p.dev.resolveUDP(p, endpoint, false) })
	}
}

func (p *peer) onDialed(r dialResult) {
	if r.probe {
		p.onProbeResolved(r)
		return
	}
	p.dialing = false
	if p.lateTCPDial(r) {
		return
	}
	if r.err != nil {
		p.log.Debug("dial failed", "endpoint", p.cfg.Endpoint, "err", r.err)
		p.timers.scheduleRedial(p.now(), p.dev.cfg.RedialMin, p.dev.cfg.RedialMax)
		return
	}
	if r.ep != nil {
		if p.conn != nil {
			return // the peer reached us first
		}
		p.startDatagram(r.ep, true)
		return
	}
	p.adopt(r.c)
}

// prefer decides whether a new connection replaces the current one; see
// the package documentation on simultaneous connects.
func (p *peer) prefer(c carrier) bool {
	if p.conn.datagram() != c.datagram() && !p.sess.Established() {
		// The peer answers over the other transport (auto fell back):
		// TCP wins, so both sides converge on it.
		return !c.datagram()
	}
	if c.isOutbound() == p.conn.isOutbound() {
		return true
	}
	return c.isOutbound() == session.PreferOutgoing(p.dev.ownPub, p.cfg.PublicKey)
}

// adopt makes c the peer's connection and starts its session.
func (p *peer) adopt(c *streamConn) {
	if !c.outbound {
		// A TCP initiator never sends one hello twice: a known one on a
		// new connection is a replay (hellogate.go).
		if v := p.gateHello(c.helloHash); v != helloNew {
			if v == helloRetransmit {
				p.dev.guard.refuse(p.now(), refHelloReplay, c.remote())
			}
			c.abort()
			return
		}
	}
	if p.conn != nil {
		if !p.prefer(c) {
			p.log.Debug("keeping existing connection", "new_outbound", c.outbound)
			c.abort()
			return
		}
		if p.sess == nil {
			p.dropConn(errReplaced)
		}
		if !c.outbound && p.sess != nil && p.sess.Established() {
			p.startCandidate(c)
			return
		}
		p.stats.connsReplaced.Add(1)
		p.dropConn(errReplaced)
	}
	s, err := p.startSession(c)
	p.use(c, s)
	if c.resumes {
		p.markResumption(true)
	}
	p.sessHello = c.helloHash
	p.timers.handshakeDeadline = p.now().Add(p.dev.cfg.HandshakeTimeout)
	if err != nil {
		p.sessionFailed(err)
		return
	}
	p.process()
}

// sessionConfig is what every session of this peer starts from: our
// keys, the peer's, and the device's current rekey policy.
func (p *peer) sessionConfig(role session.Role, t session.Transport) session.Config {
	pol := p.dev.policy.Load()
	cfg := session.Config{
		Role:           role,
		Suite:          p.dev.cfg.Suite,
		SigningKey:     p.dev.cfg.PrivateKey,
		PeerPublicKey:  p.cfg.PublicKey,
		Transport:      t,
		UpdateInterval: pol.interval,
		UpdateBytes:    pol.bytes,
	}
	p.hidingConfig(&cfg)
	return cfg
}

// newDatagramSession creates a datagram-mode session for c, resuming
// from saved if given.
func (p *peer) newDatagramSession(c *dgramCarrier, role session.Role, saved *savedState) (*session.Session, error) {
	cfg := p.sessionConfig(role, session.Datagram)
	cfg.MaxDatagramSize = p.dev.cfg.MaxDatagramSize
	cfg.LocalIndex = c.index
	cfg.GiveUp = p.dev.cfg.GiveUp
	cfg.RetransmitMax = helloRetransmitMax
	if saved != nil {
		cfg.Resume, cfg.PeerIndex = saved.Group, saved.PeerIndex
	}
	s, err := session.New(cfg)
	if err != nil {
		return nil, err
	}
	return s, s.Start(p.now())
}

// startDatagram starts a datagram-mode session of ours: as initiator to ep
// (resuming if we have saved state), or, with outbound false, as a
// resuming responder that waits for the peer.
func (p *peer) startDatagram(ep conn.Endpoint, outbound bool) {
	saved := p.saved
	p.saved = nil
	// A fresh index even when resuming: the saved one would link the
	// new session to the old one on the wire (identity hiding).
	c := &dgramCarrier{p: p, outbound: outbound, ep: ep, index: p.dev.allocIndex(p, 0)}
	role := session.Responder
	if outbound {
		role = session.Initiator
	}
	if saved != nil {
		p.log.Info("resuming saved session", "epoch", saved.Epoch, "role", roleName(role))
	}
	s, err := p.newDatagramSession(c, role, saved)
	p.use(c, s)
	if saved != nil {
		clear(saved.Group) // the session has its own copy
		p.markResumption(outbound)
	}
	timeout := p.dev.cfg.HandshakeTimeout
	if p.cfg.Transport == TransportAuto && outbound {
		timeout = p.dev.cfg.UDPFallback
		if saved != nil {
			timeout += session.DefaultResumeTimeout
		}
	}
	if outbound {
		p.timers.handshakeDeadline = p.now().Add(timeout)
	}
	if err != nil {
		p.sessionFailed(err)
		return
	}
	p.log.Debug("datagram session", "remote", c.remote(), "role", roleName(role), "index", c.index)
	p.process()
}

// startSession creates and starts the session of a new connection, feeding
// it the bytes the accepter already read, and starts the connection's
// reader and writer. On error the connection is running but the session is
// closed (or nil), and the caller drops both.
func (p *peer) startSession(c *streamConn) (*session.Session, error) {
	role := session.Responder
	if c.outbound {
		role = session.Initiator
	}
	c.start(&p.dev.wg, p.events)
	p.log.Debug("connection", "remote", c.remote(), "role", roleName(role))
	cfg := p.sessionConfig(role, session.Stream)
	cfg.Resume = p.streamResume(c)
	c.resumes = cfg.Resume != nil
	s, err := session.New(cfg)
	clear(cfg.Resume) // New keeps a copy
	if err != nil {
		return nil, err
	}
	if c.resumes && c.outbound {
		p.log.Info("resuming saved session", "epoch", p.saved.Epoch, "role", roleName(role), "transport", "tcp")
	}
	now := p.now()
	if err := s.Start(now); err != nil {
		return s, err
	}
	if oh := c.opened; oh != nil {
		c.opened = nil
		if err := s.HandleOpenedHello(now, oh, 0); err != nil {
			return s, err
		}
	}
	if len(c.prefix) > 0 {
		err := s.HandleStream(now, c.prefix)
		c.prefix = nil
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

func roleName(r session.Role) string {
	if r == session.Initiator {
		return "initiator"
	}
	return "responder"
}

var (
	errReplaced = errors.New("replaced by a new connection")
	errShutdown = errors.New("shutting down")
	errTimeout  = errors.New("handshake timed out")
)

func (p *peer) onConnEvent(ev connEvent) {
	defer ev.release()
	if ev.c != nil && p.cand.c != nil && carrier(ev.c) == p.cand.c {
		p.onCandidateEvent(ev)
		return
	}
	if p.conn == nil || carrier(ev.c) != p.conn {
		return // from a connection we already dropped
	}
	if ev.err != nil {
		p.log.Info("connection lost", "err", ev.err)
		p.dropConn(ev.err)
		return
	}
	err := p.sess.HandleStream(p.now(), ev.data)
	p.flushRx() // what the packet sink queued
	if err != nil {
		p.sessionFailed(err)
		return
	}
	p.process()
}
