package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/record"
)

const recordType = record.DatagramTypeRecord

const (
	// queueBatches bounds the batches waiting for the owner in each
	// direction (a batch is what one read returned for this peer, at most
	// maxBatch packets); the readers drop when it is full rather than
	// stall every other peer, as a congested link would. Without offloads
	// (UDP flows, small packets) a batch is often a single packet, and on
	// a loaded machine an owner can wait milliseconds for a core: the
	// depth is wireguard-go's.
	queueBatches = 1024
	// pendingLen bounds packets held while no session is established
	// (pending.go).
	pendingLen = 128
)

// peer is one configured peer. Fields below "owner state" belong to
// whoever holds mu: the run goroutine, or a receive worker serving the
// peer's datagrams (rxworkers.go).
type peer struct {
	dev *Device
	// cfg's Name and PublicKey never change; Endpoint and AllowedIPs
	// belong to the owner, which Reconfigure updates through reconf.
	cfg PeerConfig
	log *slog.Logger
	// ctx ends when the device closes or Reconfigure removes the peer.
	ctx  context.Context
	stop context.CancelFunc

	outbound batchQueue       // from the TUN reader
	conns    chan *streamConn // identified inbound connections
	dialed   chan dialResult  // outcomes of our dials
	events   chan connEvent   // from connection readers
	rekey    chan struct{}    // Device.Rekey, coalesced
	policy   chan struct{}    // Device.SetRekeyPolicy, coalesced
	underlay chan struct{}    // Device.UnderlayChanged, coalesced
	reconf   chan PeerConfig  // from Reconfigure
	dgrams   batchQueue       // from the UDP readers
	done     chan struct{}    // closed when run returns

	// writer picks the peer's UDP writer (writers.go).
	writer uint32

	stats       peerStats
	epoch       atomic.Uint64
	established atomic.Bool
	// ctl is the status the owner publishes for the control socket.
	ctl peerControl

	// mu is the owner lock. run holds it while it handles an event, a
	// receive worker while it serves the peer.
	mu sync.Mutex

	// owner state
	conn    carrier
	sess    *session.Session
	pending []*packetBuf
	// Sealed datagrams not yet sent and opened packets not yet written
	// to the TUN, with their buffers: handed to the writers once per
	// wake-up, so that the socket and the TUN see whole batches (GSO,
	// GRO). nil when empty.
	txb, rxb *ioBatch
	dialing  bool
	timers   peerTimers
	cand     candidate
	// useTCP: initiate over TCP (transport tcp, or auto after UDP got no
	// answer, until a probe brings the peer back: probe.go).
	useTCP bool
	probe  udpProbe
	// saved is the state to resume from: persisted, or kept from a lost
	// TCP connection (streamresume.go).
	saved *savedState
	// saves limits the log lines of failing state saves (savelog.go);
	// the state saver's writers use it, not the owner (saver.go).
	saves saveLog
	// lastSent is when we last sent the peer anything (keepalives).
	lastSent time.Time
	// live detects a peer that forgot our UDP session (liveness.go).
	live liveness
	// attempt is the session being established, for the handshake
	// metrics (handshakes.go).
	attempt handshakeAttempt
	// lastEp is the last endpoint an authenticated datagram came from.
	lastEp string
	// sessHello is the ClientHello the current session answered (zero if
	// it did not start from one); hellos and helloBucket gate new ones
	// (hellogate.go).
	sessHello   [32]byte
	hellos      helloLog
	helloBucket tokenBucket
	// Identity hiding across sessions (hiding.go): the peer's hello
	// key, its latest hello accepted, its session's group ID.
	peerHelloKey []byte
	helloFloor   time.Time
	groupID      string
	// What a receive worker left to run (rxworkers.go): handoff says the
	// queue's head is the owner's to handle, after the session's fatal
	// error or events the worker met; rxw is the worker serving the peer
	// now, rxHeld the worker whose TUN batch number rxHeldAt carries
	// packets of ours not yet queued to the TUN writer.
	handoff        bool
	deferredErr    error
	deferredEvents []session.Event
	rxw, rxHeld    *rxWorker
	rxHeldAt       uint64
	// armed is the deadline the run goroutine's timer is set for (zero:
	// stopped), which a worker compares to see whether it must wake run.
	armed time.Time
}

func newPeer(d *Device, cfg PeerConfig) *peer {
	ctx, stop := context.WithCancel(d.ctx)
	return &peer{
		writer:   d.nextWriter.Add(1),
		ctx:      ctx,
		stop:     stop,
		dev:      d,
		cfg:      cfg,
		log:      d.log.With("peer", cfg.Name),
		outbound: newBatchQueue(),
		conns:    make(chan *streamConn),
		dialed:   make(chan dialResult),
		events:   make(chan connEvent),
		rekey:    make(chan struct{}, 1),
		policy:   make(chan struct{}, 1),
		underlay: make(chan struct{}, 1),
		reconf:   make(chan PeerConfig),
		dgrams:   newBatchQueue(),
		done:     make(chan struct{}),
		useTCP:   cfg.Transport == TransportTCP,
	}
}

