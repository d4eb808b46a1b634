package tunnel

import (
	"errors"
	"time"

	"github.com/current-vpn/current/session"
)

// The send path of a peer's owner: packets from the TUN reader are sealed
// in place (whole batches over UDP, the AEAD on the crypto workers) or held
// until a session is established, and handed to the writers in batches.

// sendBatch seals or holds every packet of a batch from the TUN reader.
// Over UDP the whole batch is sealed at once, in place, the AEAD spread
// over the crypto workers.
func (p *peer) sendBatch(now time.Time, b *packetBatch) {
	if p.sess == nil || !p.sess.Established() || !p.conn.datagram() || !p.conn.roomForData() {
		for _, pb := range b.bufs {
			p.send(now, pb)
		}
		b.recycle()
		return
	}
	sc := getBatchScratch(len(b.bufs))
	for k, pb := range b.bufs {
		sc.ips[k], sc.dsts[k] = pb.pkt, pb.arr[sealAt:sealAt]
	}
	err := p.sess.SealPackets(now, sc.out, sc.dsts, sc.ips, p.dev.crypto.run)
	var n, bytes uint64
	for k, pb := range b.bufs {
		if sc.out[k] == nil {
			if err == nil {
				p.dev.stats.dropInvalid.Add(1) // larger than a record
			}
			pb.release()
			continue
		}
		tx := p.txBatch(now)
		tx.bufs, tx.pkts = append(tx.bufs, pb), append(tx.pkts, sc.out[k])
		n++
		bytes += uint64(len(pb.pkt))
		if len(tx.bufs) == maxBatch {
			// A batch is what one send takes (bind_linux.go).
			p.flushTx()
		}
	}
	sc.put()
	b.recycle()
	p.stats.txPackets.Add(n)
	p.stats.txBytes.Add(bytes)
	if err != nil {
		p.flushTx()
		p.sessionFailed(err)
	}
}

// send seals a packet, or holds it until a session is established (and
// makes sure one is on its way). It takes b. Over UDP the record is
// sealed in place and waits in p.tx for flushTx; over TCP it is queued in
// the session's Outgoing for flush.
func (p *peer) send(now time.Time, b *packetBuf) {
	if p.sess != nil && p.sess.Established() {
		if !p.conn.roomForData() {
			p.stats.dropQueueFull.Add(1)
			b.release()
			return
		}
		n := len(b.pkt)
		var err error
		if p.conn.datagram() {
			var rec []byte
			rec, err = p.sess.SealPacketTo(now, b.arr[sealAt:sealAt], b.pkt)
			if err == nil {
				tx := p.txBatch(now)
				tx.bufs, tx.pkts = append(tx.bufs, b), append(tx.pkts, rec)
				if len(tx.bufs) == maxBatch {
					p.flushTx()
				}
			} else {
				b.release()
			}
		} else {
			err = p.sealStream(now, b)
		}
		if errors.Is(err, session.ErrPacketSize) {
			// Larger than a record: a local MTU problem, not the peer's.
			p.dev.stats.dropInvalid.Add(1)
			return
		}
		if err != nil {
			p.flushTx()
			p.sessionFailed(err)
			return
		}
		p.stats.txPackets.Add(1)
		p.stats.txBytes.Add(uint64(n))
		return
	}
	p.hold(b)
	if p.conn == nil && !p.dialing && p.cfg.Endpoint != "" {
		// A handshake starts on the first packet; a backoff in force
		// still applies so a dead endpoint is not hammered, but while
		// traffic waits it is at most trafficRedialMax, so that a peer
		// coming back (a rebooted hub) is found within that.
		if !p.timers.redialAt.After(now) {
			p.startDial()
		} else if p.timers.redialAt.Sub(now) > trafficRedialMax {
			p.timers.redialAt = now.Add(trafficRedialMax)
		}
	}
}

// sealStream seals a packet into a stream record in place, in front of
// the packet in b, and adds it to p.txb for flushTx; it takes b. A record
// must reach the stream in the order the session sealed it, so control
// messages the session queued before go out before it, and one it queues
// while sealing (an update the bytes triggered) after it and before the
// next record.
func (p *peer) sealStream(now time.Time, b *packetBuf) error {
	p.flush()
	hr := session.PacketHeadroom(session.Stream)
	if len(b.pkt) == 0 || &b.pkt[0] != &b.arr[tunOffset] {
		// Not where the TUN reader puts packets: seal a copy.
		err := p.sess.SendPacket(now, b.pkt)
		b.release()
		return err
	}
	rec, err := p.sess.SealPacketTo(now, b.arr[tunOffset-hr:tunOffset-hr], b.pkt)
	if err != nil {
		b.release()
		return err
	}
	tx := p.txBatch(now)
	tx.bufs, tx.pkts = append(tx.bufs, b), append(tx.pkts, rec)
	if len(tx.bufs) == maxBatch {
		p.flushTx()
	}
	p.flush()
	return nil
}

// txBatch is the batch records are sealed into, begun at now if there is
// none yet.
func (p *peer) txBatch(now time.Time) *ioBatch {
	if p.txb == nil {
		p.txb = ioBatchPool.Get().(*ioBatch)
		p.txb.at = now
	}
	return p.txb
}

// flushTx hands the records sealed since the last call to the peer's UDP
// writer, or to its TCP connection, as one batch. The time they count as
// sent is when the batch was begun: the clock is a system call (a
// suspend-counting one, clock.go), and the owner read it for the batch
// already.
func (p *peer) flushTx() {
	b := p.txb
	if b == nil {
		return
	}
	p.txb = nil
	if sc, ok := p.conn.(*streamConn); ok {
		p.lastSent = b.at
		sc.sendOwned(b)
		return
	}
	dc, ok := p.conn.(*dgramCarrier)
	if !ok || dc.ep == nil {
		b.release()
		return
	}
	dc.unstick()
	b.c, b.ep = dc, dc.ep
	p.lastSent = b.at
	p.sentData(p.lastSent)
	p.dev.writeOrQueue(p.dev.udpWriter(p), b, p.dev.writeUDP)
}

func (p *peer) flushPending() {
	q := p.takePending()
	now := p.now()
	for i, b := range q {
		p.send(now, b)
		if p.sess == nil {
			for _, b := range q[i+1:] {
				b.release()
			}
			break // the session failed while sending
		}
	}
	p.flushTx()
	p.flush()
}
