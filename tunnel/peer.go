package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/current-vpn/current/session"
)

const (
	// outboundQueueLen bounds packets waiting for the owner; the TUN
	// reader drops when it is full rather than stall every other peer.
	outboundQueueLen = 1024
	// pendingLen bounds packets held while no session is established, as
	// wireguard-go's staged queue does; the oldest are dropped first.
	pendingLen = 128
	// sendBatch is how many queued packets the owner seals per wake-up
	// before looking at its other inputs again.
	sendBatch = 64
)

// peer is one configured peer. Fields below "owner state" belong to the
// run goroutine alone.
type peer struct {
	dev *Device
	// cfg's Name and PublicKey never change; Endpoint and AllowedIPs
	// belong to the owner, which Reconfigure updates through reconf.
	cfg PeerConfig
	log *slog.Logger
	// ctx ends when the device closes or Reconfigure removes the peer.
	ctx  context.Context
	stop context.CancelFunc

	outbound chan []byte      // from the TUN reader
	conns    chan *streamConn // identified inbound connections
	dialed   chan dialResult  // outcomes of our dials
	events   chan connEvent   // from connection readers
	rekey    chan struct{}    // Device.Rekey, coalesced
	reconf   chan PeerConfig  // from Reconfigure

	stats       peerStats
	epoch       atomic.Uint64
	established atomic.Bool

	// owner state
	conn    *streamConn
	sess    *session.Session
	pending [][]byte
	dialing bool
	timers  peerTimers
	cand    candidate
}

func newPeer(d *Device, cfg PeerConfig) *peer {
	ctx, stop := context.WithCancel(d.ctx)
	return &peer{
		ctx:      ctx,
		stop:     stop,
		dev:      d,
		cfg:      cfg,
		log:      d.log.With("peer", cfg.Name),
		outbound: make(chan []byte, outboundQueueLen),
		conns:    make(chan *streamConn),
		dialed:   make(chan dialResult),
		events:   make(chan connEvent),
		rekey:    make(chan struct{}, 1),
		reconf:   make(chan PeerConfig),
	}
}

// enqueue is called by the TUN reader.
func (p *peer) enqueue(pkt []byte) {
	select {
	case p.outbound <- pkt:
	default:
		p.stats.dropQueueFull.Add(1)
	}
}

func (p *peer) requestRekey() {
	select {
	case p.rekey <- struct{}{}:
	default:
	}
}

// run is the owner goroutine.
func (p *peer) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	if p.cfg.Endpoint != "" {
		// Connect at start so the first packet finds a session ready.
		p.startDial()
	}
	for {
		p.resetTimer(timer)
		select {
		case <-p.ctx.Done():
			p.shutdown()
			return
		case pkt := <-p.outbound:
			p.send(pkt)
		batch:
			for range sendBatch - 1 {
				select {
				case pkt := <-p.outbound:
					p.send(pkt)
				default:
					break batch
				}
			}
		case ev := <-p.events:
			p.onConnEvent(ev)
		case c := <-p.conns:
			p.adopt(c)
		case r := <-p.dialed:
			p.onDialed(r)
		case <-p.rekey:
			p.update()
		case c := <-p.reconf:
			p.reconfigure(c)
		case <-timer.C:
			p.onTimer()
		}
	}
}

func (p *peer) now() time.Time { return p.dev.clock() }

// send seals a packet, or holds it until a session is established (and
// makes sure one is on its way).
func (p *peer) send(pkt []byte) {
	if p.sess != nil && p.sess.Established() {
		if !p.conn.roomForData() {
			p.stats.dropQueueFull.Add(1)
			return
		}
		if err := p.sess.SendPacket(p.now(), pkt); err != nil {
			p.sessionFailed(err)
			return
		}
		p.stats.txPackets.Add(1)
		p.stats.txBytes.Add(uint64(len(pkt)))
		p.conn.send(p.sess.Outgoing())
		return
	}
	if len(p.pending) == pendingLen {
		p.stats.dropQueueFull.Add(1)
		p.pending = append(p.pending[:0], p.pending[1:]...)
	}
	p.pending = append(p.pending, pkt)
	if p.conn == nil && !p.dialing && p.cfg.Endpoint != "" {
		// A handshake starts on the first packet; a backoff in force
		// still applies so a dead endpoint is not hammered.
		if !p.timers.redialAt.After(p.now()) {
			p.startDial()
		}
	}
}

func (p *peer) startDial() {
	p.dialing = true
	p.timers.redialAt = time.Time{}
	p.stats.dials.Add(1)
	endpoint := p.cfg.Endpoint
	p.dev.goFunc(func() { p.dev.dial(p, endpoint) })
}

func (p *peer) onDialed(r dialResult) {
	p.dialing = false
	if r.err != nil {
		p.log.Debug("dial failed", "endpoint", p.cfg.Endpoint, "err", r.err)
		p.timers.scheduleRedial(p.now(), p.dev.cfg.RedialMin, p.dev.cfg.RedialMax)
		return
	}
	p.adopt(r.c)
}

// prefer decides whether a new connection replaces the current one; see
// the package documentation on simultaneous connects.
func (p *peer) prefer(c *streamConn) bool {
	if c.outbound == p.conn.outbound {
		return true
	}
	return c.outbound == session.PreferOutgoing(p.dev.ownPub, p.cfg.PublicKey)
}

