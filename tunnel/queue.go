package tunnel

import "sync"

// batchQueue is a peer's inbound or outbound queue of packet batches:
// readers push, the owner takes everything queued at once. It holds at
// most queueBatches batches and at most the queue share of the buffer
// budget (bufcap.go) in buffers; beyond that a push drops, as a congested
// link would: batches can be a single packet (no offloads, small packets)
// or 128, so the first bound alone would let one peer's queue take every
// buffer. Unlike a buffered channel it costs nothing while idle (a channel
// of that depth would be 8 KiB per peer, busy or not) and one lock per
// drain rather than a channel operation per batch.
type batchQueue struct {
	mu sync.Mutex
	q  []*packetBatch
	// bufs counts the buffers in q.
	bufs int
	// closed: the owner is gone, and pushes are refused (its buffers
	// would never come back).
	closed bool
	// ready has a token while q is not empty: the owner selects on it.
	ready chan struct{}
}

func newBatchQueue() batchQueue { return batchQueue{ready: make(chan struct{}, 1)} }

// push queues b, or as much of it as fits under maxBufs, and returns how
// many packets it dropped (released; a batch that went entirely is
// released too). What fits is the head of the batch: a congested link
// drops the tail.
func (bq *batchQueue) push(b *packetBatch, maxBufs int) (dropped int) {
	dropped, queued := bq.pushQuiet(b, maxBufs)
	if queued {
		bq.signal()
	}
	return dropped
}

// pushQuiet is push without waking the owner: the UDP readers hand the
// peer to a receive worker instead (rxworkers.go), and wake the owner
// only if the worker cannot serve it. queued reports whether anything of
// b is in the queue now.
func (bq *batchQueue) pushQuiet(b *packetBatch, maxBufs int) (dropped int, queued bool) {
	bq.mu.Lock()
	room := maxBufs - bq.bufs
	if bq.closed || len(bq.q) >= queueBatches || room <= 0 {
		bq.mu.Unlock()
		dropped = len(b.bufs)
		b.release()
		return dropped, false
	}
	if len(b.bufs) > room {
		dropped = len(b.bufs) - room
		releaseAll(b.bufs[room:])
		clear(b.bufs[room:])
		b.bufs = b.bufs[:room]
	}
	bq.q = append(bq.q, b)
	bq.bufs += len(b.bufs)
	bq.mu.Unlock()
	return dropped, true
}

// signal wakes the owner (a token on ready, if there is none yet).
func (bq *batchQueue) signal() {
	select {
	case bq.ready <- struct{}{}:
	default:
	}
}

// requeue puts batches taken but not handled back at the head of the
// queue, before anything pushed since, so that the owner handles them in
// their order; the owner is woken. A closed queue releases them.
func (bq *batchQueue) requeue(bs []*packetBatch) {
	if len(bs) == 0 {
		return
	}
	bq.mu.Lock()
	if bq.closed {
		bq.mu.Unlock()
		for _, b := range bs {
			b.release()
		}
		return
	}
	n := 0
	for _, b := range bs {
		n += len(b.bufs)
	}
	// A new slice: bs is the caller's, which it clears.
	q := make([]*packetBatch, 0, len(bs)+len(bq.q))
	bq.q = append(append(q, bs...), bq.q...)
	bq.bufs += n
	bq.mu.Unlock()
	bq.signal()
}

// take returns everything queued, appended to into (which the owner
// reuses between calls).
func (bq *batchQueue) take(into []*packetBatch) []*packetBatch {
	bq.mu.Lock()
	into = append(into, bq.q...)
	clear(bq.q)
	bq.q = shrink(bq.q) // a burst's backlog is not kept for ever
	bq.bufs = 0
	bq.mu.Unlock()
	return into
}

// close refuses further pushes and releases what is queued: the owner
// calls it when it stops.
func (bq *batchQueue) close() {
	bq.mu.Lock()
	q := bq.q
	bq.q, bq.bufs, bq.closed = nil, 0, true
	bq.mu.Unlock()
	for _, b := range q {
		b.release()
	}
}

// idleQueueCap is the backlog capacity a queue keeps after draining.
const idleQueueCap = 16

// shrink drops a slice that a burst grew, keeping small ones for reuse.
func shrink(s []*packetBatch) []*packetBatch {
	if cap(s) > idleQueueCap {
		return nil
	}
	return s[:0]
}
