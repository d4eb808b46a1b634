package tunnel

import (
	"runtime"
	"sync/atomic"
)

// The hard bound on the data path's buffer memory (issue 14). Every
// packet between a reader and a writer is in a pool buffer of bufSize
// bytes (bufpool.go), and the pool lends at most bufferCap of them at
// once; a reader that gets none drops the packet, as a congested link
// would, and counts it (DropNoBuffer). Within that budget no single
// holder may take everything: each of a peer's two queues, each writer's
// queue and the packets all peers hold while they wait for a session get
// a share, so that one flooded queue, stalled writer or dead endpoint
// leaves the others buffers.
//
// The readers' receive slots are not part of the budget: each reader owns
// its slots for life and copies every packet it routes into a pool buffer
// (tun.go, udp.go), so that after a burst every pool buffer is free and
// its memory can go back to the OS (reclaim.go).

// The budget, in buffers. A busy peer's pipeline holds a batch (up to
// maxBatch packets) in each stage of each direction (queue, owner,
// writer), a couple deep; capPerCore gives every core's crypto worker and
// UDP writer such a pipeline, capPerPeer lets more active peers queue at
// once, up to capPeers of them (beyond that peers share: the budget is a
// bound on memory, not a reservation). Whatever the formula says, the
// budget's address space stays within 1/memShare of the memory the
// process may use (memory.go), and at least minCap buffers.
// On 2 cores with one peer that is 1040 buffers, with which TCP through
// the tunnel costs no more CPU per GB than with no bound at all
// (bench/README.md has the measurements). The per-peer share stops at
// capPeers = 64: the packets are opened and sealed by as many goroutines
// at once as there are cores, so beyond a few dozen active peers more
// buffers add backlog, not throughput, and under overload every buffer
// lent is resident (a page or two per datagram): with 256 a hub of 1,000
// busy peers on 2 cores could hold 5,120 buffers, some 20 MiB, against
// 2,048 now (bench/README.md, "Memory per peer (session 10)").
const (
	capBase    = 512
	capPerCore = 256
	capPerPeer = 16
	capPeers   = 64
	memShare   = 4
	minCap     = 2 * maxBatch
)

// bufferCap is the budget for a device with peers peers on cores cores,
// with mem bytes of memory (0: unknown).
func bufferCap(cores, peers int, mem uint64) int {
	n := capBase + capPerCore*max(cores, 1) + capPerPeer*min(max(peers, 0), capPeers)
	if mem > 0 {
		n = min(n, int(min(mem/memShare/bufSize, 1<<30)))
	}
	return max(n, minCap)
}

// The shares of the budget, as fractions of it. Each is at least one
// full batch, so that a read of maxBatch packets can always be queued
// when nothing else is. A peer's queue holds what arrives while its owner
// waits for a core, a few milliseconds at line rate: on 2 shared cores,
// TCP through the tunnel needed about 500 buffers there (bench/README.md:
// a quarter of the budget cost 15 % more CPU per GB in retransmissions,
// half of it as little as no bound at all). Writers drain at the rate of
// system calls, and a quarter keeps them busy; the packets waiting for
// sessions are few unless endpoints are dead, when they should not take
// more.
const (
	queueShare   = 2 // each of a peer's queues holds at most cap/queueShare
	writerShare  = 4 // each writer's queue
	pendingShare = 4 // all peers' packets waiting for a session, together
)

// bufState is the Device's buffer pool and the limits derived from its
// budget, which Reconfigure recomputes as peers come and go.
type bufState struct {
	pool    *bufPool
	queue   atomic.Int64 // buffers one peer's queue may hold
	writer  atomic.Int64 // buffers one writer's queue may hold
	pending atomic.Int64 // buffers all peers may hold while no session is up
	// held counts the buffers in the peers' pending queues.
	held atomic.Int64
}

// sizeBuffers sets the budget and its shares for peers peers.
func (d *Device) sizeBuffers(peers int) {
	d.setBufferCap(bufferCap(runtime.GOMAXPROCS(0), peers, memoryLimit()))
}

// setBufferCap sets the budget to n buffers, and its shares.
func (d *Device) setBufferCap(n int) {
	s := &d.buf
	if s.pool == nil {
		s.pool = newBufPool(n)
	} else {
		s.pool.setLimit(n)
	}
	s.queue.Store(int64(max(n/queueShare, maxBatch)))
	s.writer.Store(int64(max(n/writerShare, maxBatch)))
	s.pending.Store(int64(max(n/pendingShare, maxBatch)))
}

func (s *bufState) queueLimit() int  { return int(s.queue.Load()) }
func (s *bufState) writerLimit() int { return int(s.writer.Load()) }

// BufferStats describes the data path's packet buffers.
type BufferStats struct {
	// Live buffers are in use now; Cap is the most that may be.
	Live, Cap int
	// Mapped buffers have address space; only the pages written to since
	// the last reclaim are resident. Size is the address space of one.
	Mapped, Size int
	// DropNoBuffer counts packets dropped because Live was at Cap.
	DropNoBuffer uint64
	// Reclaimed counts buffers whose pages were given back to the OS.
	Reclaimed uint64
}

// BufferStats returns the buffer counters, for metrics.
func (d *Device) BufferStats() BufferStats {
	bp := d.buf.pool
	live, limit, mapped := bp.counts()
	return BufferStats{
		Live:         live,
		Cap:          limit,
		Mapped:       mapped,
		Size:         bp.stride,
		DropNoBuffer: bp.noBuffer.Load(),
		Reclaimed:    bp.reclaimed.Load(),
	}
}
