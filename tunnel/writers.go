package tunnel

import (
	"runtime"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// The write stage. A peer's owner seals and opens; the system calls that
// send its sealed batches (sendmmsg with UDP GSO) and write its opened
// batches to the TUN (GRO-coalesced writes) run on writer goroutines, so
// that a busy peer keeps two cores working, the owner on the next batch's
// cryptography and a writer on the previous batch's system calls. Each
// peer's batches always go to the same writer, through a FIFO channel, so
// its packet order is kept. The TUN has one writer (wireguard/tun
// serialises writes anyway); UDP has one per CPU, peers spread by index.

// writeQueueLen bounds the batches waiting for one writer. A full queue
// blocks the owner: backpressure to the readers, whose queues then drop.
const writeQueueLen = 64

// ioBatch is one batch for a writer: buffers to release afterwards, the
// slices to write, and for UDP the carrier and endpoint to send to.
type ioBatch struct {
	bufs []*packetBuf
	pkts [][]byte
	c    *dgramCarrier
	ep   conn.Endpoint
}

var ioBatchPool = sync.Pool{New: func() any {
	return &ioBatch{bufs: make([]*packetBuf, 0, maxBatch), pkts: make([][]byte, 0, maxBatch)}
}}

func (b *ioBatch) release() {
	for i, pb := range b.bufs {
		pb.release()
		b.bufs[i], b.pkts[i] = nil, nil
	}
	b.bufs, b.pkts = b.bufs[:0], b.pkts[:0]
	b.c, b.ep = nil, nil
	ioBatchPool.Put(b)
}

type writers struct {
	tun chan *ioBatch
	udp []chan *ioBatch
}

// startWriters starts the TUN writer and the UDP writers.
func (d *Device) startWriters() {
	d.writers.tun = make(chan *ioBatch, writeQueueLen)
	d.goFunc(func() { d.writeLoop(d.writers.tun, d.writeTUN) })
	n := max(runtime.GOMAXPROCS(0), 1)
	d.writers.udp = make([]chan *ioBatch, n)
	for i := range d.writers.udp {
		ch := make(chan *ioBatch, writeQueueLen)
		d.writers.udp[i] = ch
		d.goFunc(func() { d.writeLoop(ch, d.writeUDP) })
	}
}

func (d *Device) writeLoop(ch chan *ioBatch, write func(*ioBatch)) {
	for {
		select {
		case b := <-ch:
			write(b)
			b.release()
		case <-d.ctx.Done():
			for {
				select {
				case b := <-ch:
					b.release()
				default:
					return
				}
			}
		}
	}
}

func (d *Device) writeTUN(b *ioBatch) {
	if err := d.tunW.write(b.pkts); err != nil && !d.closing.Load() {
		d.log.Debug("TUN write", "err", err)
	}
}

func (d *Device) writeUDP(b *ioBatch) {
	b.c.sendTo(b.ep, b.pkts)
}

// queue hands b to a writer; after the device closed it drops b.
func (d *Device) queue(ch chan *ioBatch, b *ioBatch) {
	select {
	case ch <- b:
	case <-d.ctx.Done():
		b.release()
	}
}

// udpWriter is the writer of the peer's sessions: always the same one,
// so that its batches stay in order.
func (d *Device) udpWriter(p *peer) chan *ioBatch {
	return d.writers.udp[p.writer%uint32(len(d.writers.udp))]
}
