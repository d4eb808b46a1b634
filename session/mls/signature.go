package mls

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Signatures for every suite, encoded as RFC 9420 section 5.1.2 and the
// interop vectors prescribe.
//
//	scheme       library             private key               public key         signature
//	Ed25519      crypto/ed25519      32-byte RFC 8032 seed     32 bytes           64 bytes
//	ECDSA P-xxx  crypto/ecdsa        big-endian scalar, field  uncompressed point DER (r, s)
//	             (SHA-256/384/512)   length (32/48/66 bytes)*  (65/97/133 bytes)
//	Ed448        circl sign/ed448    57-byte RFC 8032 seed     57 bytes           114 bytes
//	ML-DSA-65    circl sign/mldsa65  32-byte FIPS 204 seed ξ   1952 bytes         3309 bytes
//
// (*) Shorter, minimal big-endian encodings are accepted on input; see
// ecdsaParams.parsePrivate.
//
// Ed448 is pure Ed448 with an empty context, and ML-DSA-65 pure ML-DSA with
// an empty context, as TLS 1.3 (RFC 8446, draft-ietf-tls-mldsa) uses them.
// ML-DSA private keys are kept as the seed rather than the 4032-byte
// expanded key: it is what FIPS 204 KeyGen starts from, what the IETF's
// ML-DSA key formats recommend, and the expanded key is recomputed from it
// in well under a millisecond. ML-DSA signing is hedged (randomized), the
// FIPS 204 default; ECDSA signing is randomized by crypto/ecdsa, which since
// Go 1.26 always draws from crypto/rand whatever io.Reader it is given.
//
// ECDSA verification uses crypto/ecdsa.VerifyASN1, which accepts only DER:
// trailing data, non-minimal integers, negative integers and long-form
// lengths where the short form fits are all rejected. It does accept either
// of s and n-s (ECDSA signatures are malleable and MLS does not ask for
// low-s), so never use a signature as an identifier.

var errBadSignature = errors.New("mls: invalid signature")

type ecdsaParams struct {
	curve elliptic.Curve
	hash  crypto.Hash
}

func (s *CipherSuite) ecdsaParams() (ecdsaParams, bool) {
	switch s.Signature {
	case SigECDSAP256SHA256:
		return ecdsaParams{elliptic.P256(), crypto.SHA256}, true
	case SigECDSAP384SHA384:
		return ecdsaParams{elliptic.P384(), crypto.SHA384}, true
	case SigECDSAP521SHA512:
		return ecdsaParams{elliptic.P521(), crypto.SHA512}, true
	}
	return ecdsaParams{}, false
}

// parsePrivate parses an ECDSA private key. The vectors' format is the
// fixed-length Field-Element-to-Octet-String encoding, but some MLS stacks
// write the scalar as a minimal big-endian integer (the official
// message-protection and passive-client vectors hold 65-byte P-521 keys), so
// shorter encodings are accepted too and left-padded first. We always emit
// the fixed length.
func (p ecdsaParams) parsePrivate(priv []byte) (*ecdsa.PrivateKey, error) {
	d, err := leftPadScalar(priv, (p.curve.Params().BitSize+7)/8, "ECDSA")
	if err != nil {
		return nil, err
	}
	defer zero(d)
	k, err := ecdsa.ParseRawPrivateKey(p.curve, d)
	if err != nil {
		return nil, fmt.Errorf("mls: invalid ECDSA private key: %w", err)
	}
	return k, nil
}

// leftPadScalar copies a big-endian scalar of at most size bytes into a
// fresh size-byte buffer, which the caller zeroes after use.
func leftPadScalar(k []byte, size int, what string) ([]byte, error) {
	if len(k) == 0 || len(k) > size {
		return nil, fmt.Errorf("mls: %s private key is %d bytes, want 1 to %d", what, len(k), size)
	}
	out := make([]byte, size)
	copy(out[size-len(k):], k)
	return out, nil
}

func (p ecdsaParams) digest(msg []byte) []byte {
	h := p.hash.New()
	h.Write(msg)
	return h.Sum(nil)
}

func (s *CipherSuite) errUnsupportedSignature() error {
	return fmt.Errorf("mls: cipher suite %s: unsupported signature scheme %#04x", s.Name, uint16(s.Signature))
}

// zeroECDSAKey clears the scalar crypto/ecdsa exposes. The library keeps its
// own copy, out of our reach, so this is best effort only.
func zeroECDSAKey(k *ecdsa.PrivateKey) {
	if k != nil && k.D != nil {
		clear(k.D.Bits())
	}
}

// zeroMLDSAKey overwrites the expanded ML-DSA key (s1, s2, t0 and the
// signing seeds) that CIRCL computed from our seed.
func zeroMLDSAKey(k *mldsa65.PrivateKey) {
	if k != nil {
		*k = mldsa65.PrivateKey{}
	}
}