// enqueue is called by the TUN reader.
func (p *peer) enqueue(b *packetBatch) {
	if n := p.outbound.push(b, p.dev.buf.queueLimit()); n > 0 {
		p.stats.dropQueueFull.Add(uint64(n))
	}
}

func (p *peer) requestRekey() {
	select {
	case p.rekey <- struct{}{}:
	default:
	}
}

// The events run waits for.
const (
	evStop = iota
	evOutbound
	evDatagrams
	evConn
	evAdopt
	evDialed
	evRekey
	evPolicy
	evUnderlay
	evReconf
	evTimer
)

// run is the owner goroutine. It holds the owner lock while it handles
// an event, and lets receive workers serve the peer while it waits.
func (p *peer) run() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var taken []*packetBatch // what the queues handed over, reused
	p.mu.Lock()
	p.armed = p.now().Add(time.Hour)
	p.restoreTransport()
	if p.saved != nil && p.cfg.Endpoint == "" && !p.saved.stream() {
		// We cannot reach the peer: wait for its ResumptionRequest (or
		// its ClientHello, if it lost its state) with the saved group.
		p.startDatagram(nil, false)
	} else if p.cfg.Endpoint != "" {
		// Connect at start so the first packet finds a session ready.
		p.startDial()
	}
	for {
		p.publishStatus()
		p.resetTimer(timer)
		p.mu.Unlock()
		var (
			ev     int
			cev    connEvent
			c      *streamConn
			r      dialResult
			reconf PeerConfig
		)
		select {
		case <-p.ctx.Done():
			ev = evStop
		case <-p.outbound.ready:
			ev = evOutbound
		case <-p.dgrams.ready:
			ev = evDatagrams
		case cev = <-p.events:
			ev = evConn
		case c = <-p.conns:
			ev = evAdopt
		case r = <-p.dialed:
			ev = evDialed
		case <-p.rekey:
			ev = evRekey
		case <-p.policy:
			ev = evPolicy
		case <-p.underlay:
			ev = evUnderlay
		case reconf = <-p.reconf:
			ev = evReconf
		case <-timer.C:
			ev = evTimer
		}
		p.mu.Lock()
		if p.handoff {
			// Before anything else: the worker's events happened first.
			p.takeOver()
		}
		switch ev {
		case evStop:
			p.shutdown()
			p.mu.Unlock()
			return
		case evOutbound:
			taken = p.drain(&p.outbound, taken, p.sendBatch)
			p.flushTx()
			p.flush()
		case evDatagrams:
			taken = p.drain(&p.dgrams, taken, p.onDatagrams)
			p.flushRx()
		case evConn:
			p.onConnEvent(cev)
		case evAdopt:
			p.adopt(c)
		case evDialed:
			p.onDialed(r)
		case evRekey:
			p.update()
		case evPolicy:
			p.applyPolicy()
		case evUnderlay:
			p.onUnderlayChange()
		case evReconf:
			p.reconfigure(reconf)
		case evTimer:
			p.armed = time.Time{}
			p.onTimer()
		}
	}
}

// takeOver handles what a receive worker left to the owner; the
// datagrams it left are at the head of the queue.
func (p *peer) takeOver() {
	p.handoff = false
	if err := p.deferredErr; err != nil {
		p.deferredErr = nil
		p.sessionFailed(err)
	}
	if evs := p.deferredEvents; len(evs) > 0 {
		p.handle(nil, evs)
		clear(evs)
		p.deferredEvents = evs[:0]
	}
}

func (p *peer) now() time.Time { return p.dev.clock() }

// drain hands everything queued in q to handle, in order, and returns
// taken (the owner's reusable slice) for the next drain.
func (p *peer) drain(q *batchQueue, taken []*packetBatch, handle func(time.Time, *packetBatch)) []*packetBatch {
	now := p.now()
	taken = q.take(taken[:0])
	for i, b := range taken {
		handle(now, b)
		taken[i] = nil
	}
	return shrink(taken)
}

// transmit sends what a session produced through c, after the records
// sealed before (on a stream, the order is the records' sequence).
func (p *peer) transmit(c carrier, bufs [][]byte) {
	if len(bufs) == 0 || c == nil {
		return
	}
	p.flushTx()
	c.send(bufs)
	p.lastSent = p.now()
}

// flush sends what the session queued.
func (p *peer) flush() {
	if p.sess != nil {
		p.transmit(p.conn, p.sess.Outgoing())
	}
}

