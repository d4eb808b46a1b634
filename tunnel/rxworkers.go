package tunnel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The receive workers: the inbound data path of many peers without a
// goroutine switch per peer.
//
// A UDP read of a busy hub holds datagrams of up to maxBatch different
// peers. Handing each peer its one or two datagrams would wake as many
// owner goroutines, each to open one record, publish its status, reset its
// timer and write a batch of one packet to the TUN: with 1,000 active
// peers that cost more than the cryptography (bench/README.md, "Many
// active peers"). So the reader queues each peer's datagrams on the peer's
// inbound queue as before but without waking the owner, and hands the
// list of peers it queued to to a receive worker, which serves them one
// after the other: it takes the peer's owner lock, opens the queued runs
// of records of the established session in place (the session's batch
// call: the owner's code, run under the owner's lock instead of in its
// goroutine), checks their sources, and collects the packets of every
// peer of the read in one batch for the TUN writer.
//
// The invariants of the owner model hold: the owner lock serialises every
// call into a peer's session, so one holder at a time touches its replay
// windows and epochs; each peer is always served by the same worker
// (peers are spread over the workers as over the UDP writers), which
// takes the peer's whole queue in order, so per-peer order is kept up to
// the TUN; the queues stay bounded and drop when full.
//
// A worker never waits for an owner: if the owner holds its lock (a
// handshake, a state save), the worker wakes it, and it drains its queue
// itself when it is done. Anything but records of the established session
// (control datagrams, hellos, a candidate's records), and whatever a
// session call reports (an event, a fatal error), is left to the owner
// too, with the rest of the queue behind it: the owner's work can take
// milliseconds (signatures, fsyncs), which would stall every other peer
// of the worker.

// rxJobQueue bounds the reads waiting for one worker. A full queue makes
// the reader wait: the kernel's socket buffer is then the queue that
// drops, as it does when the readers themselves fall behind. Deeper, the
// backlog of an overloaded hub would grow in pool buffers instead, up to
// the pool's limit (bufcap.go), each pinning a resident page while it
// waits (bench/README.md, "Many active peers").
const rxJobQueue = 8

// rxJob is one read's peers for one worker.
type rxJob struct {
	peers []*peer
}

var rxJobPool = sync.Pool{New: func() any { return &rxJob{peers: make([]*peer, 0, maxBatch)} }}

type rxWorkers struct {
	once    sync.Once
	workers []*rxWorker
	wg      sync.WaitGroup
}

type rxWorker struct {
	d    *Device
	jobs chan *rxJob
	// rx collects the opened packets of every peer served since the last
	// flush (owner state of the peer being served while it is served).
	rx *ioBatch
	// taken is the worker's reusable slice for queue drains.
	taken []*packetBatch
	// flushes counts the worker's TUN batches queued so far; a peer
	// whose packets wait in rx records the count that will carry them
	// (peer.rxHeld), and an owner that writes to the TUN for that peer
	// first waits for it (waitRxHeld), so that per-peer order holds.
	flushes atomic.Uint64
}

// startRxWorkers starts one worker per CPU, once, on the first UDP
// reader's start: the workers serve only what the readers hand them.
func (d *Device) startRxWorkers() {
	d.udp.rx.once.Do(func() {
		n := max(runtime.GOMAXPROCS(0), 1)
		d.udp.rx.workers = make([]*rxWorker, n)
		for i := range d.udp.rx.workers {
			w := &rxWorker{d: d, jobs: make(chan *rxJob, rxJobQueue)}
			d.udp.rx.workers[i] = w
			d.udp.rx.wg.Add(1)
			d.goFunc(func() { defer d.udp.rx.wg.Done(); w.loop() })
		}
	})
}

// rxWorkerIndex is the receive worker of p: always the same one.
func (d *Device) rxWorkerIndex(p *peer) int {
	return int(p.writer % uint32(len(d.udp.rx.workers)))
}

