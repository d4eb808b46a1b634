package mls

import (
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/current-vpn/current/session/mls/wire"
)

// expander is HKDF-Expand (RFC 5869 section 2.3) under one secret, for
// several outputs. crypto/hkdf.Expand keys a new HMAC on every call (two
// compressions for the padded key, five allocations); the key schedule
// and the secret tree draw up to nine secrets from the same one, so the
// HMAC is keyed once here and crypto/hmac's Reset brings it back to the
// keyed state from a saved copy. That saved state is as secret as the key
// and crypto/hmac gives no way to erase it, which is also true of every
// HMAC crypto/hkdf makes: an expander lives only as long as the function
// that made it.
type expander struct {
	mac  hash.Hash
	used bool // mac has absorbed input since it was keyed
	// buf holds the info (and the block counter) of the current output.
	// Anything handed to mac.Write escapes to the heap, so a stack array
	// would be allocated on every call; this one is allocated once per
	// expander.
	buf []byte
}

func (s *CipherSuite) newExpander(secret []byte) expander {
	return expander{mac: hmac.New(hashFunc(s.Hash), secret)}
}

// expand is HKDF-Expand(secret, info, length).
func (e *expander) expand(info []byte, length int) ([]byte, error) {
	e.buf = append(e.buf[:0], info...)
	return e.expandBuf(length)
}

// expandBuf is HKDF-Expand(secret, e.buf, length).
func (e *expander) expandBuf(length int) ([]byte, error) {
	n := e.mac.Size()
	if length < 0 || length > 255*n {
		return nil, fmt.Errorf("mls: HKDF-Expand length %d out of range", length)
	}
	return e.expandTo(make([]byte, 0, (length+n-1)/n*n), length), nil
}

// expandTo writes HKDF-Expand(secret, e.buf, length) into out, which must
// be empty with room for length rounded up to whole hash outputs; the
// length must be in range.
func (e *expander) expandTo(out []byte, length int) []byte {
	// T(1) | T(2) | ... is written in place; the tail past length is
	// zeroed, since it is key material that nobody else would wipe.
	var prev []byte
	info := len(e.buf)
	for i := 1; len(out) < length; i++ {
		if e.used {
			e.mac.Reset()
		}
		e.used = true
		e.buf = append(e.buf[:info], byte(i))
		e.mac.Write(prev)
		e.mac.Write(e.buf)
		start := len(out)
		out = e.mac.Sum(out)
		prev = out[start:]
	}
	clear(out[length:])
	return out[:length:length]
}

// expandWithLabel is ExpandWithLabel(secret, label, context, length).
func (e *expander) expandWithLabel(label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("mls: ExpandWithLabel length %d out of range", length)
	}
	// KDFLabel = {uint16 length, opaque label<V>, opaque context<V>}; room
	// for the longest varint headers and the block counter.
	if err := e.kdfLabel(label, context, length); err != nil {
		return nil, err
	}
	return e.expandBuf(length)
}

// kdfLabel writes KDFLabel = {uint16 length, opaque label<V>, opaque
// context<V>} into e.buf, with room for the longest varint headers and
// the block counter.
func (e *expander) kdfLabel(label string, context []byte, length int) error {
	if e.buf == nil {
		e.buf = make([]byte, 0, 2+2*4+len(labelPrefix)+len(label)+len(context)+1+32)
	}
	b := binary.BigEndian.AppendUint16(e.buf[:0], uint16(length))
	b, ok1 := wire.AppendVarint(b, uint64(len(labelPrefix)+len(label)))
	b = append(append(b, labelPrefix...), label...)
	b, ok2 := wire.AppendVarint(b, uint64(len(context)))
	if !ok1 || !ok2 {
		return fmt.Errorf("mls: ExpandWithLabel: %w", wire.ErrTooLong)
	}
	e.buf = append(b, context...)
	return nil
}

// deriveSecret is DeriveSecret(secret, label).
func (e *expander) deriveSecret(label string) ([]byte, error) {
	return e.expandWithLabel(label, nil, e.mac.Size())
}

// deriveSecrets is DeriveSecret(secret, label) for each label, the
// outputs carved from one allocation (each with its capacity capped, so
// that none can grow into the next).
func (e *expander) deriveSecrets(labels ...string) ([][]byte, error) {
	n := e.mac.Size()
	block := make([]byte, n*len(labels))
	out := make([][]byte, len(labels))
	for i, label := range labels {
		// Only the KDFLabel is built here; the output goes into block.
		if err := e.kdfLabel(label, nil, n); err != nil {
			zero(block)
			return nil, err
		}
		out[i] = e.expandTo(block[i*n:i*n:(i+1)*n], n)
	}
	return out, nil
}