// adopt makes c the peer's connection and starts its session.
func (p *peer) adopt(c *streamConn) {
	if p.conn != nil {
		if !p.prefer(c) {
			p.log.Debug("keeping existing connection", "new_outbound", c.outbound)
			c.abort()
			return
		}
		if !c.outbound && p.sess != nil && p.sess.Established() {
			p.startCandidate(c)
			return
		}
		p.stats.connsReplaced.Add(1)
		p.dropConn(errReplaced)
	}
	s, err := p.startSession(c)
	p.conn, p.sess = c, s
	p.timers.handshakeDeadline = p.now().Add(p.dev.cfg.HandshakeTimeout)
	if err != nil {
		p.sessionFailed(err)
		return
	}
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
	p.log.Debug("connection", "remote", c.nc.RemoteAddr().String(), "role", roleName(role))
	s, err := session.New(session.Config{
		Role:           role,
		Suite:          p.dev.cfg.Suite,
		SigningKey:     p.dev.cfg.PrivateKey,
		PeerPublicKey:  p.cfg.PublicKey,
		Transport:      session.Stream,
		UpdateInterval: p.dev.cfg.RekeyInterval,
		UpdateBytes:    p.dev.cfg.RekeyBytes,
	})
	if err != nil {
		return nil, err
	}
	now := p.now()
	if err := s.Start(now); err != nil {
		return s, err
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
	if ev.c == p.cand.c && ev.c != nil {
		p.onCandidateEvent(ev)
		return
	}
	if ev.c != p.conn {
		return // from a connection we already dropped
	}
	if ev.err != nil {
		p.log.Info("connection lost", "err", ev.err)
		p.dropConn(ev.err)
		return
	}
	if err := p.sess.HandleStream(p.now(), ev.data); err != nil {
		p.sessionFailed(err)
		return
	}
	p.process()
}

// process collects what the session produced after a call.
func (p *peer) process() {
	p.conn.send(p.sess.Outgoing())
	p.handle(p.sess.Packets(), p.sess.Events())
}

// handle delivers received packets and acts on session events.
func (p *peer) handle(pkts [][]byte, events []session.Event) {
	if len(pkts) > 0 {
		p.deliver(pkts)
	}
	for _, ev := range events {
		if p.sess == nil {
			return // dropped while handling an earlier event
		}
		switch ev := ev.(type) {
		case session.Established:
			p.stats.handshakes.Add(1)
			p.epoch.Store(ev.Epoch)
			p.established.Store(true)
			p.timers.handshakeDeadline = time.Time{}
			p.timers.backoff = 0
			p.log.Info("session established", "epoch", ev.Epoch, "remote", p.conn.nc.RemoteAddr().String())
			p.flushPending()
		case session.EpochChanged:
			p.stats.epochs.Add(1)
			p.epoch.Store(ev.Epoch)
			p.log.Info("epoch changed", "epoch", ev.Epoch)
		case session.Closed:
			p.log.Info("session closed", "reason", ev.Reason)
			p.dropConn(ev.Reason)
			return
		}
	}
}

// deliver writes received packets to the TUN, dropping those whose source
// is not in this peer's allowed IPs: that check is what makes the pinned
// key, and not the packet, decide which addresses a peer may use.
func (p *peer) deliver(pkts [][]byte) {
	bufs := make([][]byte, 0, len(pkts))
	for _, pkt := range pkts {
		src, _, ok := packetAddrs(pkt)
		if !ok || !p.dev.table.Allowed(p, src) {
			p.stats.dropSource.Add(1)
			continue
		}
		p.stats.rxPackets.Add(1)
		p.stats.rxBytes.Add(uint64(len(pkt)))
		b := make([]byte, tunOffset+len(pkt))
		copy(b[tunOffset:], pkt)
		bufs = append(bufs, b)
	}
	if len(bufs) == 0 {
		return
	}
	if err := p.dev.tunW.write(bufs); err != nil && !p.dev.closing.Load() {
		p.log.Debug("TUN write", "err", err)
	}
}

func (p *peer) flushPending() {
	q := p.pending
	p.pending = nil
	for _, pkt := range q {
		p.send(pkt)
		if p.sess == nil {
			return // the session failed while sending
		}
	}
}

// update starts an epoch update; a pending one already does the job.
func (p *peer) update() {
	if p.sess == nil || !p.sess.Established() {
		return
	}
	err := p.sess.Update(p.now())
	if errors.Is(err, session.ErrUpdatePending) {
		return
	}
	if err != nil {
		p.sessionFailed(err)
		return
	}
	p.log.Debug("epoch update started", "epoch", p.sess.Epoch())
	p.process()
}

// sessionFailed handles a fatal session error: the session is closed and
// may have queued a final Alert, which is flushed before the close.
func (p *peer) sessionFailed(err error) {
	p.stats.sessionErrors.Add(1)
	p.log.Warn("session failed", "err", err)
	p.dropConn(err)
}

// dropConn ends the current connection and session and arranges the next
// attempt.
func (p *peer) dropConn(reason error) {
	if p.conn == nil {
		return
	}
	if p.sess != nil {
		p.sess.Close(p.now())
		p.conn.send(p.sess.Outgoing())
		p.sess.Packets()
		p.sess.Events()
	}
	p.conn.close()
	p.conn, p.sess = nil, nil
	p.established.Store(false)
	p.timers.handshakeDeadline = time.Time{}
	if reason == errShutdown || reason == errReplaced {
		return
	}
	if p.cand.c != nil {
		// The peer reconnected before we noticed the old connection
		// die; its new one takes over.
		p.promote()
		return
	}
	if p.cfg.Endpoint != "" {
		p.timers.scheduleRedial(p.now(), p.dev.cfg.RedialMin, p.dev.cfg.RedialMax)
	}
}

func (p *peer) shutdown() {
	p.dropCandidate()
	p.dropConn(errShutdown)
	p.pending = nil
}
