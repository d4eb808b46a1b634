package session

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/mls/wire"
)

// Hello keys (docs/protocol.md 7.14). A responder holds an HPKE key pair
// of its suite's KEM, signed with its pinned signature key, and an
// initiator seals its ClientHello or ResumptionRequest to it, so that
// nothing an observer or an impostor of the responder sees identifies the
// initiator. The encoding is
//
//	struct {
//	    uint16 version;          // ProtocolVersion
//	    CipherSuite cipher_suite;
//	    opaque key_id[8];        // SHA-256(public_key)[0..8]
//	    opaque public_key<V>;    // HPKE public key of the suite's KEM
//	    uint64 not_before;       // seconds since the Unix epoch
//	    uint64 not_after;
//	} HelloKeyTBS;
//
//	struct {
//	    HelloKeyTBS tbs;
//	    opaque signature<V>;     // SignWithLabel(., "CURRENT hello key", tbs)
//	} HelloKey;

// helloKeyLabel is the SignWithLabel label of a hello key, distinct from
// every label MLS uses, so that no MLS signature of the responder is ever
// a valid hello key signature or the other way round.
const helloKeyLabel = "CURRENT hello key"

// HelloKeyIDLen is the length of a hello key's identifier.
const HelloKeyIDLen = 8

// helloKeySkew is how far apart the two peers' clocks may be for a hello
// key's validity and a hello's timestamp.
const helloKeySkew = 10 * time.Minute

// maxHelloKeyLen bounds an encoded hello key: the largest KEM public key
// (ML-KEM-768, X-Wing: ~1.2 KB) and signature (ML-DSA-65: 3309 bytes).
const maxHelloKeyLen = 8 << 10

var (
	// ErrHelloKey: a hello key is malformed, not signed by the pinned
	// key, of another suite or version, or outside its validity.
	ErrHelloKey = errors.New("session: invalid hello key")
	// ErrNoHelloKey: identity hiding is on but the session has no way to
	// learn or use a hello key (responder without a HelloKeyring).
	ErrNoHelloKey = errors.New("session: no hello key")
)

// HelloKey is the public half of a responder's hello key as it travels in
// a HelloKeyAnswer and as an initiator caches it.
type HelloKey struct {
	Suite     mls.CipherSuiteID
	ID        [HelloKeyIDLen]byte
	PublicKey []byte
	NotBefore time.Time
	NotAfter  time.Time
	Signature []byte
}

// HelloKeyPair is a hello key with its HPKE private key, what a responder
// installs in its HelloKeyring and persists (0600) to survive restarts.
type HelloKeyPair struct {
	Public  HelloKey
	Private []byte
}

// Wipe zeroes the private key.
func (k *HelloKeyPair) Wipe() {
	if k != nil {
		clear(k.Private)
		k.Private = nil
	}
}

// NewHelloKey generates a hello key pair of suite, valid from notBefore to
// notAfter, signed with the responder's signature private key sigPriv.
func NewHelloKey(suite mls.CipherSuiteID, sigPriv []byte, notBefore, notAfter time.Time) (*HelloKeyPair, error) {
	s, err := mls.Suite(suite)
	if err != nil {
		return nil, err
	}
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("%w: empty validity", ErrHelloKey)
	}
	priv, pub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		return nil, err
	}
	k := HelloKey{Suite: suite, PublicKey: pub, NotBefore: notBefore.Truncate(time.Second), NotAfter: notAfter.Truncate(time.Second)}
	k.ID = helloKeyID(pub)
	tbs, err := k.tbs()
	if err != nil {
		clear(priv)
		return nil, err
	}
	if k.Signature, err = s.SignWithLabel(sigPriv, helloKeyLabel, tbs); err != nil {
		clear(priv)
		return nil, err
	}
	return &HelloKeyPair{Public: k, Private: priv}, nil
}

func helloKeyID(pub []byte) (id [HelloKeyIDLen]byte) {
	h := sha256.Sum256(pub)
	copy(id[:], h[:])
	return id
}

func (k *HelloKey) tbs() ([]byte, error) {
	w := wire.NewWriter(make([]byte, 0, 32+len(k.PublicKey)))
	k.marshalTBS(w)
	return w.Bytes()
}

