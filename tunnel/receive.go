package tunnel

import (
	"errors"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/record"
)

// The receive path of a peer's owner: datagrams from the UDP readers are
// opened in place (runs of records as one batch), control datagrams and
// ClientHellos go to the session or a candidate, and opened packets whose
// source the peer may use are handed to the TUN writer in batches.

// onDatagrams handles a batch of datagrams from a UDP reader, in order:
// each run of protected records for the established session is opened at
// once, the AEAD spread over the crypto workers; anything else (control
// datagrams, ClientHellos, a candidate's records) one by one.
func (p *peer) onDatagrams(now time.Time, b *packetBatch) {
	run := 0 // b.bufs[start:start+run] are records for the session
	start := 0
	for k, pb := range b.bufs {
		if p.forSession(pb) {
			if run == 0 {
				start = k
			}
			run++
			continue
		}
		if run > 0 {
			p.openRecords(now, b.bufs[start:start+run])
			run = 0
		}
		p.onDatagram(now, pb)
	}
	if run > 0 {
		p.openRecords(now, b.bufs[start:start+run])
	}
	b.recycle()
}

// forSession reports whether b is a protected record for the established
// datagram session.
func (p *peer) forSession(b *packetBuf) bool {
	dc, ok := p.conn.(*dgramCarrier)
	if !ok || p.sess == nil || !p.sess.Established() {
		return false
	}
	idx, ok := record.DatagramReceiverIndex(b.pkt)
	return ok && idx == dc.index
}

// openRecords opens a run of records for the session in place and takes
// the buffers; the packets wait in p.rx for flushRx.
func (p *peer) openRecords(now time.Time, bufs []*packetBuf) {
	dc := p.conn.(*dgramCarrier)
	sc := getBatchScratch(len(bufs))
	for k, pb := range bufs {
		sc.ips[k] = pb.pkt
	}
	res := sc.res[:len(bufs)]
	err := p.sess.ReceiveDatagrams(now, sc.ips, res, p.dev.crypto.run)
	for k, pb := range bufs {
		rc := res[k]
		if rc.Err != nil {
			if errors.Is(rc.Err, session.ErrDropped) {
				p.countDrop(rc.Err)
			}
			pb.release()
			continue
		}
		p.heard(now, rc.Data && len(rc.Packet) > 0)
		// Roaming: every record that authenticated moves the endpoint.
		if dc.ep == nil || endpointAddr(dc.ep) != endpointAddr(pb.ep) {
			if dc.ep != nil {
				p.stats.roams.Add(1)
				p.log.Info("endpoint changed", "from", dc.ep.DstToString(), "to", pb.ep.DstToString())
			}
			dc.ep = pb.ep
		}
		if !rc.Data || !p.deliverInPlace(pb, rc.Packet) {
			pb.release()
		}
	}
	sc.put()
	if err != nil {
		p.sessionFailed(err)
		return
	}
	p.transmit(dc, p.sess.Outgoing())
	p.afterCall()
	p.handle(p.sess.Packets(), p.sess.Events())
}

// onDatagram handles one datagram routed to this peer, and takes b. An
// IP packet is opened in place and waits in p.rx for flushRx.
func (p *peer) onDatagram(now time.Time, b *packetBuf) {
	keep := false
	defer func() {
		if !keep {
			b.release()
		}
	}()
	info, ok := session.ParseDatagram(b.pkt)
	if !ok {
		return
	}
	if info.Receiver == 0 {
		p.onClientHello(b)
		return
	}
	if dc, ok := p.cand.c.(*dgramCarrier); ok && dc.index == info.Receiver {
		p.onCandidateDatagram(b)
		return
	}
	dc, ok := p.conn.(*dgramCarrier)
	if !ok || dc.index != info.Receiver {
		return // a session we already dropped
	}
	pkt, data, err := p.sess.ReceiveDatagram(now, b.pkt)
	if err != nil {
		if !errors.Is(err, session.ErrDropped) {
			p.sessionFailed(err)
		}
		p.countDrop(err)
		return
	}
	events := p.sess.Events()
	// Roaming: an authenticated datagram moves the endpoint. Records
	// authenticate; plaintext control datagrams only count when they
	// moved the session (signed resumption or handshake messages).
	authentic := info.Type == recordType || len(events) > 0
	if info.Type == recordType {
		p.heard(now, data && len(pkt) > 0)
	}
	if data {
		keep = p.deliverInPlace(b, pkt)
	}
	p.afterControl(now, dc, b.ep, events, authentic)
}

