package record

// The anti-replay window follows RFC 6479: a ring of 64-bit words indexed by
// the high bits of the sequence number. Checking and marking are O(1); moving
// the right edge clears the words it passes, at most the whole ring (a fixed
// 2 KiB), whatever the jump. The ring is allocated by the first record
// marked: a receive epoch that never authenticates one (the previous
// epoch's slot outside a grace period, a session before its first record)
// costs no ring, which is 2 KiB of every idle peer of a hub.
const (
	windowWords = 256 // a power of two, so the ring index is a mask
	windowMask  = windowWords - 1
	// ReplayWindow is how far behind the highest accepted sequence number a
	// datagram may be and still be accepted once. One word of the ring is
	// the partially filled newest word, hence the -1: 16320 >= 8192.
	ReplayWindow = (windowWords - 1) * 64
)

// replayWindow tracks the accepted sequence numbers of one epoch's receive
// key. Zero value: nothing accepted yet, top = 0, so sequence number 0 is
// fresh until marked.
type replayWindow struct {
	top  uint64               // highest accepted sequence number
	bits *[windowWords]uint64 // nil until the first mark
}

// check says whether seq may still be accepted. It does not change the window:
// only a record that then authenticates is marked.
func (w *replayWindow) check(seq uint64) error {
	if seq > w.top {
		return nil
	}
	if w.top-seq >= ReplayWindow {
		return ErrTooOld
	}
	if w.bits == nil {
		return nil // nothing marked yet
	}
	if w.bits[(seq>>6)&windowMask]&(1<<(seq&63)) != 0 {
		return ErrReplay
	}
	return nil
}

// mark records an authenticated seq, sliding the window right if needed.
func (w *replayWindow) mark(seq uint64) {
	if w.bits == nil {
		w.bits = new([windowWords]uint64)
	}
	if seq > w.top {
		from, to := w.top>>6, seq>>6
		if to-from >= windowWords {
			clear(w.bits[:])
		} else {
			for i := from + 1; i <= to; i++ {
				w.bits[i&windowMask] = 0
			}
		}
		w.top = seq
	}
	w.bits[(seq>>6)&windowMask] |= 1 << (seq & 63)
}

func (w *replayWindow) reset() {
	w.top = 0
	if w.bits != nil {
		clear(w.bits[:])
	}
}
