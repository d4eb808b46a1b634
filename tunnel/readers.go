package tunnel

import (
	"os"

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

// receiveSlots returns n buffers of bufSize bytes for a reader, mapped
// outside the Go heap like the pool's (a page becomes resident when
// written to, so a slot that only ever receives 1500-byte packets costs
// one), and a function that unmaps them once the reader is done. If the
// mapping fails they come from the Go heap.
func receiveSlots(n int) ([][]byte, func()) {
	page := os.Getpagesize()
	stride := (bufSize + page - 1) / page * page
	mem, err := unix.Mmap(-1, 0, n*stride, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	unmap := func() { _ = unix.Munmap(mem) }
	if err != nil {
		mem, unmap = make([]byte, n*stride), func() {}
	}
	slots := make([][]byte, n)
	for i := range slots {
		off := i * stride
		slots[i] = mem[off : off+bufSize : off+bufSize]
	}
	return slots, unmap
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