// afterControl finishes a datagram the session took from ep: one that
// authenticated moves the endpoint, and what the session answered goes
// out.
func (p *peer) afterControl(now time.Time, dc *dgramCarrier, ep conn.Endpoint, events []session.Event, authentic bool) {
	if authentic && (dc.ep == nil || endpointAddr(dc.ep) != endpointAddr(ep)) {
		if dc.ep != nil {
			p.stats.roams.Add(1)
			p.log.Info("endpoint changed", "from", dc.ep.DstToString(), "to", ep.DstToString())
		}
		dc.ep = ep
	}
	if out := p.sess.Outgoing(); dc.ep == nil && len(out) > 0 {
		// A restored responder that does not know where the peer is
		// yet, rejecting a request it cannot resume (the only answer
		// an unauthenticated datagram gets): the reject goes back
		// where the request came from, which does not become the
		// endpoint. It is smaller than the request, sent once per
		// request.
		dc.sendTo(ep, out)
		p.lastSent = now
	} else {
		p.transmit(dc, out)
	}
	p.afterCall()
	p.handle(p.sess.Packets(), events)
}

// onClientHello handles a (reassembled) sealed hello from the peer:
// in.frags are all its fragments, in.opened what the listener found in it
// (nil for a retransmission of one it opened before, which only the
// session or candidate that answered it can answer, from its cache).
func (p *peer) onClientHello(in *packetBuf) {
	h := datagramHelloHash(in.frags)
	oh := in.opened
	in.opened = nil
	dc, ours := p.conn.(*dgramCarrier)
	if oh == nil {
		p.onHelloRetransmit(in, h, ours)
		return
	}
	if p.gateHello(h) != helloNew {
		return
	}
	if oh.Resumption {
		p.onSealedResumption(dc, in, oh, h)
		return
	}
	if ours && !p.sess.Established() {
		// Our own session: a simultaneous open, or a restored
		// responder whose peer gave up resuming.
		err := p.sess.HandleOpenedHello(p.now(), oh, helloSender(in))
		if err == nil {
			dc.ep = in.ep
			p.sessHello = h
			p.process()
			return
		}
		if !errors.Is(err, session.ErrDropped) {
			p.sessionFailed(err)
		}
		return // we stay initiator (simultaneous open)
	}
	if p.sess != nil && p.sess.Established() {
		// A new hello while established: the peer restarted, or
		// someone replays an old hello. Run it as a candidate.
		p.startDatagramCandidate(in, oh, h)
		return
	}
	if p.conn != nil {
		// Our TCP connection is on its way: TCP wins over UDP (the
		// peer falls back too, or accepts it).
		return
	}
	c := &dgramCarrier{p: p, ep: in.ep, index: p.dev.allocIndex(p, 0)}
	s, err := p.newDatagramSession(c, session.Responder, nil)
	p.use(c, s)
	p.sessHello = h
	p.timers.handshakeDeadline = p.now().Add(p.dev.cfg.HandshakeTimeout)
	if err != nil {
		p.sessionFailed(err)
		return
	}
	if err := s.HandleOpenedHello(p.now(), oh, helloSender(in)); err != nil && !errors.Is(err, session.ErrDropped) {
		p.sessionFailed(err)
		return
	}
	p.process()
}

// onHelloRetransmit gives a copy of a sealed hello the listener opened
// before to the session or candidate that answered it, which answers from
// its cache; any other copy is a replay.
func (p *peer) onHelloRetransmit(in *packetBuf, h [32]byte, ours bool) {
	switch {
	case p.cand.s != nil && h == p.cand.hello:
		p.feedCandidate(in)
	case ours && h == p.sessHello:
		if err := feedAll(p.now(), p.sess, in.frags); err != nil && !errors.Is(err, session.ErrDropped) {
			p.sessionFailed(err)
			return
		}
		p.process()
	default:
		p.dev.guard.refuse(p.now(), refHelloReplay, endpointAddr(in.ep).String())
	}
}