// process collects what the session produced after a call.
func (p *peer) process() {
	p.afterCall()
	p.transmit(p.conn, p.sess.Outgoing())
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
			p.ctl.noteHandshake(p.now())
			p.handshakeEstablished(p.now())
			p.stats.handshakes.Add(1)
			p.epoch.Store(ev.Epoch)
			p.established.Store(true)
			p.timers.handshakeDeadline = time.Time{}
			p.timers.backoff = 0
			kind := "new session"
			if p.sess.Resumed() {
				kind = "resumed session"
				p.stats.resumed.Add(1)
			}
			p.log.Info("session established", "kind", kind, "epoch", ev.Epoch, "transport", transportName(p.conn), "remote", p.conn.remote())
			p.establishedTransport()
			p.saveState()
			// An authenticated record at once, over TCP too: it proves
			// us to a responder that holds our session as a candidate
			// (docs/protocol.md 7.5.2), and over UDP shows it where we
			// are.
			if err := p.sess.SendKeepalive(p.now()); err == nil {
				p.flush()
			}
			p.flushPending()
		case session.EpochChanged:
			p.ctl.noteEpochChange(p.now())
			p.stats.epochs.Add(1)
			p.epoch.Store(ev.Epoch)
			if log, held := p.timers.epochs.changed(p.now()); !log {
				p.log.Debug("epoch changed", "epoch", ev.Epoch)
			} else if held > 0 {
				p.log.Info("epoch changed", "epoch", ev.Epoch, "unlogged_changes", held)
			} else {
				p.log.Info("epoch changed", "epoch", ev.Epoch)
			}
			p.saveState()
		case session.Closed:
			p.log.Info("session closed", "reason", ev.Reason)
			if errors.Is(ev.Reason, session.ErrPeerClosed) {
				p.removeState()
			}
			p.dropConn(ev.Reason)
			return
		}
	}
}

// use makes c and s the peer's connection and session. A stream session
// hands each packet it opens straight to deliverCopy, while its record is
// in the session's buffer, instead of keeping a copy for Packets.
func (p *peer) use(c carrier, s *session.Session) {
	p.conn, p.sess = c, s
	p.beginHandshake(s, p.now())
	if s != nil && !c.datagram() {
		s.SetPacketSink(p.deliverCopy)
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
	if !p.dev.guard.refusedKeyPackage(p.now(), p.conn, err) {
		p.stats.sessionErrors.Add(1)
		p.log.Warn("session failed", "err", err)
	}
	p.dropConn(err)
}

// dropConn ends the current connection and session and arranges the next
// attempt.
func (p *peer) dropConn(reason error) {
	if p.conn == nil {
		return
	}
	p.streamDropped(reason)
	p.handshakeAbandoned(reason)
	// Records sealed for this connection go to it, never to the next.
	p.flushTx()
	if p.sess != nil {
		if reason == errShutdown && p.dev.cfg.StateDir != "" && p.sess.Established() {
			// Saved for resumption: the peer keeps its session, so we
			// do not tell it we are going.
			p.saveState()
		} else {
			p.sess.Close(p.now())
			p.transmit(p.conn, p.sess.Outgoing())
		}
		p.sess.Packets()
		p.sess.Events()
	}
	p.conn.close()
	p.conn, p.sess = nil, nil
	p.live = liveness{}
	p.sessHello = [32]byte{}
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
	// What the readers queued is dropped, and what they would queue
	// refused: nobody would take it any more.
	p.outbound.close()
	p.dgrams.close()
	p.handoff, p.deferredErr, p.deferredEvents = false, nil, nil
	p.flushTx()
	p.flushRx()
	p.dropCandidate()
	p.dropConn(errShutdown)
	p.forgetSaved()
	releaseAll(p.takePending())
}

// batchScratch holds the slices the session's batch calls take. It is
// pooled, not kept per peer: an idle peer should not hold it.
type batchScratch struct {
	out, dsts, ips [][]byte
	res            []session.Received
}

var batchScratchPool = sync.Pool{New: func() any { return new(batchScratch) }}

func getBatchScratch(n int) *batchScratch {
	sc := batchScratchPool.Get().(*batchScratch)
	if cap(sc.out) < n {
		m := max(n, maxBatch)
		sc.out, sc.dsts, sc.ips = make([][]byte, m), make([][]byte, m), make([][]byte, m)
		sc.res = make([]session.Received, m)
	}
	sc.out, sc.dsts, sc.ips, sc.res = sc.out[:n], sc.dsts[:n], sc.ips[:n], sc.res[:n]
	return sc
}

// put drops the references to buffers, which belong to others now, and
// returns sc to the pool.
func (sc *batchScratch) put() {
	clear(sc.out)
	clear(sc.dsts)
	clear(sc.ips)
	clear(sc.res)
	batchScratchPool.Put(sc)
}

// onUnderlayChange follows a change of our own addresses: the source
// address the endpoint stuck to may be gone, and the peer only learns our
// new one from a datagram of ours, so it gets a keepalive now rather than
// whenever we next have something to send.
func (p *peer) onUnderlayChange() {
	p.probeOnUnderlayChange()
	dc, ok := p.conn.(*dgramCarrier)
	if !ok || dc.ep == nil {
		return
	}
	dc.ep = &conn.StdNetEndpoint{AddrPort: endpointAddr(dc.ep)}
	if p.sess != nil && p.sess.Established() {
		if err := p.sess.SendKeepalive(p.now()); err == nil {
			p.stats.keepalivesTx.Add(1)
			p.flush()
		}
	}
}
