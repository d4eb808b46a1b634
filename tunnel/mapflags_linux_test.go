package tunnel

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPoolMappingFlagged: the pool's memory is a mapping of its own in
// /proc/self/smaps, flagged dd (out of core dumps), with the page a packet
// wrote resident, so that a measurement can tell it from the rest of the
// daemon; receive slots are flagged wf besides.
func TestPoolMappingFlagged(t *testing.T) {
	before := flaggedRSSKB(t)
	bp := newBufPool(4)
	defer bp.close()
	b := bp.get()
	if b == nil {
		t.Fatal("no buffer")
	}
	defer b.release()
	copy(b.arr[recvAt:], make([]byte, 1420))
	b.arr[recvAt] = 1
	var epochs atomic.Uint64
	rs := newReceiveSlots(2, &epochs)
	defer rs.unmap()
	rs.bufs[0][0] = 1
	after := flaggedRSSKB(t)
	if got := after["dd"] - before["dd"]; got < 4 {
		t.Fatalf("dd mappings grew by %d KiB resident, want the pool's page", got)
	}
	if got := after["dd wf"] - before["dd wf"]; got < 4 {
		t.Fatalf("dd wf mappings grew by %d KiB resident, want the slot's page", got)
	}
}

// flaggedRSSKB sums the Rss of this process's mappings by the dd and wf
// flags they carry: "dd" (pool), "dd wf" (receive slots).
func flaggedRSSKB(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	rss := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		switch {
		case len(fs) >= 2 && fs[0] == "Rss:":
			rss, _ = strconv.Atoi(fs[1])
		case len(fs) >= 1 && fs[0] == "VmFlags:":
			dd, wf := slices.Contains(fs, "dd"), slices.Contains(fs, "wf")
			switch {
			case dd && wf:
				out["dd wf"] += rss
			case dd:
				out["dd"] += rss
			}
		}
	}
	return out
}
