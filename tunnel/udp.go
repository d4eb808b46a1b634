package tunnel

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/current-vpn/current/session"
)

// The UDP transport. The device's bind (bind.go; on Linux our own over
// recvmmsg/sendmmsg with UDP GSO/GRO, bind_linux.go) owns the sockets, one
// IPv4 and one IPv6 socket on the listen port, and moves datagrams in
// batches. One reader goroutine per socket routes every datagram without
// cryptography:
//
//   - a protected record, or a control datagram with a receiver index, goes
//     to the peer that registered that index for its session (or its
//     candidate session); unknown indexes are dropped;
//   - an unaddressed handshake message (receiver index 0: a hello key
//     request or a sealed hello) is first put to the CookieJar, which may
//     answer with a stateless CookieChallenge or drop it (rate limit per
//     source); admitted fragments are reassembled here, and the listener
//     answers the key request, routes a copy of a hello opened before, or
//     queues a new sealed hello for a hello worker, which opens it once
//     to learn which peer it is for (sealed.go, helloworkers.go); every
//     fragment and the opened hello are then handed to that peer, whose
//     session checks everything else.
//
// The writers send: Bind.Send is one sendmmsg for a whole batch.

// underLoadHellos is how many hello datagrams per second the listener
// takes, beyond those of the hellos its budgets admit, before it demands
// cookies (guard.underLoad).
const underLoadHellos = 64

type udpState struct {
	bind udpBind
	fns  []udpReader // one per socket
	port uint16
	jar  *session.CookieJar

	idxMu sync.RWMutex
	byIdx map[uint32]*peer

	// rx are the receive workers the readers hand peers to (rxworkers.go).
	rx rxWorkers

	// hello rate, for CookieJarConfig.UnderLoad
	rateSec   atomic.Int64
	rateCount atomic.Int64
}

// openUDP opens the sockets on port (0: any).
func (d *Device) openUDP(port uint16) error {
	u := &d.udp
	u.byIdx = map[uint32]*peer{}
	// The jar only checks cookies: the guard limits whole handshakes,
	// per host (guard.go).
	jar, err := session.NewCookieJar(session.CookieJarConfig{
		UnderLoad: d.udpUnderLoad,
		Rate:      -1,
	})
	if err != nil {
		return err
	}
	u.jar = jar
	bind, fns, actual, err := openUDPBind(port)
	if err != nil {
		return err
	}
	u.bind = bind
	if d.cfg.Fwmark != 0 {
		if err := u.bind.SetMark(d.cfg.Fwmark); err != nil {
			u.bind.Close()
			return fmt.Errorf("UDP sockets: %w", markError(d.cfg.Fwmark, err))
		}
	}
	u.fns, u.port = fns, actual
	return nil
}

// udpUnderLoad: cookies are demanded of everyone when the guard says so
// (guard.underLoad: hello datagrams beyond what the budgets take, or a
// budget running low).
func (d *Device) udpUnderLoad() bool {
	return d.guard.underLoad(d.clock(), d.udp.rateCount.Load())
}

func (d *Device) countHello(now time.Time) {
	sec := now.Unix()
	if d.udp.rateSec.Swap(sec) != sec {
		d.udp.rateCount.Store(0)
	}
	d.udp.rateCount.Add(1)
}

// UDPPort is the port of the UDP sockets, 0 if none are open.
func (d *Device) UDPPort() int { return int(d.udp.port) }

