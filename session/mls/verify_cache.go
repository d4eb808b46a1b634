package mls

import (
	"bytes"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
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

// publicKeys caches parsed HPKE public keys of the crypto/hpke KEMs, by the
// digest of suite and encoding: the KEM checks a key when its KeyPackage or
// leaf arrives and encrypts to it soon after, and parsing an ML-KEM
// encapsulation key (expanding its matrix) costs a good part of an
// encapsulation. Public keys only, so nothing here is secret.
const publicKeyCacheSize = 16

var publicKeys struct {
	mu   sync.Mutex
	keys [publicKeyCacheSize]verifiedKey
	pubs [publicKeyCacheSize]hpke.PublicKey
	next int
}

// stdPublicKey parses pub for kem, the suite's crypto/hpke KEM, through
// the cache.
func (s *CipherSuite) stdPublicKey(kem hpke.KEM, pub []byte) (hpke.PublicKey, error) {
	k := verifiedDigest(kindHPKEPublicKey, s.ID, pub)
	publicKeys.mu.Lock()
	for i := range publicKeys.keys {
		if publicKeys.pubs[i] != nil && publicKeys.keys[i] == k {
			pk := publicKeys.pubs[i]
			publicKeys.mu.Unlock()
			return pk, nil
		}
	}
	publicKeys.mu.Unlock()
	countOp("hpke.parsePub")
	pk, err := kem.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	publicKeys.mu.Lock()
	publicKeys.keys[publicKeys.next] = k
	publicKeys.pubs[publicKeys.next] = pk
	publicKeys.next = (publicKeys.next + 1) % publicKeyCacheSize
	publicKeys.mu.Unlock()
	return pk, nil
}

// signaturePubs remembers the public keys of the last few signature private
// keys parsed, so that a long-lived identity key (every session of a daemon
// signs with the same one) is not expanded again for every session and
// group just to learn its public key. For Ed25519 this also saves the
// expansion before signing: an Ed25519 expansion is a scalar base
// multiplication, as dear as a signature, and Go's Ed25519 private key is
// seed || public key, so with the public key known it is a copy. Entries are
// named by an HMAC of the suite's signature scheme and the private key under
// a random per-process key, so the cache holds nothing that helps recover a
// private key; a hit means the very key whose public key we computed before
// (an Ed25519 private key with a mismatched public half would make
// signatures that leak the key, which is why only public keys computed here
// are ever used).
//
// A process has few identity keys of its own, but tests and the in-process
// benchmark run many peers in one process, so the cache holds up to
// signaturePubCacheSize keys and forgets an arbitrary one when full.
const signaturePubCacheSize = 256

var signaturePubs struct {
	mu sync.Mutex
	// mac is keyed once per process, under the lock for every tag: keying
	// an HMAC costs more than the tag of a 32-byte key.
	mac  hash.Hash
	pubs map[[sha256.Size]byte][]byte
}

func signaturePubTag(s *CipherSuite, priv []byte) [sha256.Size]byte {
	c := &signaturePubs
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mac == nil {
		key := make([]byte, sha256.Size)
		rand.Read(key)
		c.mac = hmac.New(sha256.New, key)
		zero(key)
	}
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], uint16(s.Signature))
	c.mac.Write(hdr[:])
	c.mac.Write(priv)
	var tag [sha256.Size]byte
	c.mac.Sum(tag[:0])
	// Back to the keyed state, which also overwrites the private key's
	// bytes still buffered in the hash.
	c.mac.Reset()
	return tag
}

// cachedSignaturePub returns the cached public key for tag, nil if none;
// the caller must not modify it.
func cachedSignaturePub(tag [sha256.Size]byte) []byte {
	c := &signaturePubs
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pubs[tag]
}

func rememberSignaturePub(tag [sha256.Size]byte, pub []byte) {
	c := &signaturePubs
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pubs == nil {
		c.pubs = make(map[[sha256.Size]byte][]byte)
	}
	if len(c.pubs) >= signaturePubCacheSize {
		for k := range c.pubs {
			delete(c.pubs, k)
			break
		}
	}
	c.pubs[tag] = bytes.Clone(pub)
}
