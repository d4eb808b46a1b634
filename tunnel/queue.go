package tunnel

import "sync"

// batchQueue is a peer's inbound or outbound queue of packet batches:
// readers push, the owner takes everything queued at once. It holds at
// most queueBatches batches; beyond that a push drops, as a congested link
// would. Unlike a buffered channel it costs nothing while idle (a channel
// of that depth would be 8 KiB per peer, busy or not) and one lock per
// drain rather than a channel operation per batch.
type batchQueue struct {
	mu sync.Mutex
	q  []*packetBatch
	// ready has a token while q is not empty: the owner selects on it.
	ready chan struct{}
}

func newBatchQueue() batchQueue { return batchQueue{ready: make(chan struct{}, 1)} }

// push queues b, or reports false (and leaves b to the caller) when full.
func (bq *batchQueue) push(b *packetBatch) bool {
	bq.mu.Lock()
	if len(bq.q) >= queueBatches {
		bq.mu.Unlock()
		return false
	}
	bq.q = append(bq.q, b)
	bq.mu.Unlock()
	select {
	case bq.ready <- struct{}{}:
	default:
	}
	return true
}

// take returns everything queued, appended to into (which the owner
// reuses between calls).
func (bq *batchQueue) take(into []*packetBatch) []*packetBatch {
	bq.mu.Lock()
	into = append(into, bq.q...)
	clear(bq.q)
	bq.q = shrink(bq.q) // a burst's backlog is not kept for ever
	bq.mu.Unlock()
	return into
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