// readUDP is one socket's reader goroutine. Messages are read into receive
// slots of the reader's own and their datagrams (several in a message the
// kernel coalesced) routed there; each one routed to a peer is copied into
// a pool buffer (or dropped when the pool has none left, bufcap.go), and
// they go to their peers in one batch per peer and read, which the
// receive workers serve (rxworkers.go).
func (d *Device) readUDP(rd udpReader) {
	d.startRxWorkers()
	jobs := make([]*rxJob, len(d.udp.rx.workers))
	n := max(rd.batch(), 1)
	slots := newReceiveSlots(n, &d.slotEpoch)
	defer slots.unmap()
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = slots.bufs[i][recvAt:]
	}
	msgs := make([]udpMsg, n)
	// One read holds at most a batch of datagrams (bind.go).
	land := make([]packetBuf, maxBatch)
	var r routedReads
	r.init(maxBatch)
	var bt batcher
	for {
		k, err := rd.read(bufs, msgs)
		nd := 0
		for i := range k {
			m := &msgs[i]
			m.datagrams(bufs[i], func(dgram []byte) {
				if nd == len(land) {
					d.stats.dropInvalid.Add(1)
					return
				}
				lb := &land[nd]
				lb.pkt, lb.ep = dgram, m.ep
				if p := d.routeDatagram(lb); p != nil {
					r.add(p, nd)
				} else {
					lb.pkt, lb.ep, lb.frags, lb.opened = nil, nil, nil, nil
				}
				nd++
			})
			m.ep = nil
		}
		got := r.take(d.buf.pool)
		for j, b := range r.bufs[:got] {
			lb := &land[r.slots[j]]
			// A reassembled ClientHello's pkt is a copy outside the
			// slot; it is copied all the same, so that every datagram
			// is at recvAt and opens in place at tunOffset.
			b.pkt = b.arr[recvAt : recvAt+copy(b.arr[recvAt:], lb.pkt)]
			b.ep, b.frags, b.opened = lb.ep, lb.frags, lb.opened
			bt.add(r.peers[j], b)
		}
		for _, i := range r.slots[:r.n] {
			land[i].pkt, land[i].ep, land[i].frags, land[i].opened = nil, nil, nil, nil
		}
		r.reset()
		d.dispatchDatagrams(&bt, jobs)
		slots.giveBack()
		if err != nil {
			if d.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Debug("UDP read", "err", err)
			if k == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// routeDatagram finds the peer of one received datagram (in b.pkt), or
// returns nil when it is dropped or answered here. A ClientHello's
// fragments are reassembled first; b then carries copies of all of them.
func (d *Device) routeDatagram(b *packetBuf) *peer {
	info, ok := session.ParseDatagram(b.pkt)
	if !ok {
		d.guard.refuse(d.clock(), refBadDatagram, "")
		return nil
	}
	if info.Receiver != 0 {
		d.udp.idxMu.RLock()
		p := d.udp.byIdx[info.Receiver]
		d.udp.idxMu.RUnlock()
		if p == nil {
			d.guard.refuse(d.clock(), refUnknownIndex, "")
		}
		return p
	}
	if info.Type != session.DatagramHandshake {
		d.guard.refuse(d.clock(), refBadDatagram, "")
		return nil
	}
	ep := b.ep
	now := d.clock()
	d.countHello(now)
	src := endpointAddr(ep)
	addr, _ := src.MarshalBinary()
	verdict, reply := d.udp.jar.Admit(now, addr, b.pkt)
	switch verdict {
	case session.AdmitDrop:
		d.guard.refuse(now, refBadHello, src.String())
		return nil
	case session.AdmitChallenge:
		// One challenge per hello, not per fragment: an initiator follows
		// a bounded number of them, and resends every fragment with the
		// cookie anyway.
		if f, ok := session.ParseHandshakeFragment(b.pkt); !ok || f.Offset != 0 {
			return nil
		}
		d.stats.cookiesSent.Add(1)
		if err := d.udp.bind.Send([][]byte{reply}, ep); err != nil {
			d.log.Debug("sending cookie challenge", "err", err)
		}
		return nil
	}
	env, raws, sender := d.assembleHello(now, src, b.pkt)
	if env == nil {
		return nil
	}
	v, open := d.screenHello(now, src, env, sender, d.cfg.MaxDatagramSize)
	if open {
		j := helloJob{src: src, ep: ep, env: env, raws: raws, sender: sender, hash: v.hash}
		if !d.helloQ.offer(j) {
			d.openQueued(j)
		}
		return nil
	}
	if len(v.answer) > 0 {
		if err := d.udp.bind.Send(v.answer, ep); err != nil {
			d.log.Debug("sending hello key", "err", err)
		}
	}
	if v.p == nil {
		return nil
	}
	b.pkt, b.frags, b.opened = raws[0], raws, v.opened
	return v.p
}

func endpointAddr(ep conn.Endpoint) netip.AddrPort {
	dst, _, _ := endpointParts(ep)
	return dst
}

// assembleHello adds a hello fragment and, once the message is complete,
// returns its envelope, copies of every fragment's datagram and its
// sender index.
func (d *Device) assembleHello(now time.Time, src netip.AddrPort, b []byte) ([]byte, [][]byte, uint32) {
	f, ok := session.ParseHandshakeFragment(b)
	if !ok {
		d.guard.refuse(now, refBadHello, src.String())
		return nil, nil, 0
	}
	if f.Offset == 0 && len(f.Data) == f.Total {
		raw := slices.Clone(b)
		return raw[len(b)-len(f.Data):], [][]byte{raw}, f.Sender
	}
	verdict, env, raws := d.guard.hellos.add(now, src, b, f)
	switch verdict {
	case asmBad:
		d.guard.refuse(now, refBadHello, src.String())
		return nil, nil, 0
	case asmOverBudget:
		d.guard.refuse(now, refHelloBudget, src.String())
		return nil, nil, 0
	case asmPending:
		return nil, nil, 0
	}
	return env, raws, f.Sender
}

// allocIndex picks a free random receiver index and registers it to p.
func (d *Device) allocIndex(p *peer, want uint32) uint32 {
	d.udp.idxMu.Lock()
	defer d.udp.idxMu.Unlock()
	if want != 0 {
		if q := d.udp.byIdx[want]; q == nil || q == p {
			d.udp.byIdx[want] = p
			return want
		}
	}
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		idx := binary.BigEndian.Uint32(b[:])
		if idx != 0 && d.udp.byIdx[idx] == nil {
			d.udp.byIdx[idx] = p
			return idx
		}
	}
}

func (d *Device) freeIndex(p *peer, idx uint32) {
	d.udp.idxMu.Lock()
	defer d.udp.idxMu.Unlock()
	if d.udp.byIdx[idx] == p {
		delete(d.udp.byIdx, idx)
	}
}

// dgramCarrier is a datagram-mode session's transport: the device's
// sockets, the session's receiver index and the peer's endpoint, which
// follows the source of the latest authenticated datagram.
type dgramCarrier struct {
	p        *peer
	outbound bool
	index    uint32
	ep       conn.Endpoint // nil until known (a resuming responder)
	// srcGone: a send succeeded only without ep's sticky source address.
	srcGone atomic.Bool
}

// unstick replaces an endpoint whose source address is gone by one that
// lets the kernel choose. Owner only.
func (c *dgramCarrier) unstick() {
	if c.srcGone.Swap(false) && c.ep != nil {
		c.ep = &conn.StdNetEndpoint{AddrPort: endpointAddr(c.ep)}
	}
}

func (c *dgramCarrier) send(bufs [][]byte) {
	c.unstick()
	c.sendTo(c.ep, bufs)
}

// sendTo sends datagrams to ep, the carrier's endpoint now or when the
// batch was sealed; a writer goroutine calls it too.
func (c *dgramCarrier) sendTo(ep conn.Endpoint, bufs [][]byte) {
	if len(bufs) == 0 || ep == nil {
		return
	}
	d := c.p.dev
	err := d.udp.bind.Send(bufs, ep)
	if err != nil {
		// A sticky source address that no longer exists (our address
		// changed): let the kernel choose and try once more. The
		// endpoint may be in use by another goroutine, so it is not
		// changed here; the owner replaces it (unstick).
		ep = &conn.StdNetEndpoint{AddrPort: endpointAddr(ep)}
		err = d.udp.bind.Send(bufs, ep)
		if err == nil {
			c.srcGone.Store(true)
		}
	}
	if err != nil && !d.closing.Load() {
		c.p.stats.dropSendError.Add(uint64(len(bufs)))
		c.p.log.Debug("UDP send", "endpoint", ep.DstToString(), "err", err)
	}
}

func (c *dgramCarrier) roomForData() bool { return c.ep != nil }
func (c *dgramCarrier) close()            { c.p.dev.freeIndex(c.p, c.index) }
func (c *dgramCarrier) isOutbound() bool  { return c.outbound }
func (c *dgramCarrier) datagram() bool    { return true }
func (c *dgramCarrier) remote() string {
	if c.ep == nil {
		return ""
	}
	return c.ep.DstToString()
}

// reindex follows a session whose receiver index changed (a resumption
// that fell back to a fresh handshake picks a new one).
func (c *dgramCarrier) reindex(idx uint32) {
	if idx == c.index {
		return
	}
	d := c.p.dev
	d.udp.idxMu.Lock()
	if d.udp.byIdx[c.index] == c.p {
		delete(d.udp.byIdx, c.index)
	}
	d.udp.byIdx[idx] = c.p
	d.udp.idxMu.Unlock()
	c.index = idx
}
