package mls

import (
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
	"fmt"
)

// HPKE in base mode (RFC 9180 section 5.1.1) for every suite.
//
// Go's crypto/hpke serves every KEM except DHKEM(X448): DHKEM over X25519,
// P-256, P-384 and P-521, ML-KEM-768 and X-Wing (MLKEM768-X25519), the
// last two as draft-ietf-hpke-pq defines them, key derivation included.
// crypto/hpke's KEM interface cannot be implemented outside the standard
// library, so X448 takes a separate route through CIRCL (hpke_x448.go).
//
// Keys cross this API as bytes: private keys in SerializePrivateKey form and
// public keys in SerializePublicKey form, which is what RFC 9420 puts on the
// wire and what the interop vectors hold. Notable consequences:
//   - X25519 (and, for consistency, X448) private keys come out clamped, as
//     RFC 9180 section 7.1.2 requires; other MLS stacks often emit them
//     unclamped. Both forms decode to the same key, so compare HPKE key pairs
//     by public key, never by private key bytes.
//   - NIST-curve private keys are written as Nsk-byte scalars but read in
//     shorter minimal encodings too (see stdPrivateKey).
//   - ML-KEM-768 private keys are the 64-byte seed d||z and X-Wing private
//     keys the 32-byte seed, the formats draft-ietf-hpke-pq serializes.
//
// Randomness: Go 1.26's crypto ignores caller-supplied io.Readers and always
// draws from crypto/rand, so none of these functions take one; CIRCL is
// handed crypto/rand.Reader explicitly.

// errHPKEDecrypt hides why a decryption failed: a bad KEM output, a wrong
// key and a forged ciphertext must look alike to the sender.
var errHPKEDecrypt = errors.New("mls: HPKE decryption failed")

// stdKEM returns crypto/hpke's KEM for the suite, or false if the suite's KEM
// is not one crypto/hpke implements.
func (s *CipherSuite) stdKEM() (hpke.KEM, bool) {
	switch s.KEMID {
	case kemDHKEMP256:
		return hpke.DHKEM(ecdh.P256()), true
	case kemDHKEMP384:
		return hpke.DHKEM(ecdh.P384()), true
	case kemDHKEMP521:
		return hpke.DHKEM(ecdh.P521()), true
	case kemDHKEMX25519:
		return hpke.DHKEM(ecdh.X25519()), true
	case kemMLKEM768:
		return hpke.MLKEM768(), true
	case kemMLKEM768X25519:
		return hpke.MLKEM768X25519(), true
	}
	return nil, false
}

// stdKDFAEAD returns the HPKE KDF and AEAD of a suite served by crypto/hpke.
func (s *CipherSuite) stdKDFAEAD() (hpke.KDF, hpke.AEAD, error) {
	kdf, err := hpke.NewKDF(s.KDFID)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE KDF %#04x: %w", s.KDFID, err)
	}
	aead, err := hpke.NewAEAD(s.AEADID)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE AEAD %#04x: %w", s.AEADID, err)
	}
	return kdf, aead, nil
}

// stdPrivateKey deserializes a private key for a crypto/hpke KEM. For the
// NIST-curve DHKEMs it also takes scalars shorter than Nsk, left-padding
// them: some MLS stacks serialize the scalar as a minimal big-endian integer
// (the official passive-client vectors hold 65-byte P-521 keys) where RFC
// 9180 asks for Nsk bytes. crypto/ecdh copies the padded buffer, so it is
// zeroed here.
func (s *CipherSuite) stdPrivateKey(kem hpke.KEM, priv []byte) (hpke.PrivateKey, error) {
	if n := s.nistScalarSize(); n > 0 && len(priv) < n {
		padded, err := leftPadScalar(priv, n, "HPKE")
		if err != nil {
			return nil, err
		}
		defer zero(padded)
		priv = padded
	}
	countOp("hpke.importPriv")
	sk, err := kem.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("mls: invalid HPKE private key: %w", err)
	}
	return sk, nil
}

// nistScalarSize is Nsk for the NIST-curve DHKEMs and 0 for other KEMs.
func (s *CipherSuite) nistScalarSize() int {
	switch s.KEMID {
	case kemDHKEMP256:
		return 32
	case kemDHKEMP384:
		return 48
	case kemDHKEMP521:
		return 66
	}
	return 0
}

func (s *CipherSuite) errUnsupportedKEM() error {
	return fmt.Errorf("mls: cipher suite %s: unsupported HPKE KEM %#04x", s.Name, s.KEMID)
}

// GenerateHPKEKeyPair returns a fresh HPKE key pair for the suite's KEM.
func (s *CipherSuite) GenerateHPKEKeyPair() (priv, pub []byte, err error) {
	countOp("hpke.generate")
	if s.KEMID == kemDHKEMX448 {
		return x448GenerateKeyPair()
	}
	kem, ok := s.stdKEM()
	if !ok {
		return nil, nil, s.errUnsupportedKEM()
	}
	sk, err := kem.GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: generating HPKE key: %w", err)
	}
	return stdKeyPairBytes(sk)
}

// DeriveHPKEKeyPair is the KEM's DeriveKeyPair(ikm). MLS feeds it Nh-byte
// secrets, which for P-521 (Nh 64 < Nsk 66) and X448 (Nh 64 != Nsk 56) is
// not the length RFC 9180 suggests; crypto/hpke accepts any length, and the
// X448 derivation here does too.
func (s *CipherSuite) DeriveHPKEKeyPair(ikm []byte) (priv, pub []byte, err error) {
	priv, pub, _, err = s.deriveHPKEKey(ikm)
	return priv, pub, err
}