// GenerateSignatureKeyPair returns a fresh key pair for the suite's
// signature scheme, in the formats listed above.
func (s *CipherSuite) GenerateSignatureKeyPair() (priv, pub []byte, err error) {
	switch s.Signature {
	case SigEd25519:
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: generating Ed25519 key: %w", err)
		}
		priv = append([]byte(nil), sk.Seed()...)
		zero(sk)
		return priv, pk, nil
	case SigEd448:
		pk, sk, err := ed448.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: generating Ed448 key: %w", err)
		}
		priv = append([]byte(nil), sk.Seed()...)
		zero(sk)
		return priv, pk, nil
	case SigMLDSA65:
		priv = make([]byte, mldsa65.SeedSize)
		if _, err := rand.Read(priv); err != nil {
			return nil, nil, fmt.Errorf("mls: generating ML-DSA-65 key: %w", err)
		}
		pub, err = s.SignaturePublicKey(priv)
		if err != nil {
			zero(priv)
			return nil, nil, err
		}
		return priv, pub, nil
	}
	if p, ok := s.ecdsaParams(); ok {
		k, err := ecdsa.GenerateKey(p.curve, rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: generating ECDSA key: %w", err)
		}
		defer zeroECDSAKey(k)
		if priv, err = k.Bytes(); err != nil {
			return nil, nil, fmt.Errorf("mls: encoding ECDSA private key: %w", err)
		}
		if pub, err = k.PublicKey.Bytes(); err != nil {
			zero(priv)
			return nil, nil, fmt.Errorf("mls: encoding ECDSA public key: %w", err)
		}
		return priv, pub, nil
	}
	return nil, nil, s.errUnsupportedSignature()
}

// signingKey is a signature private key parsed once for several
// signatures: the Ed25519/Ed448 expanded key (a scalar base multiplication
// away from the seed), the ML-DSA expanded key or the ECDSA key, and the
// public key that goes with it. Parsing is what costs: an Ed25519 seed
// expansion is about as expensive as a signature, an ML-DSA expansion more.
// wipe clears it.
type signingKey struct {
	suite *CipherSuite
	pub   []byte
	ed    ed25519.PrivateKey
	ed448 ed448.PrivateKey
	mldsa *mldsa65.PrivateKey
	ecdsa *ecdsa.PrivateKey
}

// newSigningKey parses priv, in the formats listed above.
func (s *CipherSuite) newSigningKey(priv []byte) (k *signingKey, err error) {
	tag := signaturePubTag(s, priv)
	if s.Signature == SigEd25519 && len(priv) == ed25519.SeedSize {
		if pub := cachedSignaturePub(tag); pub != nil {
			sk := make(ed25519.PrivateKey, 0, ed25519.PrivateKeySize)
			sk = append(append(sk, priv...), pub...)
			return &signingKey{suite: s, ed: sk, pub: bytes.Clone(pub)}, nil
		}
	}
	if k, err = s.parseSigningKey(priv); err != nil {
		return nil, err
	}
	rememberSignaturePub(tag, k.pub)
	return k, nil
}

func (s *CipherSuite) parseSigningKey(priv []byte) (k *signingKey, err error) {
	defer recoverAsError(&err, "parsing signature private key")
	countOp("sig.expand")
	k = &signingKey{suite: s}
	switch s.Signature {
	case SigEd25519:
		if len(priv) != ed25519.SeedSize {
			return nil, fmt.Errorf("mls: Ed25519 private key must be %d bytes, got %d", ed25519.SeedSize, len(priv))
		}
		k.ed = ed25519.NewKeyFromSeed(priv)
		k.pub = append([]byte(nil), k.ed.Public().(ed25519.PublicKey)...)
		return k, nil
	case SigEd448:
		if len(priv) != ed448.SeedSize {
			return nil, fmt.Errorf("mls: Ed448 private key must be %d bytes, got %d", ed448.SeedSize, len(priv))
		}
		k.ed448 = ed448.NewKeyFromSeed(priv)
		k.pub = append([]byte(nil), k.ed448.Public().(ed448.PublicKey)...)
		return k, nil
	case SigMLDSA65:
		pk, sk, err := mldsa65FromSeed(priv)
		if err != nil {
			return nil, err
		}
		k.mldsa, k.pub = sk, pk.Bytes()
		return k, nil
	}
	if p, ok := s.ecdsaParams(); ok {
		sk, err := p.parsePrivate(priv)
		if err != nil {
			return nil, err
		}
		point, err := sk.PublicKey.Bytes()
		if err != nil {
			zeroECDSAKey(sk)
			return nil, fmt.Errorf("mls: encoding ECDSA public key: %w", err)
		}
		k.ecdsa, k.pub = sk, point
		return k, nil
	}
	return nil, s.errUnsupportedSignature()
}

