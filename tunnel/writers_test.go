package tunnel

import (
	"context"
	"testing"
)

// TestWriteOrQueue: an owner writes a batch itself while its writer is
// idle, and queues it behind the writer's batches otherwise, so that its
// batches keep their order; either way the buffers come back.
func TestWriteOrQueue(t *testing.T) {
	bp := newBufPool(64)
	defer bp.close()
	d := &Device{ctx: context.Background()}
	d.buf.writer.Store(64)
	q := newWriteQueue()
	batch := func(tag byte) *ioBatch {
		b := ioBatchPool.Get().(*ioBatch)
		pb := bp.get()
		pb.arr[0] = tag
		b.bufs, b.pkts = append(b.bufs, pb), append(b.pkts, pb.arr[:1])
		return b
	}
	var wrote []byte
	write := func(b *ioBatch) { wrote = append(wrote, b.pkts[0][0]) }

	d.writeOrQueue(q, batch(1), write)
	if string(wrote) != "\x01" || len(q.ch) != 0 || !q.idle() {
		t.Fatalf("idle writer: written %v, queued %d", wrote, len(q.ch))
	}
	// The writer is busy with a batch: the next ones wait behind it.
	if !q.reserve(d.ctx, 1, 64) {
		t.Fatal("reserve failed")
	}
	d.writeOrQueue(q, batch(2), write)
	d.writeOrQueue(q, batch(3), write)
	if string(wrote) != "\x01" || len(q.ch) != 2 {
		t.Fatalf("busy writer: written %v, queued %d; want both queued", wrote, len(q.ch))
	}
	q.done(1)
	for range 2 {
		b := <-q.ch
		n := len(b.bufs)
		write(b)
		b.release()
		q.done(n)
	}
	if string(wrote) != "\x01\x02\x03" || !q.idle() {
		t.Fatalf("written %v, want 1 2 3 in order", wrote)
	}
	if live, _, _ := bp.counts(); live != 0 {
		t.Fatalf("%d buffers still out", live)
	}
}
