package tunnel

import (
	"context"
	"testing"
	"time"
)

// batchOf takes n buffers from bp into a batch.
func batchOf(t *testing.T, bp *bufPool, n int) *packetBatch {
	t.Helper()
	b := getBatch()
	for range n {
		pb := bp.get()
		if pb == nil {
			t.Fatal("pool exhausted")
		}
		b.bufs = append(b.bufs, pb)
	}
	return b
}

// TestBatchQueueBufferBound: a queue holds at most its share of buffers,
// whatever the batches' sizes: a batch that does not fit is cut to what
// does, a full queue drops whole batches, the dropped buffers go back to
// the pool, a drain makes room, and a closed queue releases what it held
// and refuses the rest.
func TestBatchQueueBufferBound(t *testing.T) {
	bp := newBufPool(1000)
	defer bp.close()
	live := func() int { l, _, _ := bp.counts(); return l }
	q := newBatchQueue()
	if n := q.push(batchOf(t, bp, 100), 150); n != 0 {
		t.Fatalf("dropped %d of a batch that fits", n)
	}
	if n := q.push(batchOf(t, bp, 100), 150); n != 50 {
		t.Fatalf("dropped %d of a batch of which 50 fit, want 50", n)
	}
	if n := q.push(batchOf(t, bp, 1), 150); n != 1 {
		t.Fatalf("a full queue dropped %d of 1", n)
	}
	if l := live(); l != 150 {
		t.Fatalf("%d buffers out, want the 150 queued", l)
	}
	<-q.ready
	taken := q.take(nil)
	if len(taken) != 2 || len(taken[0].bufs) != 100 || len(taken[1].bufs) != 50 {
		t.Fatalf("took %d batches", len(taken))
	}
	for _, b := range taken {
		b.release()
	}
	if n := q.push(batchOf(t, bp, 128), 150); n != 0 {
		t.Fatalf("dropped %d after a drain", n)
	}
	q.close()
	if n := q.push(batchOf(t, bp, 3), 150); n != 3 {
		t.Fatalf("a closed queue dropped %d of 3", n)
	}
	if l := live(); l != 0 {
		t.Fatalf("%d buffers out after close, want 0", l)
	}
}

// TestWriteQueueReserve: an owner waits while a writer holds its share,
// goes on when the writer is done with a batch, and gives up when the
// device closes; a batch larger than the share goes when the queue is
// empty.
func TestWriteQueueReserve(t *testing.T) {
	q := newWriteQueue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !q.reserve(ctx, 200, 100) {
		t.Fatal("an empty queue refused a batch larger than the share")
	}
	q.done(200)
	if !q.reserve(ctx, 60, 100) {
		t.Fatal("refused 60 of 100")
	}
	got := make(chan bool)
	go func() { got <- q.reserve(ctx, 60, 100) }()
	select {
	case <-got:
		t.Fatal("120 of 100 reserved")
	case <-time.After(50 * time.Millisecond):
	}
	q.done(60)
	if !<-got {
		t.Fatal("no room after the writer was done")
	}
	// Two owners wait; both go once the queue drains.
	for range 2 {
		go func() { got <- q.reserve(ctx, 50, 100) }()
	}
	time.Sleep(20 * time.Millisecond)
	q.done(60)
	for range 2 {
		select {
		case ok := <-got:
			if !ok {
				t.Fatal("refused")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an owner still waits with room in the queue")
		}
	}
	go func() { got <- q.reserve(ctx, 50, 100) }()
	cancel()
	if <-got {
		t.Fatal("reserved over the share after the device closed")
	}
}

// TestWritersDrainAfterCancel: batches queued for a writer while the
// device closes (owners flush their last batches then) are released when
// the writers stop, whether they were written or dropped.
func TestWritersDrainAfterCancel(t *testing.T) {
	bp := newBufPool(64)
	defer bp.close()
	ctx, cancel := context.WithCancel(context.Background())
	d := &Device{ctx: ctx}
	d.buf.writer.Store(64)
	d.writers.stop = make(chan struct{})
	q := newWriteQueue()
	done := make(chan struct{})
	go func() { defer close(done); d.writeLoop(q, func(*ioBatch) {}) }()
	cancel()
	time.Sleep(10 * time.Millisecond) // for a writer that stops at cancel to do so
	for range 20 {
		b := ioBatchPool.Get().(*ioBatch)
		pb := bp.get()
		b.bufs, b.pkts = append(b.bufs, pb), append(b.pkts, pb.arr[:1])
		d.queue(q, b)
	}
	d.stopWriters()
	<-done
	if live, _, _ := bp.counts(); live != 0 {
		t.Fatalf("%d buffers still out after the writers stopped", live)
	}
}

// TestBatchQueueRequeue: a receive worker's quiet push leaves the owner
// asleep, and what the worker gives back goes before anything pushed
// since, counted against the bound, with the owner woken; a closed queue
// releases what is given back.
func TestBatchQueueRequeue(t *testing.T) {
	bp := newBufPool(1000)
	defer bp.close()
	q := newBatchQueue()
	first, second := batchOf(t, bp, 3), batchOf(t, bp, 2)
	if n, queued := q.pushQuiet(first, 150); n != 0 || !queued {
		t.Fatalf("quiet push: dropped %d, queued %v", n, queued)
	}
	select {
	case <-q.ready:
		t.Fatal("a quiet push woke the owner")
	default:
	}
	taken := q.take(nil)
	if n, _ := q.pushQuiet(second, 150); n != 0 {
		t.Fatalf("dropped %d", n)
	}
	q.requeue(taken)
	clear(taken) // the worker's slice: the queue must not share it
	select {
	case <-q.ready:
	default:
		t.Fatal("requeue did not wake the owner")
	}
	if n := q.push(batchOf(t, bp, 146), 150); n != 1 {
		t.Fatalf("dropped %d of 146 with 5 queued under 150, want 1", n)
	}
	got := q.take(nil)
	if len(got) != 3 || got[0] != first || got[1] != second {
		t.Fatalf("order after requeue: %v, want the requeued batch first", got)
	}
	for _, b := range got {
		b.release()
	}
	q.close()
	q.requeue([]*packetBatch{batchOf(t, bp, 4)})
	if l, _, _ := bp.counts(); l != 0 {
		t.Fatalf("%d buffers out after a requeue to a closed queue, want 0", l)
	}
}
