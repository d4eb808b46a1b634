package wire

import "sync"

// Scratch writers are for encodings that are consumed at once and never
// kept: the to-be-signed structures that are signed or verified, the
// inputs of reference and transcript hashes. A handshake makes a dozen of
// them, each a few kilobytes with post-quantum keys; allocating each anew
// costs the allocator, and the garbage collector's assists charged to it,
// more than the hashing of the same bytes.

var scratchWriters = sync.Pool{New: func() any { return new(Writer) }}

// scratchKeep is the largest buffer a scratch writer keeps for reuse; a
// rare huge encoding (a large group's tree) is left to the collector.
const scratchKeep = 64 << 10

// GetScratch returns an empty Writer from a pool. The caller gives it back
// with PutScratch once it has used the encoding, and must not keep
// w.Bytes() past that.
func GetScratch() *Writer {
	w := scratchWriters.Get().(*Writer)
	w.buf, w.err = w.buf[:0], nil
	return w
}

// PutScratch returns w to the pool. Its bytes are cleared first: the
// encodings are public, but a buffer that outlives its use should not
// carry them.
func PutScratch(w *Writer) {
	if cap(w.buf) > scratchKeep {
		return
	}
	clear(w.buf)
	w.buf, w.err = w.buf[:0], nil
	scratchWriters.Put(w)
}