// dispatchDatagrams queues each peer's batch of one read quietly and
// hands the peers to their workers, one job per worker; jobs is the
// reader's scratch, one slot per worker.
func (d *Device) dispatchDatagrams(bt *batcher, jobs []*rxJob) {
	for i, p := range bt.peers {
		b := bt.batches[i]
		bt.peers[i], bt.batches[i] = nil, nil
		dropped, queued := p.dgrams.pushQuiet(b, d.buf.queueLimit())
		if dropped > 0 {
			p.stats.dropQueueFull.Add(uint64(dropped))
		}
		if !queued {
			continue
		}
		k := d.rxWorkerIndex(p)
		if jobs[k] == nil {
			jobs[k] = rxJobPool.Get().(*rxJob)
		}
		jobs[k].peers = append(jobs[k].peers, p)
	}
	bt.peers, bt.batches = bt.peers[:0], bt.batches[:0]
	for k, j := range jobs {
		if j != nil {
			jobs[k] = nil
			d.sendJob(d.udp.rx.workers[k], j)
		}
	}
}

// sendJob hands j to w. After the device closed the job is dropped: the
// owners' shutdown releases what their queues hold.
func (d *Device) sendJob(w *rxWorker, j *rxJob) {
	select {
	case w.jobs <- j:
	case <-d.ctx.Done():
		j.put()
	}
}

func (j *rxJob) put() {
	clear(j.peers)
	j.peers = j.peers[:0]
	rxJobPool.Put(j)
}

func (w *rxWorker) loop() {
	defer w.drop()
	for {
		select {
		case j := <-w.jobs:
			now := w.d.clock()
			for _, p := range j.peers {
				w.serve(now, p)
			}
			j.put()
			// One TUN batch per read: holding packets for the next
			// read's would delay them by as long as it takes to come.
			w.flush()
		case <-w.d.ctx.Done():
			return
		}
	}
}

// serve takes p's queue under p's owner lock and opens what the worker
// may open; the rest is the owner's, which it wakes.
func (w *rxWorker) serve(now time.Time, p *peer) {
	if !p.mu.TryLock() {
		p.dgrams.signal()
		return
	}
	defer p.mu.Unlock()
	if p.handoff {
		// The owner has work of an earlier serve to do first.
		p.dgrams.signal()
		return
	}
	if p.rxb != nil {
		// What the owner opened last, after what this worker holds of
		// the peer (one worker per peer: rxHeld is w or nil).
		if p.rxHeld == w {
			w.flush()
		}
		p.flushRx()
	}
	p.rxw = w
	p.rxb = w.rx
	w.taken = p.serveDatagrams(now, w.taken)
	w.rx = p.rxb
	p.rxb, p.rxw = nil, nil
	if w.rx != nil && len(w.rx.bufs) > 0 {
		p.rxHeld, p.rxHeldAt = w, w.flushes.Load()+1
	}
	if p.needsOwner() {
		p.dgrams.signal()
	}
}

// flush queues the packets collected so far to the TUN writer.
func (w *rxWorker) flush() {
	b := w.rx
	w.rx = nil
	if b != nil && len(b.bufs) > 0 {
		w.d.queue(w.d.writers.tun, b)
	} else if b != nil {
		b.release()
	}
	w.flushes.Add(1)
}

// drop releases what the worker holds when the device closes.
func (w *rxWorker) drop() {
	if w.rx != nil {
		w.rx.release()
		w.rx = nil
	}
	w.flushes.Add(1)
}

// waitRxHeld waits until a worker wrote the packets of p it collected to
// the TUN writer's queue, before the owner queues later ones of p. The
// worker is not waiting for anything the owner holds, so this ends once
// its current job is done.
func (p *peer) waitRxHeld() {
	w := p.rxHeld
	if w == nil {
		return
	}
	for w.flushes.Load() < p.rxHeldAt {
		runtime.Gosched()
	}
	p.rxHeld = nil
}
