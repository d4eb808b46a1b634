package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Writer appends encoded values to a buffer. Like Reader its error is sticky:
// an oversized vector makes every later Bytes call fail.
type Writer struct {
	buf []byte
	err error
}

// NewWriter returns a Writer that appends to buf (which may be nil).
func NewWriter(buf []byte) *Writer { return &Writer{buf: buf} }

// Bytes returns the encoding, or the first error met while writing.
func (w *Writer) Bytes() ([]byte, error) { return w.buf, w.err }

// Err returns the first error met while writing.
func (w *Writer) Err() error { return w.err }

// Fail records err unless an earlier error is already recorded.
func (w *Writer) Fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// U8 appends a uint8.
func (w *Writer) U8(v uint8) { w.buf = append(w.buf, v) }

// U16 appends a big-endian uint16.
func (w *Writer) U16(v uint16) { w.buf = binary.BigEndian.AppendUint16(w.buf, v) }

// U32 appends a big-endian uint32.
func (w *Writer) U32(v uint32) { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }

// U64 appends a big-endian uint64.
func (w *Writer) U64(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }

// Bool appends an optional<T> presence octet.
func (w *Writer) Bool(present bool) {
	if present {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// Varint appends a minimally encoded variable-length integer.
func (w *Writer) Varint(v uint64) {
	b, ok := AppendVarint(w.buf, v)
	if !ok {
		w.Fail(fmt.Errorf("%w: %d", ErrTooLong, v))
		return
	}
	w.buf = b
}

// Raw appends b without a length prefix (fixed-size fields).
func (w *Writer) Raw(b []byte) {
	w.reserve(len(b))
	w.buf = append(w.buf, b...)
}

// Opaque appends an opaque<V>: varint length then the bytes.
func (w *Writer) Opaque(b []byte) {
	w.reserve(4 + len(b)) // the longest varint header is 4 bytes
	w.Varint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// writerSlack is what reserve adds beyond the bytes asked for. Encodings
// are built field by field into one buffer; append would grow it in small
// steps from empty (8, 16, 32, ... bytes), copying a KeyPackage's 1,216-byte
// X-Wing key several times on the way, while a structure's small fields
// after its first large one usually fit into the slack.
const writerSlack = 256

// reserve makes room for n more bytes, growing the buffer at least
// twofold.
func (w *Writer) reserve(n int) {
	if cap(w.buf)-len(w.buf) >= n {
		return
	}
	w.buf = slices.Grow(w.buf, max(n+writerSlack, len(w.buf)))
}

// Vector appends a vector<V> whose contents body writes. The body is written
// in place and the length header inserted in front of it afterwards, so a
// vector costs one memmove rather than a temporary buffer.
func (w *Writer) Vector(body func(*Writer)) {
	start := len(w.buf)
	body(w)
	n := uint64(len(w.buf) - start)
	hl := VarintLen(n)
	if hl == 0 {
		w.Fail(fmt.Errorf("%w: %d", ErrTooLong, n))
		return
	}
	w.buf = append(w.buf, make([]byte, hl)...)
	copy(w.buf[start+hl:], w.buf[start:len(w.buf)-hl])
	AppendVarint(w.buf[start:start], n)
}
