package mls

import (
	"crypto"
	"crypto/hkdf"
	"crypto/hmac"
	"fmt"
	"hash"

	"crypto/sha256"
	"crypto/sha512"
)

// CipherSuiteID is the two-byte MLS cipher suite code point.
type CipherSuiteID uint16

// The cipher suites of RFC 9420 section 17.1, and current's post-quantum
// suites from draft-ietf-mls-pq-ciphersuites. The draft leaves their code
// points as TBD, so until IANA assigns them we use the private-use range
// (0xF000-0xFFFF); these two constants are the only place they are declared.
const (
	MLS128DHKEMX25519AES128GCMSHA256Ed25519        CipherSuiteID = 0x0001
	MLS128DHKEMP256AES128GCMSHA256P256             CipherSuiteID = 0x0002
	MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519 CipherSuiteID = 0x0003
	MLS256DHKEMX448AES256GCMSHA512Ed448            CipherSuiteID = 0x0004
	MLS256DHKEMP521AES256GCMSHA512P521             CipherSuiteID = 0x0005
	MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448     CipherSuiteID = 0x0006
	MLS256DHKEMP384AES256GCMSHA384P384             CipherSuiteID = 0x0007

	// MLS128MLKEM768X25519AES128GCMSHA256Ed25519 is TBD1 of the PQ draft:
	// X-Wing hybrid KEM, the default suite of current.
	MLS128MLKEM768X25519AES128GCMSHA256Ed25519 CipherSuiteID = 0xF001
	// MLS192MLKEM768AES256GCMSHA384MLDSA65 is TBD10 of the PQ draft: pure
	// post-quantum, including the signatures.
	MLS192MLKEM768AES256GCMSHA384MLDSA65 CipherSuiteID = 0xF00A
)

// HPKE algorithm identifiers (RFC 9180 section 7, draft-ietf-hpke-pq).
const (
	kemDHKEMP256         = 0x0010
	kemDHKEMP384         = 0x0011
	kemDHKEMP521         = 0x0012
	kemDHKEMX25519       = 0x0020
	kemDHKEMX448         = 0x0021
	kemMLKEM768          = 0x0041
	kemMLKEM768X25519    = 0x647a
	kdfHKDFSHA256        = 0x0001
	kdfHKDFSHA384        = 0x0002
	kdfHKDFSHA512        = 0x0003
	aeadAES128GCM        = 0x0001
	aeadAES256GCM        = 0x0002
	aeadChaCha20Poly1305 = 0x0003
)

// SignatureScheme is the TLS 1.3 SignatureScheme code point of a suite's
// signature algorithm.
type SignatureScheme uint16

const (
	SigECDSAP256SHA256 SignatureScheme = 0x0403
	SigECDSAP384SHA384 SignatureScheme = 0x0503
	SigECDSAP521SHA512 SignatureScheme = 0x0603
	SigEd25519         SignatureScheme = 0x0807
	SigEd448           SignatureScheme = 0x0808
	SigMLDSA65         SignatureScheme = 0x0905
)

// CipherSuite bundles the algorithms of one MLS cipher suite: the KEM, KDF
// and AEAD of HPKE, a hash (also the MAC's hash) and a signature scheme.
type CipherSuite struct {
	ID        CipherSuiteID
	Name      string
	KEMID     uint16
	KDFID     uint16
	AEADID    uint16
	Hash      crypto.Hash
	Signature SignatureScheme

	// KeySize and NonceSize are the AEAD's Nk and Nn.
	KeySize, NonceSize int
}

var suites = map[CipherSuiteID]*CipherSuite{}

func registerSuite(s CipherSuite) {
	if _, dup := suites[s.ID]; dup {
		panic(fmt.Sprintf("mls: cipher suite %#04x registered twice", uint16(s.ID)))
	}
	suites[s.ID] = &s
}