// deriveHPKEKey is DeriveHPKEKeyPair also returning the parsed private key
// (nil for X448), so that a later decryption need not parse it again: for
// X25519 parsing recomputes the public key, a scalar multiplication, and
// for X-Wing and ML-KEM it redoes the key generation.
func (s *CipherSuite) deriveHPKEKey(ikm []byte) (priv, pub []byte, sk hpke.PrivateKey, err error) {
	countOp("hpke.derive")
	if s.KEMID == kemDHKEMX448 {
		priv, pub, err = x448DeriveKeyPair(ikm)
		return priv, pub, nil, err
	}
	kem, ok := s.stdKEM()
	if !ok {
		return nil, nil, nil, s.errUnsupportedKEM()
	}
	// crypto/hpke panics instead of returning DeriveKeyPairError when four
	// NIST-curve candidates in a row are rejected (probability < 2^-128).
	// RFC 9180 section 7.1.3 allows an error there, which is what we give.
	defer recoverAsError(&err, "deriving HPKE key pair")
	sk, err = kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("mls: deriving HPKE key pair: %w", err)
	}
	priv, pub, err = stdKeyPairBytes(sk)
	if err != nil {
		return nil, nil, nil, err
	}
	return priv, pub, sk, nil
}

func stdKeyPairBytes(sk hpke.PrivateKey) (priv, pub []byte, err error) {
	priv, err = sk.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: serializing HPKE private key: %w", err)
	}
	return priv, sk.PublicKey().Bytes(), nil
}

// HPKEPublicKey returns the public key of a serialized HPKE private key.
func (s *CipherSuite) HPKEPublicKey(priv []byte) ([]byte, error) {
	pub, _, err := s.hpkePublicKey(priv)
	return pub, err
}

// hpkePublicKey is HPKEPublicKey also returning the parsed key (nil for
// X448).
func (s *CipherSuite) hpkePublicKey(priv []byte) ([]byte, hpke.PrivateKey, error) {
	countOp("hpke.pubFromPriv")
	if s.KEMID == kemDHKEMX448 {
		pub, err := x448PublicKey(priv)
		return pub, nil, err
	}
	kem, ok := s.stdKEM()
	if !ok {
		return nil, nil, s.errUnsupportedKEM()
	}
	sk, err := s.stdPrivateKey(kem, priv)
	if err != nil {
		return nil, nil, err
	}
	return sk.PublicKey().Bytes(), sk, nil
}

// SealBase is RFC 9180's single-shot SealBase(pkR, info, aad, pt): it
// returns the KEM output (enc) and the ciphertext separately, as MLS's
// HPKECiphertext carries them.
func (s *CipherSuite) SealBase(pub, info, aad, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	defer recoverAsError(&err, "HPKE seal")
	countOp("hpke.seal")
	if s.KEMID == kemDHKEMX448 {
		return s.x448SealBase(pub, info, aad, plaintext)
	}
	kem, ok := s.stdKEM()
	if !ok {
		return nil, nil, s.errUnsupportedKEM()
	}
	kdf, aead, err := s.stdKDFAEAD()
	if err != nil {
		return nil, nil, err
	}
	pk, err := s.stdPublicKey(kem, pub)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: invalid HPKE public key: %w", err)
	}
	enc, sender, err := hpke.NewSender(pk, kdf, aead, info)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE encapsulation: %w", err)
	}
	ct, err := sender.Seal(aad, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

// OpenBase is RFC 9180's single-shot OpenBase(enc, skR, info, aad, ct).
// A malformed private key is reported as such; every failure that depends on
// the sender's input is the same errHPKEDecrypt.
func (s *CipherSuite) OpenBase(kemOutput, priv, info, aad, ciphertext []byte) (pt []byte, err error) {
	return s.openBase(kemOutput, priv, nil, info, aad, ciphertext)
}

// openBase is OpenBase with, if sk is not nil, priv already parsed.
func (s *CipherSuite) openBase(kemOutput, priv []byte, sk hpke.PrivateKey, info, aad, ciphertext []byte) (pt []byte, err error) {
	defer recoverAsError(&err, "HPKE open")
	countOp("hpke.open")
	if s.KEMID == kemDHKEMX448 {
		return s.x448OpenBase(kemOutput, priv, info, aad, ciphertext)
	}
	kem, ok := s.stdKEM()
	if !ok {
		return nil, s.errUnsupportedKEM()
	}
	kdf, aead, err := s.stdKDFAEAD()
	if err != nil {
		return nil, err
	}
	if sk == nil {
		if sk, err = s.stdPrivateKey(kem, priv); err != nil {
			return nil, err
		}
	}
	recipient, err := hpke.NewRecipient(kemOutput, sk, kdf, aead, info)
	if err != nil {
		return nil, errHPKEDecrypt
	}
	pt, err = recipient.Open(aad, ciphertext)
	if err != nil {
		return nil, errHPKEDecrypt
	}
	return pt, nil
}

// recoverAsError turns a panic into an error. It is a backstop for the
// entry points that parse peer-supplied keys, KEM outputs and signatures:
// the libraries below are meant to return errors on bad input, but a panic
// slipping through one of them must not take the daemon down.
func recoverAsError(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("mls: %s: internal failure: %v", what, r)
	}
}