// onSealedResumption hands a sealed ResumptionRequest to our datagram
// session (a restored responder, or an established session whose peer
// restarted), which checks that it is for our group and epoch; saved
// state not in use yet starts one. Without any there is nothing to
// resume: the peer falls back to a handshake.
func (p *peer) onSealedResumption(dc *dgramCarrier, in *packetBuf, oh *session.OpenedHello, h [32]byte) {
	if p.conn == nil && p.saved != nil {
		// We are still resolving the peer's endpoint to resume
		// ourselves: the peer was faster, and we resume as responder
		// (onDialed then keeps this session). Its copies would not
		// be opened again.
		p.startDatagram(nil, false)
		dc, _ = p.conn.(*dgramCarrier)
	}
	if dc == nil || p.sess == nil {
		return
	}
	// A copy of a request we answered is served from the session's cache,
	// no slot needed; the slot is for the work of a new one.
	if !p.dev.guard.slots.acquire(p.ctx) {
		oh.Wipe()
		return
	}
	defer p.dev.guard.slots.release()
	now := p.now()
	err := p.sess.HandleOpenedHello(now, oh, helloSender(in))
	if err != nil {
		if !errors.Is(err, session.ErrDropped) {
			p.sessionFailed(err)
		}
		p.countDrop(err)
		return
	}
	// Its retransmissions get the answer from the session's cache.
	p.sessHello = h
	// As for a plaintext control datagram: it authenticated if it
	// moved the session.
	events := p.sess.Events()
	p.afterControl(now, dc, in.ep, events, len(events) > 0)
}

// helloSender is the sender index of a reassembled hello's fragments.
func helloSender(in *packetBuf) uint32 {
	info, _ := session.ParseDatagram(in.pkt)
	return info.Sender
}

// feedAll gives a session every fragment of a message; the result is
// that of the last, or the first fatal error.
func feedAll(now time.Time, s *session.Session, frags [][]byte) error {
	var err error
	for _, f := range frags {
		err = s.HandleDatagram(now, f)
		if err != nil && !errors.Is(err, session.ErrDropped) {
			return err
		}
	}
	return err
}

// afterCall keeps the index table, and what hiding keeps across
// sessions, in step with the session.
func (p *peer) afterCall() {
	p.noteHiding(p.sess)
	if dc, ok := p.conn.(*dgramCarrier); ok && p.sess != nil && p.sess.LocalIndex() != 0 {
		dc.reindex(p.sess.LocalIndex())
	}
}

// deliverInPlace queues a packet opened in place in b (pkt aliases it)
// for the TUN and reports whether it kept b. Packets whose source is not
// in this peer's allowed IPs are dropped: that check is what makes the
// pinned key, and not the packet, decide which addresses a peer may use.
//
// A peer whose allowed IPs cover one of our own addresses (a full tunnel,
// the hub's subnet) may still not use it as a source: Linux drops such an
// IPv4 packet as a martian, but takes an IPv6 one, which would let the peer
// speak to our local services as ourselves.
func (p *peer) deliverInPlace(b *packetBuf, pkt []byte) bool {
	if len(pkt) == 0 {
		p.stats.keepalivesRx.Add(1)
		return false
	}
	src, _, ok := packetAddrs(pkt)
	if !ok || !p.dev.table.Allowed(p, src) || p.dev.isOwnAddress(src) {
		p.stats.dropSource.Add(1)
		return false
	}
	p.stats.rxPackets.Add(1)
	p.stats.rxBytes.Add(uint64(len(pkt)))
	if p.rxb == nil {
		p.rxb = ioBatchPool.Get().(*ioBatch)
	}
	p.rxb.bufs = append(p.rxb.bufs, b)
	p.rxb.pkts = append(p.rxb.pkts, b.arr[:tunOffset+len(pkt)])
	if len(p.rxb.bufs) == maxBatch {
		p.flushRx()
	}
	return true
}

// deliver writes packets a session returned by copy (stream mode, a
// promoted candidate) to the TUN, after anything opened in place before
// them.
func (p *peer) deliver(pkts [][]byte) {
	for _, pkt := range pkts {
		p.deliverCopy(pkt)
	}
	p.flushRx()
}

// deliverCopy queues a copy of pkt for the TUN (flushRx sends it). It is
// the packet sink of stream sessions (use).
func (p *peer) deliverCopy(pkt []byte) {
	if len(pkt) > maxSegment {
		p.dev.stats.dropInvalid.Add(1)
		return
	}
	b := p.dev.buf.pool.get()
	if b == nil {
		p.dev.buf.pool.noBuffer.Add(1)
		return
	}
	n := copy(b.arr[tunOffset:], pkt)
	if !p.deliverInPlace(b, b.arr[tunOffset:tunOffset+n]) {
		b.release()
	}
}

// flushRx hands the packets opened since the last call to the TUN
// writer, as one batch.
func (p *peer) flushRx() {
	if b := p.rxb; b != nil {
		p.rxb = nil
		p.dev.queue(p.dev.writers.tun, b)
	}
}

// isOwnAddress reports whether a is one of the interface's addresses
// (fixed for the Device's life: changing them needs a restart).
func (d *Device) isOwnAddress(a netip.Addr) bool {
	for _, pfx := range d.cfg.Addresses {
		if pfx.Addr() == a {
			return true
		}
	}
	return false
}
