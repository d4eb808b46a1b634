package tunnel

import (
	"sync"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/record"
)

// Packet buffers and batches: past the readers, the data path moves
// pointers, never bytes.
//
// A packetBuf is one packet from the moment a reader copies it out of its
// receive slot (readers.go) until it is written (to a UDP socket or the
// TUN); it is sealed and opened in place. Buffers come from the Device's
// pool, which lends a bounded number of them (bufpool.go, bufcap.go).
// Every buffer is large enough for a 64 KiB super-packet, because the
// batch writers coalesce into the first buffer of a run: wireguard/conn
// appends the following datagrams of a batch to it for one UDP GSO send,
// and wireguard/tun merges the following TCP segments of a flow into it
// for one GRO write to the kernel. That capacity is what turns 45 system
// calls per 64 KiB into one; it costs address space, not memory, since
// only the pages written to are resident.
//
// Layout of arr, outbound: the IP packet is copied to tunOffset; the record
// header is written in front of it at sealAt, so the sealed record is
// arr[sealAt:] and the tag goes after the packet. Inbound: a datagram is
// copied to recvAt, so that once opened in place its IP packet starts at
// tunOffset again, and arr[:tunOffset+len] goes to the TUN with the
// virtio header room in front.
const (
	bufSize = tunOffset + maxSegment
	sealAt  = tunOffset - record.DatagramHeaderLen
	recvAt  = sealAt
	// maxBatch is the most packets one batch carries: what one TUN read
	// or one UDP read returns at most.
	maxBatch = conn.IdealBatchSize
)

type packetBuf struct {
	// arr is the buffer, bufSize bytes of the pool's mapped memory.
	arr []byte
	// pkt is the packet (outbound) or datagram (inbound) within arr.
	pkt []byte
	// ep is where an inbound datagram came from.
	ep conn.Endpoint
	// frags holds every fragment of a reassembled ClientHello (copies;
	// pkt is the first).
	frags [][]byte
	// opened is a sealed hello the listener opened (sealed.go).
	opened *session.OpenedHello

	pool        *bufPool
	chunk, slot int32 // where arr is in pool's mappings
	out         bool  // taken and not released
	clean       bool  // no page of arr is resident
}

// release returns b to its pool.
func (b *packetBuf) release() { b.pool.put(b) }

// packetBatch is a run of buffers for one peer, handed over with one
// channel operation: per-packet channel sends would cost more than the
// cryptography.
type packetBatch struct {
	bufs []*packetBuf
}

// batchStart is the capacity a new batch (packetBatch, ioBatch) starts
// with; appends grow it up to maxBatch. With many peers a read or a
// wake-up carries a packet or two per peer, and every peer's queue, owner
// and writer holds batches of its own: at maxBatch from the start, each
// would be 1 to 4 KiB of pointers for one packet, megabytes for a hub.
const batchStart = 8

var batchPool = sync.Pool{New: func() any { return &packetBatch{bufs: make([]*packetBuf, 0, batchStart)} }}

func getBatch() *packetBatch { return batchPool.Get().(*packetBatch) }

// release returns the batch and every buffer still in it.
func (b *packetBatch) release() {
	releaseAll(b.bufs)
	clear(b.bufs)
	b.bufs = b.bufs[:0]
	batchPool.Put(b)
}

// releaseAll returns buffers to their pool, under one lock when they
// share it (they always do: one Device's buffers never meet another's).
func releaseAll(bufs []*packetBuf) {
	for len(bufs) > 0 {
		bp := bufs[0].pool
		n := 1
		for n < len(bufs) && bufs[n].pool == bp {
			n++
		}
		bp.put(bufs[:n]...)
		bufs = bufs[n:]
	}
}

// recycle returns the batch alone, its buffers having been handed on.
func (b *packetBatch) recycle() {
	clear(b.bufs)
	b.bufs = b.bufs[:0]
	batchPool.Put(b)
}

// batcher groups the packets of one read by peer, preserving each peer's
// order. A read nearly always belongs to one or two peers, so a short
// slice searched linearly beats a map.
type batcher struct {
	peers   []*peer
	batches []*packetBatch
}

func (bt *batcher) add(p *peer, b *packetBuf) {
	for i, q := range bt.peers {
		if q == p {
			bt.batches[i].bufs = append(bt.batches[i].bufs, b)
			return
		}
	}
	pb := getBatch()
	pb.bufs = append(pb.bufs, b)
	bt.peers = append(bt.peers, p)
	bt.batches = append(bt.batches, pb)
}

// flush hands each peer its batch through put.
func (bt *batcher) flush(put func(*peer, *packetBatch)) {
	for i, p := range bt.peers {
		put(p, bt.batches[i])
		bt.peers[i], bt.batches[i] = nil, nil
	}
	bt.peers, bt.batches = bt.peers[:0], bt.batches[:0]
}