func (k *HelloKey) marshalTBS(w *wire.Writer) {
	w.U16(ProtocolVersion)
	w.U16(uint16(k.Suite))
	w.Raw(k.ID[:])
	w.Opaque(k.PublicKey)
	w.U64(uint64(k.NotBefore.Unix()))
	w.U64(uint64(k.NotAfter.Unix()))
}

func (k *HelloKey) marshal(w *wire.Writer) {
	k.marshalTBS(w)
	w.Opaque(k.Signature)
}

// MarshalBinary encodes the key as HelloKey (above).
func (k *HelloKey) MarshalBinary() ([]byte, error) {
	w := wire.NewWriter(nil)
	k.marshal(w)
	return w.Bytes()
}

func (k *HelloKey) unmarshal(r *wire.Reader) {
	if v := r.U16(); r.Err() == nil && v != ProtocolVersion {
		r.Fail(fmt.Errorf("%w: version %d", ErrUnsupportedVersion, v))
		return
	}
	k.Suite = mls.CipherSuiteID(r.U16())
	copy(k.ID[:], r.Raw(HelloKeyIDLen))
	k.PublicKey = r.Opaque()
	nb, na := r.U64(), r.U64()
	k.Signature = r.Opaque()
	if r.Err() != nil {
		return
	}
	// Beyond int64 seconds a time means nothing; refuse rather than wrap.
	if nb > 1<<62 || na > 1<<62 {
		r.Fail(fmt.Errorf("%w: validity out of range", ErrHelloKey))
		return
	}
	k.NotBefore, k.NotAfter = time.Unix(int64(nb), 0).UTC(), time.Unix(int64(na), 0).UTC()
}

// ParseHelloKey decodes an encoded HelloKey without checking its
// signature (Verify does).
func ParseHelloKey(b []byte) (*HelloKey, error) {
	if len(b) > maxHelloKeyLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrHelloKey, len(b))
	}
	k := new(HelloKey)
	r := wire.NewReader(b)
	k.unmarshal(r)
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHelloKey, err)
	}
	return k, nil
}

// Verify checks that k is a hello key of suite signed by the pinned
// responder key pin, with an identifier that names its public key, and
// valid at now (within helloKeySkew).
func (k *HelloKey) Verify(suite *mls.CipherSuite, pin []byte, now time.Time) error {
	if k.Suite != suite.ID {
		return fmt.Errorf("%w: suite %#04x", ErrHelloKey, uint16(k.Suite))
	}
	if k.ID != helloKeyID(k.PublicKey) {
		return fmt.Errorf("%w: identifier does not name the key", ErrHelloKey)
	}
	if !k.validAt(now) {
		return fmt.Errorf("%w: not valid at %s", ErrHelloKey, now.UTC().Format(time.RFC3339))
	}
	tbs, err := k.tbs()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHelloKey, err)
	}
	if err := suite.VerifyWithLabel(pin, helloKeyLabel, tbs, k.Signature); err != nil {
		return fmt.Errorf("%w: signature: %v", ErrHelloKey, err)
	}
	return nil
}

func (k *HelloKey) validAt(t time.Time) bool {
	return !t.Before(k.NotBefore.Add(-helloKeySkew)) && t.Before(k.NotAfter.Add(helloKeySkew))
}

// MarshalBinary encodes the key pair for the caller's key file (which it
// must create 0600): the HelloKey, then opaque private_key<V>.
func (k *HelloKeyPair) MarshalBinary() ([]byte, error) {
	w := wire.NewWriter(nil)
	k.Public.marshal(w)
	w.Opaque(k.Private)
	return w.Bytes()
}

// ParseHelloKeyPair decodes a key pair written by MarshalBinary and checks
// that the private key is the public key's, so that a corrupted or
// mismatched file is refused at load rather than by failing every hello.
func ParseHelloKeyPair(b []byte) (*HelloKeyPair, error) {
	if len(b) > 2*maxHelloKeyLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrHelloKey, len(b))
	}
	k := new(HelloKeyPair)
	r := wire.NewReader(b)
	k.Public.unmarshal(r)
	priv := r.Opaque()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHelloKey, err)
	}
	s, err := mls.Suite(k.Public.Suite)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHelloKey, err)
	}
	pub, err := s.HPKEPublicKey(priv)
	if err != nil || !sameKey(pub, k.Public.PublicKey) || k.Public.ID != helloKeyID(pub) {
		return nil, fmt.Errorf("%w: private key does not match", ErrHelloKey)
	}
	k.Private = append([]byte(nil), priv...)
	return k, nil
}
