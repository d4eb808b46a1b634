package wire

import (
	"encoding/binary"
	"fmt"
)

// Reader consumes an encoded value from the front of a byte slice. The first
// error is kept and shared with every sub-reader taken from it; afterwards all
// reads return zero values.
type Reader struct {
	data []byte
	err  *error
}

// NewReader returns a Reader over data. The Reader never modifies data; byte
// strings it returns are copies, so data may be reused after decoding.
func NewReader(data []byte) *Reader {
	var err error
	return &Reader{data: data, err: &err}
}

// Err returns the first error met, if any.
func (r *Reader) Err() error { return *r.err }

// Fail records err unless an earlier error is already recorded.
func (r *Reader) Fail(err error) {
	if *r.err == nil {
		*r.err = err
	}
}

// Failf records a formatted error, see Fail.
func (r *Reader) Failf(format string, args ...any) { r.Fail(fmt.Errorf(format, args...)) }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.data) }

// Empty reports whether all bytes were consumed or an error stopped decoding.
func (r *Reader) Empty() bool { return len(r.data) == 0 || *r.err != nil }

// Finish returns the first error, or ErrTrailing if unread bytes remain.
func (r *Reader) Finish() error {
	if *r.err == nil && len(r.data) != 0 {
		*r.err = fmt.Errorf("%w (%d bytes)", ErrTrailing, len(r.data))
	}
	return *r.err
}

func (r *Reader) take(n int) []byte {
	if *r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.data) {
		r.Fail(ErrTruncated)
		r.data = nil
		return nil
	}
	b := r.data[:n:n]
	r.data = r.data[n:]
	return b
}

// U8 reads a uint8.
func (r *Reader) U8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// U16 reads a big-endian uint16.
func (r *Reader) U16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// U32 reads a big-endian uint32.
func (r *Reader) U32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// U64 reads a big-endian uint64.
func (r *Reader) U64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Bool reads a uint8 that must be 0 or 1, the encoding of optional<T>'s
// presence octet.
func (r *Reader) Bool() bool {
	v := r.U8()
	if v > 1 {
		r.Fail(ErrOptional)
		return false
	}
	return v == 1
}

// Varint reads a variable-length integer.
func (r *Reader) Varint() uint64 {
	if *r.err != nil {
		return 0
	}
	v, n, err := ParseVarint(r.data)
	if err != nil {
		r.Fail(err)
		return 0
	}
	r.data = r.data[n:]
	return v
}

// Fixed reads exactly n bytes and returns a copy of them.
func (r *Reader) Fixed(n int) []byte {
	b := r.take(n)
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Raw reads exactly n bytes without copying; the result aliases the input.
func (r *Reader) Raw(n int) []byte { return r.take(n) }

// Rest consumes and returns (without copying) every unread byte.
func (r *Reader) Rest() []byte { return r.take(len(r.data)) }

// Opaque reads an opaque<V>: a varint length, then that many bytes, copied.
// The length is checked against the remaining input before any allocation.
// A present but empty vector decodes as a non-nil empty slice.
func (r *Reader) Opaque() []byte {
	b := r.rawVector()
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func (r *Reader) rawVector() []byte {
	n := r.Varint()
	if *r.err != nil {
		return nil
	}
	if n > uint64(len(r.data)) {
		r.Fail(fmt.Errorf("%w: %d > %d", ErrBadLength, n, len(r.data)))
		return nil
	}
	return r.take(int(n))
}

// Sub reads a vector header and returns a Reader limited to the vector's
// contents. It shares the error state of r.
func (r *Reader) Sub() *Reader {
	b := r.rawVector()
	return &Reader{data: b, err: r.err}
}

// Vector reads a vector<V> of elements, calling elem once per element until
// the vector's bytes are used up. An element that consumes nothing is an error
// (it would loop forever), so hostile input cannot cause unbounded work.
func (r *Reader) Vector(elem func(*Reader)) {
	sub := r.Sub()
	for !sub.Empty() {
		before := sub.Len()
		elem(sub)
		if *r.err == nil && sub.Len() == before {
			r.Fail(ErrNoProgress)
		}
	}
}
