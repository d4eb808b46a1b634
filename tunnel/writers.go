package tunnel

import (
	"context"
	"runtime"
	"sync"
	"time"

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
// An owner whose UDP writer is idle sends its batch itself (writeOrQueue):
// the writer is there for the owner that has more to seal meanwhile.

// writeQueueLen bounds the batches waiting for one writer, and the
// writer limit of bufcap.go the buffers in them: a slow writer must not
// hold the buffers every other path needs. A full queue blocks the owner:
// backpressure to the readers, whose queues then drop.
const writeQueueLen = 64

// ioBatch is one batch for a writer: buffers to release afterwards, the
// slices to write, and for UDP the carrier and endpoint to send to.
type ioBatch struct {
	bufs []*packetBuf
	pkts [][]byte
	c    *dgramCarrier
	ep   conn.Endpoint
	at   time.Time // when its first record was sealed
}

var ioBatchPool = sync.Pool{New: func() any {
	return &ioBatch{bufs: make([]*packetBuf, 0, batchStart), pkts: make([][]byte, 0, batchStart)}
}}

func (b *ioBatch) release() {
	releaseAll(b.bufs)
	clear(b.bufs)
	clear(b.pkts)
	b.bufs, b.pkts = b.bufs[:0], b.pkts[:0]
	b.c, b.ep, b.at = nil, nil, time.Time{}
	ioBatchPool.Put(b)
}

type writers struct {
	tun *writeQueue
	udp []*writeQueue
	// stop ends the writers; Close closes it once no owner is left to
	// queue, so that nothing queued is left behind unreleased.
	stop chan struct{}
}

// writeQueue is one writer's FIFO, and the buffers in it.
type writeQueue struct {
	ch   chan *ioBatch
	mu   sync.Mutex
	held int // buffers queued or being written
	// room, when not nil, is closed the next time held falls: owners
	// waiting for room select on it.
	room chan struct{}
}

func newWriteQueue() *writeQueue { return &writeQueue{ch: make(chan *ioBatch, writeQueueLen)} }

// reserve waits until n more buffers fit under limit, or the queue is
// empty (a batch larger than the limit still goes, alone); false if ctx
// ended first.
func (q *writeQueue) reserve(ctx context.Context, n, limit int) bool {
	q.mu.Lock()
	for q.held > 0 && q.held+n > limit {
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return false
		}
		q.mu.Lock()
	}
	q.held += n
	q.mu.Unlock()
	return true
}

// done gives back the room of n buffers.
func (q *writeQueue) done(n int) {
	q.mu.Lock()
	q.held -= n
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
}

// startWriters starts the TUN writer and the UDP writers.
func (d *Device) startWriters() {
	d.writers.stop = make(chan struct{})
	d.writers.tun = newWriteQueue()
	d.goFunc(func() { d.writeLoop(d.writers.tun, d.writeTUN) })
	n := max(runtime.GOMAXPROCS(0), 1)
	d.writers.udp = make([]*writeQueue, n)
	for i := range d.writers.udp {
		q := newWriteQueue()
		d.writers.udp[i] = q
		d.goFunc(func() { d.writeLoop(q, d.writeUDP) })
	}
}

// stopWriters ends the writers; no owner may queue afterwards.
func (d *Device) stopWriters() {
	if d.writers.stop != nil {
		close(d.writers.stop)
	}
}

func (d *Device) writeLoop(q *writeQueue, write func(*ioBatch)) {
	for {
		select {
		case b := <-q.ch:
			n := len(b.bufs)
			write(b)
			b.release()
			q.done(n)
		case <-d.writers.stop:
			for {
				select {
				case b := <-q.ch:
					n := len(b.bufs)
					b.release()
					q.done(n)
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

// idle reports whether nothing is queued on q or being written.
func (q *writeQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held == 0
}

// writeOrQueue is how an owner hands over a peer's sealed batch: it
// makes the system calls (write) itself when the peer's writer is idle,
// and queues b to it otherwise.
// Handing a batch over costs a wake-up of the writer and its return to
// sleep (the scheduler's work, a few microseconds a batch, which on the
// sealing side was a tenth of the daemon's CPU time); the writer pays off
// only while the owner has the next batch to seal meanwhile, and then its
// queue is not empty. Order holds: this owner is the only one queuing this
// peer's batches, so with the queue empty none of them is ahead of b.
func (d *Device) writeOrQueue(q *writeQueue, b *ioBatch, write func(*ioBatch)) {
	if q.idle() {
		write(b)
		b.release()
		return
	}
	d.queue(q, b)
}

// queue hands b to a writer, waiting while the writer holds its share of
// the buffers; after the device closed it drops b.
func (d *Device) queue(q *writeQueue, b *ioBatch) {
	n := len(b.bufs)
	if !q.reserve(d.ctx, n, d.buf.writerLimit()) {
		b.release()
		return
	}
	select {
	case q.ch <- b:
	case <-d.ctx.Done():
		b.release()
		q.done(n)
	}
}

// udpWriter is the writer of the peer's sessions: always the same one,
// so that its batches stay in order.
func (d *Device) udpWriter(p *peer) *writeQueue {
	return d.writers.udp[p.writer%uint32(len(d.writers.udp))]
}
