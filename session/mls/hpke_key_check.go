package mls

import (
	"crypto/mlkem"
	"errors"
	"fmt"
)

// Checking an HPKE public key that is not encrypted to yet. A KeyPackage's
// leaf (RFC 9420 section 10.1) and every leaf of a ratchet tree must carry
// an encryption key valid for the suite, but nobody encrypts to a leaf's
// key until a commit with an UpdatePath, and a KeyPackage's init key is
// encrypted to once, by the Welcome. Parsing an ML-KEM encapsulation key
// with crypto/mlkem expands its public matrix from the seed in the key
// (nine SHAKE-128 samplings, a third of an encapsulation), work that only
// encapsulation needs. Validity itself is what FIPS 203 section 7.2 calls
// the encapsulation key check: the length, and every 12-bit coefficient
// of t reduced modulo q. crypto/mlkem refuses exactly those keys, so
// checking them here accepts and refuses what parsing would, and the
// parse is left to the encapsulation (through the cache of stdPublicKey).

// mlkemQ is the ML-KEM modulus q (FIPS 203 section 2.4).
const mlkemQ = 3329

// errMLKEMKey is the error of an encapsulation key that fails the check.
var errMLKEMKey = errors.New("mls: invalid ML-KEM-768 encapsulation key")

// checkMLKEM768EncapsulationKey is the encapsulation key check of FIPS 203
// (section 7.2) for ML-KEM-768: ek is 1,184 bytes, the 3 × 256 coefficients
// of t packed 12 bits each, then the 32-byte seed rho, and no coefficient
// is q or above.
func checkMLKEM768EncapsulationKey(ek []byte) error {
	if len(ek) != mlkem.EncapsulationKeySize768 {
		return fmt.Errorf("%w: %d bytes, want %d", errMLKEMKey, len(ek), mlkem.EncapsulationKeySize768)
	}
	t := ek[:len(ek)-32]
	for i := 0; i+3 <= len(t); i += 3 {
		d := uint32(t[i]) | uint32(t[i+1])<<8 | uint32(t[i+2])<<16
		if d&0xfff >= mlkemQ || d>>12 >= mlkemQ {
			return fmt.Errorf("%w: coefficient out of range", errMLKEMKey)
		}
	}
	return nil
}

// x25519PublicKeySize is the length of an X25519 public key; crypto/ecdh
// accepts any 32 bytes (RFC 7748 section 5 makes every string a valid
// u-coordinate).
const x25519PublicKeySize = 32

// checkUnparsedHPKEPublicKey checks pub without parsing it for the KEMs
// whose parse does more than validation, and reports whether it could:
// ML-KEM-768 and X-Wing (ML-KEM-768 || X25519, draft-connolly-cfrg-xwing-kem),
// and DHKEM(X25519), whose parse only copies the key. The NIST curves'
// keys are points that must be decoded to be checked, so they are not
// handled here.
func checkUnparsedHPKEPublicKey(s *CipherSuite, pub []byte) (handled bool, err error) {
	switch s.KEMID {
	case kemMLKEM768:
		return true, checkMLKEM768EncapsulationKey(pub)
	case kemMLKEM768X25519:
		if len(pub) != mlkem.EncapsulationKeySize768+x25519PublicKeySize {
			return true, fmt.Errorf("mls: X-Wing public key of %d bytes, want %d", len(pub), mlkem.EncapsulationKeySize768+x25519PublicKeySize)
		}
		return true, checkMLKEM768EncapsulationKey(pub[:mlkem.EncapsulationKeySize768])
	case kemDHKEMX25519:
		if len(pub) != x25519PublicKeySize {
			return true, fmt.Errorf("mls: X25519 public key of %d bytes, want %d", len(pub), x25519PublicKeySize)
		}
		return true, nil
	}
	return false, nil
}
