package mls

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"fmt"

	"github.com/cloudflare/circl/dh/x448"
	circlhpke "github.com/cloudflare/circl/hpke"
)

// DHKEM(X448, HKDF-SHA512) of RFC 9180 for suites 0x0004 and 0x0006.
//
// crypto/hpke has no X448 and its KEM interface is sealed, so CIRCL does
// the work: its hpke package runs encapsulation and the HPKE key schedule,
// its x448 package the scalar multiplication. Only DeriveKeyPair is written
// here, from RFC 9180 section 7.1.3 over the standard library's HKDF,
// because CIRCL's panics unless ikm is exactly Nsk (56) bytes and MLS
// derives HPKE keys from Nh (64) byte secrets.

const (
	x448Nsk     = x448.Size // also Npk and Nenc
	x448SuiteID = "KEM\x00\x21"
)

var errX448PrivSize = fmt.Errorf("mls: X448 HPKE private key must be %d bytes", x448Nsk)

// x448Clamp applies RFC 7748's decodeScalar448 masking, which RFC 9180
// section 7.1.2 requires SerializePrivateKey to apply. The public key does
// not change: X448 clamps the scalar before every multiplication anyway.
func x448Clamp(k []byte) {
	k[0] &= 252
	k[55] |= 128
}

// x448PublicKey is pk(sk): the X448 product of the scalar and the base point.
func x448PublicKey(priv []byte) ([]byte, error) {
	if len(priv) != x448Nsk {
		return nil, errX448PrivSize
	}
	var sk, pk x448.Key
	copy(sk[:], priv)
	x448.KeyGen(&pk, &sk)
	zero(sk[:])
	return pk[:], nil
}

func x448GenerateKeyPair() (priv, pub []byte, err error) {
	priv = make([]byte, x448Nsk)
	if _, err := rand.Read(priv); err != nil {
		return nil, nil, fmt.Errorf("mls: generating X448 HPKE key: %w", err)
	}
	x448Clamp(priv)
	pub, err = x448PublicKey(priv)
	if err != nil {
		zero(priv)
		return nil, nil, err
	}
	return priv, pub, nil
}

// x448DeriveKeyPair is DeriveKeyPair for X25519/X448 in RFC 9180 section
// 7.1.3: sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", Nsk),
// with the KEM's own KDF (HKDF-SHA512) and suite_id "KEM" || I2OSP(0x0021, 2).
func x448DeriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	labeledIKM := make([]byte, 0, len("HPKE-v1")+len(x448SuiteID)+len("dkp_prk")+len(ikm))
	labeledIKM = append(labeledIKM, "HPKE-v1"+x448SuiteID+"dkp_prk"...)
	labeledIKM = append(labeledIKM, ikm...)
	prk, err := hkdf.Extract(sha512.New, labeledIKM, nil)
	zero(labeledIKM)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: deriving X448 HPKE key: %w", err)
	}
	defer zero(prk)

	info := binary.BigEndian.AppendUint16(nil, x448Nsk)
	info = append(info, "HPKE-v1"+x448SuiteID+"sk"...)
	priv, err = hkdf.Expand(sha512.New, prk, string(info), x448Nsk)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: deriving X448 HPKE key: %w", err)
	}
	x448Clamp(priv)
	pub, err = x448PublicKey(priv)
	if err != nil {
		zero(priv)
		return nil, nil, err
	}
	return priv, pub, nil
}

// x448HPKESuite maps the MLS suite onto CIRCL's HPKE suite. The check comes
// first because circlhpke.NewSuite panics on identifiers it does not know.
func (s *CipherSuite) x448HPKESuite() (circlhpke.Suite, error) {
	kdf, aead := circlhpke.KDF(s.KDFID), circlhpke.AEAD(s.AEADID)
	if !kdf.IsValid() || !aead.IsValid() {
		return circlhpke.Suite{}, fmt.Errorf("mls: cipher suite %s: no X448 HPKE with KDF %#04x, AEAD %#04x", s.Name, s.KDFID, s.AEADID)
	}
	return circlhpke.NewSuite(circlhpke.KEM_X448_HKDF_SHA512, kdf, aead), nil
}

func (s *CipherSuite) x448SealBase(pub, info, aad, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	suite, err := s.x448HPKESuite()
	if err != nil {
		return nil, nil, err
	}
	pk, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: invalid X448 HPKE public key: %w", err)
	}
	sender, err := suite.NewSender(pk, info)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE encapsulation: %w", err)
	}
	// A low-order public key makes the DH output all zero, which CIRCL
	// reports here as an error, as RFC 9180 section 7.1.4 requires.
	enc, sealer, err := sender.Setup(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE encapsulation: %w", err)
	}
	ct, err := sealer.Seal(plaintext, aad)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

func (s *CipherSuite) x448OpenBase(kemOutput, priv, info, aad, ciphertext []byte) ([]byte, error) {
	suite, err := s.x448HPKESuite()
	if err != nil {
		return nil, err
	}
	if len(priv) != x448Nsk {
		return nil, errX448PrivSize
	}
	// CIRCL scalar-multiplies with clamping, which is DeserializePrivateKey's
	// clamping (RFC 9180 section 7.1.2), so unclamped keys from other stacks
	// work as is.
	sk, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("mls: invalid X448 HPKE private key: %w", err)
	}
	receiver, err := suite.NewReceiver(sk, info)
	if err != nil {
		return nil, errHPKEDecrypt
	}
	opener, err := receiver.Setup(kemOutput)
	if err != nil {
		return nil, errHPKEDecrypt
	}
	pt, err := opener.Open(ciphertext, aad)
	if err != nil {
		return nil, errHPKEDecrypt
	}
	return pt, nil
}
