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
}

func (s *CipherSuite) newExpander(secret []byte) expander {
	return expander{mac: hmac.New(hashFunc(s.Hash), secret)}
}

// expand is HKDF-Expand(secret, info, length).
func (e *expander) expand(info []byte, length int) ([]byte, error) {
	n := e.mac.Size()
	if length < 0 || length > 255*n {
		return nil, fmt.Errorf("mls: HKDF-Expand length %d out of range", length)
	}
	// T(1) | T(2) | ... is written in place; the tail past length is
	// zeroed, since it is key material that nobody else would wipe.
	out := make([]byte, 0, (length+n-1)/n*n)
	var prev []byte
	for i := 1; len(out) < length; i++ {
		if e.used {
			e.mac.Reset()
		}
		e.used = true
		e.mac.Write(prev)
		e.mac.Write(info)
		e.mac.Write([]byte{byte(i)})
		start := len(out)
		out = e.mac.Sum(out)
		prev = out[start:]
	}
	clear(out[length:])
	return out[:length:length], nil
}

// expandWithLabel is ExpandWithLabel(secret, label, context, length).
func (e *expander) expandWithLabel(label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("mls: ExpandWithLabel length %d out of range", length)
	}
	// KDFLabel is built in one buffer, on the stack when it is short: the
	// key schedule, the secret tree and TreeKEM call this dozens of times
	// per epoch.
	var stack [128]byte
	info := binary.BigEndian.AppendUint16(stack[:0], uint16(length))
	info, ok1 := wire.AppendVarint(info, uint64(len(labelPrefix)+len(label)))
	info = append(append(info, labelPrefix...), label...)
	info, ok2 := wire.AppendVarint(info, uint64(len(context)))
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("mls: ExpandWithLabel: %w", wire.ErrTooLong)
	}
	info = append(info, context...)
	return e.expand(info, length)
}

// deriveSecret is DeriveSecret(secret, label).
func (e *expander) deriveSecret(label string) ([]byte, error) {
	return e.expandWithLabel(label, nil, e.mac.Size())
}
