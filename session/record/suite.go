package record

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"

	"golang.org/x/crypto/chacha20poly1305"
)

// AEAD names the record protection algorithm of a suite. The record layer
// keeps its own enumeration so it does not depend on the MLS engine; the
// session maps an MLS cipher suite onto it (see AEADFromHPKE).
type AEAD uint8

const (
	AES128GCM AEAD = iota + 1
	AES256GCM
	ChaCha20Poly1305
)

const (
	// ivLen is TLS 1.3's iv_length, max(8, N_MIN): 12 for all three AEADs.
	ivLen = 12
	// TagLen is the expansion of all three AEADs. Code relies on it being
	// the same for every suite so size checks need no per-suite lookup.
	TagLen = 16
)

// Hard limits on records protected under one key (RFC 9846 section 5.5).
const (
	// aesGCMRecordLimit is floor(2^24.5): the number of full-size records
	// AES-GCM may protect while keeping the AE advantage near 2^-57.
	aesGCMRecordLimit = 23726566
	// MaxRecords caps every key, ChaCha20-Poly1305 included, far below the
	// 64-bit wrap, and keeps datagram sequence numbers out of the top two
	// bits (receivers treat those as malformed).
	MaxRecords = 1 << 62
)

func (a AEAD) String() string {
	switch a {
	case AES128GCM:
		return "AES-128-GCM"
	case AES256GCM:
		return "AES-256-GCM"
	case ChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	}
	return "unknown AEAD"
}

// KeyLen is the AEAD's key length, TLS 1.3's key_length.
func (a AEAD) KeyLen() int {
	switch a {
	case AES128GCM:
		return 16
	case AES256GCM, ChaCha20Poly1305:
		return 32
	}
	return 0
}

// RecordLimit is the number of records one key may protect before it must be
// retired.
func (a AEAD) RecordLimit() uint64 {
	switch a {
	case AES128GCM, AES256GCM:
		return aesGCMRecordLimit
	case ChaCha20Poly1305:
		// RFC 9846: the sequence number would wrap before ChaCha20-Poly1305's
		// safety limit; our own cap applies.
		return MaxRecords
	}
	return 0
}

// AEADFromHPKE maps an HPKE AEAD identifier (RFC 9180 section 7.3), which is
// how MLS cipher suites name their AEAD, onto the record layer's AEAD.
func AEADFromHPKE(id uint16) (AEAD, bool) {
	switch id {
	case 0x0001:
		return AES128GCM, true
	case 0x0002:
		return AES256GCM, true
	case 0x0003:
		return ChaCha20Poly1305, true
	}
	return 0, false
}

// Suite is what the record layer needs from an MLS cipher suite: its AEAD and
// its hash, which is both Nh for the exports and the HKDF hash of
// HKDF-Expand-Label.
type Suite struct {
	AEAD AEAD
	Hash crypto.Hash
}

func (s Suite) valid() bool {
	if s.AEAD.KeyLen() == 0 {
		return false
	}
	switch s.Hash {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
		return s.Hash.Available()
	}
	return false
}

func (s Suite) newAEAD(key []byte) (cipher.AEAD, error) {
	switch s.AEAD {
	case AES128GCM, AES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, ErrInvalidArgument
}
