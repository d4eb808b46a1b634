package tunnel

import (
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// What the TUN and UDP readers share: receive slots, and the step from a
// slot to a pool buffer.
//
// A reader owns its slots for life. Handing the slot itself to the peer
// and taking a fresh buffer in its place, as the readers did before, costs
// no copy, but leaves the readers holding whatever buffers they took last
// while they wait for the next packet: after a burst, 128 buffers per
// reader whose pages coalescing writers had filled, resident for as long
// as the link stays idle, beyond the reach of any reclaimer. A copy of
// one packet (what the kernel or wireguard-go's GSO split had just
// written, so in cache) is the price of every pool buffer being free
// after a burst.

// receiveSlots is a reader's slots: n buffers of bufSize bytes, mapped
// outside the Go heap like the pool's (a page becomes resident when
// written to, so a slot that only ever receives 1500-byte packets costs
// one). If the mapping fails they come from the Go heap.
//
// A burst of large datagrams (64 KiB GRO reads, an attacker's hello
// fragments) makes every page of a reader's batch resident: 8 MiB for a
// UDP reader's 128 slots, which it would keep while the link idles. So
// once per reclaim interval (the reclaimer bumps Device.slotEpoch) the
// reader gives the slots' pages back itself, between two reads, when
// nothing in them is needed any more: only the reader may, since the
// kernel writes into them during a read.
type receiveSlots struct {
	bufs   [][]byte
	mem    []byte // the mapping; nil if the slots are on the Go heap
	epoch  uint64 // the slotEpoch of the last give-back
	epochs *atomic.Uint64
}

func newReceiveSlots(n int, epochs *atomic.Uint64) *receiveSlots {
	page := os.Getpagesize()
	stride := (bufSize + page - 1) / page * page
	rs := &receiveSlots{bufs: make([][]byte, n), epochs: epochs, epoch: epochs.Load()}
	mem, err := unix.Mmap(-1, 0, n*stride, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err == nil {
		rs.mem = mem
		_ = markMapping(mem, true)
	} else {
		mem = make([]byte, n*stride)
	}
	for i := range rs.bufs {
		off := i * stride
		rs.bufs[i] = mem[off : off+bufSize : off+bufSize]
	}
	return rs
}

// giveBack returns the slots' pages to the OS if a reclaim interval
// started since the last time. The caller must be done with every slot.
func (rs *receiveSlots) giveBack() {
	if e := rs.epochs.Load(); e != rs.epoch && rs.mem != nil {
		rs.epoch = e
		_ = unix.Madvise(rs.mem, unix.MADV_DONTNEED)
	}
}

// unmap releases the mapping once the reader is done.
func (rs *receiveSlots) unmap() {
	if rs.mem != nil {
		_ = unix.Munmap(rs.mem)
		rs.mem = nil
	}
}

// routedReads collects the packets of one read that found a peer, by
// slot, and then takes a pool buffer for each.
type routedReads struct {
	peers []*peer
	slots []int
	bufs  []*packetBuf
	n     int
}

func (r *routedReads) init(n int) {
	r.peers, r.slots, r.bufs = make([]*peer, n), make([]int, n), make([]*packetBuf, n)
}

func (r *routedReads) add(p *peer, slot int) {
	r.peers[r.n], r.slots[r.n] = p, slot
	r.n++
}

// take fills bufs[:got] for the first got packets, got < n when the pool
// is at its limit: the rest are dropped, and counted.
func (r *routedReads) take(bp *bufPool) (got int) {
	got = bp.getN(r.bufs[:r.n])
	if got < r.n {
		bp.noBuffer.Add(uint64(r.n - got))
	}
	return got
}

// reset forgets the read, dropping its references.
func (r *routedReads) reset() {
	clear(r.peers[:r.n])
	clear(r.bufs[:r.n])
	r.n = 0
}