func init() {
	registerSuite(CipherSuite{MLS128DHKEMX25519AES128GCMSHA256Ed25519, "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
		kemDHKEMX25519, kdfHKDFSHA256, aeadAES128GCM, crypto.SHA256, SigEd25519, 16, 12})
	registerSuite(CipherSuite{MLS128DHKEMP256AES128GCMSHA256P256, "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
		kemDHKEMP256, kdfHKDFSHA256, aeadAES128GCM, crypto.SHA256, SigECDSAP256SHA256, 16, 12})
	registerSuite(CipherSuite{MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519, "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
		kemDHKEMX25519, kdfHKDFSHA256, aeadChaCha20Poly1305, crypto.SHA256, SigEd25519, 32, 12})
	registerSuite(CipherSuite{MLS256DHKEMX448AES256GCMSHA512Ed448, "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448",
		kemDHKEMX448, kdfHKDFSHA512, aeadAES256GCM, crypto.SHA512, SigEd448, 32, 12})
	registerSuite(CipherSuite{MLS256DHKEMP521AES256GCMSHA512P521, "MLS_256_DHKEMP521_AES256GCM_SHA512_P521",
		kemDHKEMP521, kdfHKDFSHA512, aeadAES256GCM, crypto.SHA512, SigECDSAP521SHA512, 32, 12})
	registerSuite(CipherSuite{MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448, "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448",
		kemDHKEMX448, kdfHKDFSHA512, aeadChaCha20Poly1305, crypto.SHA512, SigEd448, 32, 12})
	registerSuite(CipherSuite{MLS256DHKEMP384AES256GCMSHA384P384, "MLS_256_DHKEMP384_AES256GCM_SHA384_P384",
		kemDHKEMP384, kdfHKDFSHA384, aeadAES256GCM, crypto.SHA384, SigECDSAP384SHA384, 32, 12})
	registerSuite(CipherSuite{MLS128MLKEM768X25519AES128GCMSHA256Ed25519, "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519",
		kemMLKEM768X25519, kdfHKDFSHA256, aeadAES128GCM, crypto.SHA256, SigEd25519, 16, 12})
	registerSuite(CipherSuite{MLS192MLKEM768AES256GCMSHA384MLDSA65, "MLS_192_MLKEM768_AES256GCM_SHA384_MLDSA65",
		kemMLKEM768, kdfHKDFSHA384, aeadAES256GCM, crypto.SHA384, SigMLDSA65, 32, 12})
}

// Suite returns the cipher suite with the given code point.
func Suite(id CipherSuiteID) (*CipherSuite, error) {
	s, ok := suites[id]
	if !ok {
		return nil, fmt.Errorf("mls: unsupported cipher suite %#04x", uint16(id))
	}
	return s, nil
}

// Suites returns every supported cipher suite, in code point order.
func Suites() []*CipherSuite {
	ids := []CipherSuiteID{0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0xF001, 0xF00A}
	out := make([]*CipherSuite, 0, len(ids))
	for _, id := range ids {
		out = append(out, suites[id])
	}
	return out
}

func (s *CipherSuite) String() string { return s.Name }

// Nh is the output size of the suite's hash and of KDF.Extract.
func (s *CipherSuite) Nh() int { return s.Hash.Size() }

// newHash makes a hash of the suite. Passing s.newHash as a function value
// would allocate a closure per call, so the KDF and MAC take hashFunc.
func (s *CipherSuite) newHash() hash.Hash { return hashFunc(s.Hash)() }

// hashFunc returns the constructor of h as a plain function.
func hashFunc(h crypto.Hash) func() hash.Hash {
	switch h {
	case crypto.SHA256:
		return newSHA256
	case crypto.SHA384:
		return newSHA384
	case crypto.SHA512:
		return newSHA512
	}
	return h.New
}

func newSHA256() hash.Hash { return sha256.New() }
func newSHA384() hash.Hash { return sha512.New384() }
func newSHA512() hash.Hash { return sha512.New() }

// Digest hashes data with the suite's hash. The one-shot functions keep
// the hash state on the stack: the tree hash, the transcript hashes and
// the reference hashes call this dozens of times per handshake.
func (s *CipherSuite) Digest(data []byte) []byte {
	switch s.Hash {
	case crypto.SHA256:
		d := sha256.Sum256(data)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(data)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(data)
		return d[:]
	}
	h := s.newHash()
	h.Write(data)
	return h.Sum(nil)
}

// Extract is KDF.Extract(salt, ikm).
func (s *CipherSuite) Extract(salt, ikm []byte) []byte {
	prk, err := hkdf.Extract(hashFunc(s.Hash), ikm, salt)
	if err != nil {
		panic("mls: HKDF-Extract failed: " + err.Error()) // cannot happen for HMAC-SHA2
	}
	return prk
}

// Expand is KDF.Expand(prk, info, length).
func (s *CipherSuite) Expand(prk, info []byte, length int) ([]byte, error) {
	e := s.newExpander(prk)
	return e.expand(info, length)
}

// MAC computes the suite's HMAC of data under key.
func (s *CipherSuite) MAC(key, data []byte) []byte {
	m := hmac.New(hashFunc(s.Hash), key)
	m.Write(data)
	return m.Sum(nil)
}

// VerifyMAC checks mac against MAC(key, data) in constant time.
func (s *CipherSuite) VerifyMAC(key, data, mac []byte) bool {
	return hmac.Equal(s.MAC(key, data), mac)
}
