package tunnel

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// takeAll takes buffers from bp until it refuses.
func takeAll(bp *bufPool) []*packetBuf {
	var out []*packetBuf
	for b := bp.get(); b != nil; b = bp.get() {
		out = append(out, b)
	}
	return out
}

// TestBufPoolLimit: the pool lends at most limit buffers, a release frees
// a slot, getN stops at the limit, a second release of the same buffer
// changes nothing, and a lowered limit refuses until enough came back.
func TestBufPoolLimit(t *testing.T) {
	bp := newBufPool(40)
	defer bp.close()
	held := takeAll(bp)
	if len(held) != 40 {
		t.Fatalf("took %d buffers under a limit of 40", len(held))
	}
	if live, limit, mapped := bp.counts(); live != 40 || limit != 40 || mapped < 40 {
		t.Fatalf("counts %d/%d/%d, want 40 live of 40, at least 40 mapped", live, limit, mapped)
	}
	for _, b := range held {
		if len(b.arr) != bufSize || cap(b.arr) != bufSize {
			t.Fatalf("buffer of len %d cap %d, want %d", len(b.arr), cap(b.arr), bufSize)
		}
	}
	held[0].release()
	held[0].release() // a bug, ignored
	if live, _, _ := bp.counts(); live != 39 {
		t.Fatalf("live %d after one release (twice), want 39", live)
	}
	b := bp.get()
	if b == nil {
		t.Fatal("no buffer after a release")
	}
	if bp.get() != nil {
		t.Fatal("a 41st buffer")
	}
	held[0] = b
	releaseAll(held[:10])
	dst := make([]*packetBuf, 16)
	if n := bp.getN(dst); n != 10 {
		t.Fatalf("getN took %d with 10 free slots", n)
	}
	copy(held, dst[:10])
	bp.setLimit(30)
	releaseAll(held[:5])
	if bp.get() != nil {
		t.Fatal("a buffer while 35 are out under a limit of 30")
	}
	releaseAll(held[5:])
	if got := len(takeAll(bp)); got != 30 {
		t.Fatalf("took %d under the lowered limit of 30", got)
	}
}

// resident counts the resident pages of b.
func resident(t *testing.T, b []byte) int {
	t.Helper()
	page := os.Getpagesize()
	vec := make([]byte, (len(b)+page-1)/page)
	// x/sys has no wrapper for mincore(2).
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if errno != 0 {
		t.Skipf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestBufPoolReclaim: buffers that stayed free for a whole interval give
// their pages back; buffers used in the interval, and buffers in use,
// keep theirs.
func TestBufPoolReclaim(t *testing.T) {
	bp := newBufPool(64)
	defer bp.close()
	held := takeAll(bp)
	for _, b := range held {
		clear(b.arr) // every page resident
	}
	pages := resident(t, held[0].arr)
	if pages == 0 {
		t.Fatal("a written buffer has no resident page")
	}
	releaseAll(held[16:])
	bp.reclaim() // starts an interval; the releases came before it
	// In the interval: 8 buffers are taken and given back (used), 16 stay
	// out (in use), 40 stay free.
	used := make([]*packetBuf, 8)
	if bp.getN(used) != 8 {
		t.Fatal("getN")
	}
	for _, b := range used {
		clear(b.arr)
	}
	releaseAll(used)
	n, peak := bp.reclaim()
	if n != 40 || peak != 24 {
		t.Fatalf("reclaimed %d buffers (peak %d), want 40 (peak 24)", n, peak)
	}
	for _, b := range used {
		if resident(t, b.arr) != pages {
			t.Fatal("a buffer used in the interval lost its pages")
		}
	}
	for _, b := range held[:16] {
		if resident(t, b.arr) != pages {
			t.Fatal("a buffer in use lost its pages")
		}
	}
	cold := 0
	for _, b := range held[16:] {
		if resident(t, b.arr) == 0 {
			cold++
		}
	}
	if cold != 40 {
		t.Fatalf("%d of the 40 buffers free all interval gave their pages back, want all", cold)
	}
	// Nothing happened since: the used ones go now, the cold ones are
	// not counted twice.
	if n, _ := bp.reclaim(); n != 8 {
		t.Fatalf("second reclaim: %d buffers, want the 8 used before", n)
	}
	if got := bp.reclaimed.Load(); got != 48 {
		t.Fatalf("Reclaimed %d, want 48", got)
	}
	releaseAll(held[:16])
}

// TestBufPoolClose: a closed pool lends nothing, and unmaps its memory
// only once the last buffer is back.
func TestBufPoolClose(t *testing.T) {
	bp := newBufPool(8)
	b := bp.get()
	bp.close()
	if bp.get() != nil {
		t.Fatal("a closed pool lent a buffer")
	}
	if _, _, mapped := bp.counts(); mapped == 0 {
		t.Fatal("unmapped while a buffer is out")
	}
	b.arr[0] = 1 // still mapped: no fault
	b.release()
	if _, _, mapped := bp.counts(); mapped != 0 {
		t.Fatalf("%d buffers still mapped after the last came back", mapped)
	}
}
