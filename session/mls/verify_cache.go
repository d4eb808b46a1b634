package mls

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
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

// ed25519Pubs remembers the public keys of the last few Ed25519 seeds
// expanded, so that a long-lived identity key (every session of a daemon
// signs with the same one) is not expanded again for every group: an
// expansion is a scalar base multiplication, as dear as a signature. An
// Ed25519 private key in Go's form is seed || public key, so with the
// public key known the expansion is a copy. Entries are named by an HMAC of
// the seed under a random per-process key, so the cache holds nothing that
// helps recover a seed; a hit means the very seed whose public key we
// computed before (an ed25519.PrivateKey with a mismatched public half would
// make signatures that leak the key, which is why only keys computed here
// are ever used).
const ed25519PubCacheSize = 8

var ed25519Pubs struct {
	mu   sync.Mutex
	mac  []byte
	tags [ed25519PubCacheSize][sha256.Size]byte
	pubs [ed25519PubCacheSize][ed25519.PublicKeySize]byte
	used [ed25519PubCacheSize]bool
	next int
}

// newEd25519Key is ed25519.NewKeyFromSeed(seed) through the cache.
func newEd25519Key(seed []byte) ed25519.PrivateKey {
	c := &ed25519Pubs
	c.mu.Lock()
	if c.mac == nil {
		c.mac = make([]byte, sha256.Size)
		rand.Read(c.mac)
	}
	m := hmac.New(sha256.New, c.mac)
	c.mu.Unlock()
	m.Write(seed)
	var tag [sha256.Size]byte
	m.Sum(tag[:0])
	c.mu.Lock()
	for i := range c.tags {
		if c.used[i] && hmac.Equal(c.tags[i][:], tag[:]) {
			k := make(ed25519.PrivateKey, 0, ed25519.PrivateKeySize)
			k = append(append(k, seed...), c.pubs[i][:]...)
			c.mu.Unlock()
			return k
		}
	}
	c.mu.Unlock()
	k := ed25519.NewKeyFromSeed(seed)
	countOp("sig.expand")
	c.mu.Lock()
	c.tags[c.next] = tag
	copy(c.pubs[c.next][:], k[ed25519.SeedSize:])
	c.used[c.next] = true
	c.next = (c.next + 1) % ed25519PubCacheSize
	c.mu.Unlock()
	return k
}
