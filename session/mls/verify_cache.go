package mls

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// verifiedCache remembers the last few public-key checks that succeeded, so
// that checking the same bytes again costs a SHA-256 instead of a signature
// verification or a KEM public-key parse. RFC 9420 makes a KeyPackage and
// its leaf node be verified where it is received and again when the Add
// proposal carrying it is applied; the bytes are the same, and so is the
// answer. An entry is the SHA-256 of everything the check depends on
// (kind, suite, key, message, signature; each length-prefixed), so only
// identical inputs can hit, and only successes are remembered: a failed
// check is always recomputed. Everything hashed is public.
//
// The cache is shared by all groups of the process; it is a fixed ring of
// verifiedCacheSize entries, so it costs the same memory however many
// sessions there are.
const verifiedCacheSize = 64

type verifiedKey [sha256.Size]byte

var verified struct {
	mu   sync.Mutex
	ring [verifiedCacheSize]verifiedKey
	used [verifiedCacheSize]bool
	next int
}

const (
	kindSignature byte = 1 + iota
	kindHPKEPublicKey
)

func verifiedDigest(kind byte, suite CipherSuiteID, parts ...[]byte) verifiedKey {
	h := sha256.New()
	var hdr [3]byte
	hdr[0] = kind
	binary.BigEndian.PutUint16(hdr[1:], uint16(suite))
	h.Write(hdr[:])
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var k verifiedKey
	h.Sum(k[:0])
	return k
}

func isVerified(k verifiedKey) bool {
	verified.mu.Lock()
	defer verified.mu.Unlock()
	for i := range verified.ring {
		if verified.used[i] && verified.ring[i] == k {
			return true
		}
	}
	return false
}

func rememberVerified(k verifiedKey) {
	verified.mu.Lock()
	verified.ring[verified.next] = k
	verified.used[verified.next] = true
	verified.next = (verified.next + 1) % verifiedCacheSize
	verified.mu.Unlock()
}
