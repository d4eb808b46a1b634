package tunnel

import (
	"cmp"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// bufPool holds a Device's packet buffers. Their memory is outside the Go
// heap, in anonymous mappings of chunkBufs buffers each, mapped as the
// live count first needs them; a free list hands them out, never more than
// limit at once (bufcap.go sets it).
//
// The Go heap, which held them in a sync.Pool before, is the wrong home
// for them: the collector lets a heap grow to twice its live size before
// it runs, it zeroes a reused 64 KiB span (making every page of it
// resident) when a packet needs a few, and the runtime gives freed pages
// back to the OS minutes after a burst. A mapped buffer costs only the
// pages written to, limit bounds the total, and the reclaimer gives back
// at once the pages of buffers that stayed free for an interval
// (madvise(MADV_DONTNEED), reclaim).
type bufPool struct {
	mu sync.Mutex
	// free is a stack: the most recently released buffer, the one whose
	// pages are most likely resident and in cache, is reused first.
	free  []*packetBuf
	live  int // taken, not yet released
	limit int
	// peak is the highest live count and low the shortest free list since
	// the reclaimer last looked: free[:low] were not used in that time.
	peak, low int
	chunks    [][]byte
	stride    int // bytes per buffer: bufSize rounded up to whole pages
	closed    bool

	noBuffer  atomic.Uint64 // packets dropped because live was at limit
	reclaimed atomic.Uint64 // buffers whose pages went back to the OS
}

// chunkBufs is how many buffers one mapping holds (about 2 MiB of address
// space; only pages written to become resident).
const chunkBufs = 32

func newBufPool(limit int) *bufPool {
	page := os.Getpagesize()
	return &bufPool{limit: limit, stride: (bufSize + page - 1) / page * page}
}

// get takes a buffer, or returns nil when limit buffers are in use (or
// the memory cannot be mapped): the caller drops its packet.
func (bp *bufPool) get() *packetBuf {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	return bp.takeLocked()
}

// getN fills dst with buffers, as far as the limit allows, under one lock
// (a reader needs one per packet of a read), and returns how many.
func (bp *bufPool) getN(dst []*packetBuf) int {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	for i := range dst {
		if dst[i] = bp.takeLocked(); dst[i] == nil {
			return i
		}
	}
	return len(dst)
}

func (bp *bufPool) takeLocked() *packetBuf {
	if bp.live >= bp.limit || bp.closed {
		return nil
	}
	if len(bp.free) == 0 && !bp.growLocked() {
		return nil
	}
	n := len(bp.free) - 1
	b := bp.free[n]
	bp.free[n] = nil
	bp.free = bp.free[:n]
	b.clean, b.out = false, true
	bp.live++
	bp.peak = max(bp.peak, bp.live)
	bp.low = min(bp.low, n)
	return b
}

// growLocked maps another chunk and puts its buffers on the free list.
func (bp *bufPool) growLocked() bool {
	mem, err := unix.Mmap(-1, 0, chunkBufs*bp.stride, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return false
	}
	_ = markMapping(mem, false) // not in core dumps, and measurable
	ci := int32(len(bp.chunks))
	bp.chunks = append(bp.chunks, mem)
	bufs := make([]packetBuf, chunkBufs)
	// The stack's backing array is sized for every mapped buffer once,
	// so that releases never allocate.
	bp.free = slices.Grow(bp.free, len(bp.chunks)*chunkBufs-len(bp.free))
	for i := range bufs {
		b := &bufs[i]
		off := i * bp.stride
		b.arr = mem[off : off+bufSize : off+bufSize]
		b.pool, b.chunk, b.slot, b.clean = bp, ci, int32(i), true
		bp.free = append(bp.free, b)
	}
	return true
}

// put returns buffers to the free list.
func (bp *bufPool) put(bufs ...*packetBuf) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	for _, b := range bufs {
		if !b.out {
			// Released twice: a bug, but handing the buffer to two
			// users at once would be a worse one.
			continue
		}
		b.pkt, b.ep, b.frags, b.opened, b.out = nil, nil, nil, nil, false
		bp.free = append(bp.free, b)
		bp.live--
	}
	if bp.closed && bp.live == 0 {
		bp.unmapLocked()
	}
}

// setLimit changes the limit. Lowering it below the live count refuses
// new buffers until enough come back; none is taken away.
func (bp *bufPool) setLimit(n int) {
	bp.mu.Lock()
	bp.limit = n
	bp.mu.Unlock()
}

// reclaim gives the OS back the pages of every buffer that stayed on the
// free list since the last call (the bottom of the stack, below its
// lowest point since) and returns how many buffers that was. Adjacent
// buffers go in one madvise. It also returns the peak live count of the
// interval, and starts the next one.
func (bp *bufPool) reclaim() (n, peak int) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	peak = bp.peak
	var cold []*packetBuf
	for _, b := range bp.free[:bp.low] {
		if !b.clean {
			cold = append(cold, b)
		}
	}
	slices.SortFunc(cold, func(a, b *packetBuf) int {
		return cmp.Or(cmp.Compare(a.chunk, b.chunk), cmp.Compare(a.slot, b.slot))
	})
	for i := 0; i < len(cold); {
		j := i + 1
		for j < len(cold) && cold[j].chunk == cold[i].chunk && cold[j].slot == cold[j-1].slot+1 {
			j++
		}
		mem := bp.chunks[cold[i].chunk]
		start, end := int(cold[i].slot)*bp.stride, int(cold[j-1].slot+1)*bp.stride
		if unix.Madvise(mem[start:end], unix.MADV_DONTNEED) == nil {
			for _, b := range cold[i:j] {
				b.clean = true
			}
			n += j - i
		}
		i = j
	}
	bp.reclaimed.Add(uint64(n))
	bp.peak, bp.low = bp.live, len(bp.free)
	return n, peak
}

// close refuses new buffers and unmaps the memory once every buffer is
// back: a buffer still out when the Device closes (a goroutine that did
// not release it yet) must not point at unmapped memory.
func (bp *bufPool) close() {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	bp.closed = true
	if bp.live == 0 {
		bp.unmapLocked()
	}
}

func (bp *bufPool) unmapLocked() {
	for _, mem := range bp.chunks {
		_ = unix.Munmap(mem)
	}
	bp.chunks, bp.free, bp.low = nil, nil, 0
}

// counts returns the live count, the limit and how many buffers are mapped.
func (bp *bufPool) counts() (live, limit, mapped int) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	return bp.live, bp.limit, len(bp.chunks) * chunkBufs
}
