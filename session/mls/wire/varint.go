package wire

import "errors"

// MaxVarint is the largest length a vector header can carry (2^30 - 1).
const MaxVarint = 1<<30 - 1

var (
	ErrTruncated    = errors.New("wire: truncated input")
	ErrVarintPrefix = errors.New("wire: variable-length integer with reserved prefix 11")
	ErrNonMinimal   = errors.New("wire: variable-length integer not minimally encoded")
	ErrTooLong      = errors.New("wire: vector longer than 2^30-1 bytes")
	ErrOptional     = errors.New("wire: optional presence octet is neither 0 nor 1")
	ErrTrailing     = errors.New("wire: trailing bytes after value")
	ErrNoProgress   = errors.New("wire: vector element of zero length")
	ErrBadLength    = errors.New("wire: vector length exceeds remaining input")
)

// AppendVarint appends the minimal encoding of v. It reports false when v does
// not fit in 30 bits.
func AppendVarint(b []byte, v uint64) ([]byte, bool) {
	switch {
	case v < 1<<6:
		return append(b, byte(v)), true
	case v < 1<<14:
		return append(b, 0x40|byte(v>>8), byte(v)), true
	case v < 1<<30:
		return append(b, 0x80|byte(v>>24), byte(v>>16), byte(v>>8), byte(v)), true
	}
	return b, false
}

// VarintLen is the number of bytes the minimal encoding of v takes, or 0 if v
// cannot be encoded.
func VarintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	}
	return 0
}

// ParseVarint decodes a variable-length integer from the front of b and
// returns it with the number of bytes it took.
func ParseVarint(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, ErrTruncated
	}
	prefix := b[0] >> 6
	if prefix == 3 {
		return 0, 0, ErrVarintPrefix
	}
	n = 1 << prefix
	if len(b) < n {
		return 0, 0, ErrTruncated
	}
	v = uint64(b[0] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[i])
	}
	if prefix >= 1 && v < 1<<(8*(n/2)-2) {
		return 0, 0, ErrNonMinimal
	}
	return v, n, nil
}