// wipe clears the parsed private key.
func (k *signingKey) wipe() {
	if k == nil {
		return
	}
	zero(k.ed)
	zero(k.ed448)
	zeroMLDSAKey(k.mldsa)
	zeroECDSAKey(k.ecdsa)
	k.ed, k.ed448, k.mldsa, k.ecdsa = nil, nil, nil, nil
}

// sign is Signature.Sign(priv, msg) with the parsed key.
func (k *signingKey) sign(msg []byte) (sig []byte, err error) {
	defer recoverAsError(&err, "signing")
	countOp("sig.sign")
	countSigned("sig.sign", len(msg))
	switch {
	case k.ed != nil:
		return ed25519.Sign(k.ed, msg), nil
	case k.ed448 != nil:
		return ed448.Sign(k.ed448, msg, ""), nil
	case k.mldsa != nil:
		sig = make([]byte, mldsa65.SignatureSize)
		if err := mldsa65.SignTo(k.mldsa, msg, nil, true, sig); err != nil {
			return nil, fmt.Errorf("mls: ML-DSA-65 signing: %w", err)
		}
		return sig, nil
	case k.ecdsa != nil:
		p, _ := k.suite.ecdsaParams()
		der, err := ecdsa.SignASN1(rand.Reader, k.ecdsa, p.digest(msg))
		if err != nil {
			return nil, fmt.Errorf("mls: ECDSA signing: %w", err)
		}
		return der, nil
	}
	return nil, errors.New("mls: signing with a wiped key")
}

// SignaturePublicKey returns the public key of a signature private key.
func (s *CipherSuite) SignaturePublicKey(priv []byte) (pub []byte, err error) {
	tag := signaturePubTag(s, priv)
	if pub := cachedSignaturePub(tag); pub != nil {
		return bytes.Clone(pub), nil
	}
	k, err := s.parseSigningKey(priv)
	if err != nil {
		return nil, err
	}
	k.wipe()
	rememberSignaturePub(tag, k.pub)
	return k.pub, nil
}

func mldsa65FromSeed(priv []byte) (*mldsa65.PublicKey, *mldsa65.PrivateKey, error) {
	if len(priv) != mldsa65.SeedSize {
		return nil, nil, fmt.Errorf("mls: ML-DSA-65 private key (seed) must be %d bytes, got %d", mldsa65.SeedSize, len(priv))
	}
	var seed [mldsa65.SeedSize]byte
	copy(seed[:], priv)
	pk, sk := mldsa65.NewKeyFromSeed(&seed)
	zero(seed[:])
	return pk, sk, nil
}

// Sign is Signature.Sign(priv, msg) of the suite's scheme. MLS code signs
// through SignWithLabel; Sign is the raw primitive underneath.
func (s *CipherSuite) Sign(priv, msg []byte) (sig []byte, err error) {
	k, err := s.newSigningKey(priv)
	if err != nil {
		return nil, err
	}
	defer k.wipe()
	return k.sign(msg)
}

// Verify is Signature.Verify(pub, msg, sig): nil if sig is a valid signature
// of msg under pub, an error otherwise, including for malformed keys.
func (s *CipherSuite) Verify(pub, msg, sig []byte) (err error) {
	defer recoverAsError(&err, "verifying signature")
	countOp("sig.verify")
	countSigned("sig.verify", len(msg))
	switch s.Signature {
	case SigEd25519:
		// ed25519.Verify panics on a public key of the wrong length.
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("mls: Ed25519 public key must be %d bytes, got %d", ed25519.PublicKeySize, len(pub))
		}
		if !ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
			return errBadSignature
		}
		return nil
	case SigEd448:
		if len(pub) != ed448.PublicKeySize {
			return fmt.Errorf("mls: Ed448 public key must be %d bytes, got %d", ed448.PublicKeySize, len(pub))
		}
		if !ed448.Verify(ed448.PublicKey(pub), msg, sig, "") {
			return errBadSignature
		}
		return nil
	case SigMLDSA65:
		var pk mldsa65.PublicKey
		if err := pk.UnmarshalBinary(pub); err != nil {
			return fmt.Errorf("mls: invalid ML-DSA-65 public key: %w", err)
		}
		if !mldsa65.Verify(&pk, msg, nil, sig) {
			return errBadSignature
		}
		return nil
	}
	if p, ok := s.ecdsaParams(); ok {
		pk, err := ecdsa.ParseUncompressedPublicKey(p.curve, pub)
		if err != nil {
			return fmt.Errorf("mls: invalid ECDSA public key: %w", err)
		}
		if !ecdsa.VerifyASN1(pk, p.digest(msg), sig) {
			return errBadSignature
		}
		return nil
	}
	return s.errUnsupportedSignature()
}
