package mls

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	circlhpke "github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/sign/ed448"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// MaxLeafNodeLifetime is the longest not_before..not_after span accepted in
// a key_package leaf. RFC 9420 section 7.2 makes every application set one:
// without it, a stolen KeyPackage would stay usable for as long as its
// creator was careless enough to allow.
const MaxLeafNodeLifetime = 365 * 24 * time.Hour

// LeafNodeCheck is the context a leaf node is validated in (RFC 9420
// section 7.3). Only the per-leaf checks are done here: uniqueness of keys
// across the tree, that the members support the new leaf's credential type,
// and that an Update changes the encryption key need the whole group and are
// the caller's.
type LeafNodeCheck struct {
	Suite *CipherSuite

	// GroupID and Leaf are signed by update and commit leaves.
	GroupID []byte
	Leaf    LeafIndex

	// Source is the leaf_node_source the context demands. Zero (reserved on
	// the wire) accepts any source, for validating a ratchet tree, where
	// leaves of every source sit side by side.
	Source LeafNodeSource

	// Now, when non-zero, is checked against a key_package leaf's lifetime,
	// and the lifetime's span against MaxLeafNodeLifetime. Zero skips both:
	// section 7.3 only recommends the check for received leaves, which may
	// have expired in transit.
	Now time.Time
	// MaxLifetime overrides MaxLeafNodeLifetime when positive; negative
	// accepts any span (interop test vectors use [0, 2^64-1]).
	MaxLifetime time.Duration

	// Required is the group's required_capabilities, nil if it has none.
	Required *RequiredCapabilities

	// GroupExtensions are the GroupContext extensions, each of which the
	// leaf must support (section 13.4).
	GroupExtensions Extensions

	// MemberCredentialTypes are the credential types members use; the leaf
	// must support them all to authenticate everyone.
	MemberCredentialTypes []CredentialType

	// Credentials validates the leaf's credential; nil means
	// BasicCredentials.
	Credentials CredentialValidator

	// once: the signatures are verified here and never again
	// (KeyPackage.Check), so the cache of verified signatures is left out.
	once bool
}

// Validate runs the per-leaf checks of RFC 9420 section 7.3. The cheap
// structural checks come first so that hostile input costs little; the
// credential comes last so the Authentication Service only sees leaves
// whose signature holds.
func (n *LeafNode) Validate(c *LeafNodeCheck) error {
	return n.validate(c, false)
}

// validate is Validate; with signed, the checks that depend on nothing but
// the leaf's own bytes and the suite (its keys' encodings and its
// signature) are taken as done, for a leaf that passed them before
// (CheckedKeyPackage).
func (n *LeafNode) validate(c *LeafNodeCheck, signed bool) error {
	if n == nil {
		return errors.New("mls: missing leaf node")
	}
	if c == nil || c.Suite == nil {
		return errors.New("mls: leaf node validation needs a cipher suite")
	}
	s := c.Suite
	if c.Source != 0 && n.LeafNodeSource != c.Source {
		return fmt.Errorf("mls: leaf node source is %d, want %d", n.LeafNodeSource, c.Source)
	}
	caps := &n.Capabilities
	// A KeyPackage states the version and suite its client supports in its
	// own signed fields (section 10), which KeyPackage.ValidateWith matches
	// against the group, so for key_package leaves the lists are not
	// consulted. That is not laxity for its own sake: the official welcome
	// vectors hold a suite 0x0007 KeyPackage whose leaf lists only suites
	// 1-6, and section 7.3 does not ask for this check at all.
	if n.LeafNodeSource != LeafNodeSourceKeyPackage {
		if !slices.Contains(caps.Versions, ProtocolMLS10) {
			return errors.New("mls: leaf node does not support MLS 1.0")
		}
		if !slices.Contains(caps.CipherSuites, s.ID) {
			return fmt.Errorf("mls: leaf node does not support the group's cipher suite %s", s.Name)
		}
	}
	if err := n.Extensions.CheckUnique(); err != nil {
		return fmt.Errorf("mls: leaf node: %w", err)
	}
	for _, e := range n.Extensions {
		if !caps.SupportsExtension(e.Type) {
			return fmt.Errorf("mls: leaf node extension %#04x is missing from its capabilities", uint16(e.Type))
		}
	}
	if !slices.Contains(caps.Credentials, n.Credential.CredentialType) {
		return fmt.Errorf("mls: leaf node credential type %d is missing from its capabilities", n.Credential.CredentialType)
	}
	if !caps.Supports(c.Required) {
		return errors.New("mls: leaf node does not support the group's required capabilities")
	}
	for _, e := range c.GroupExtensions {
		if !caps.SupportsExtension(e.Type) {
			return fmt.Errorf("mls: leaf node does not support group extension %#04x", uint16(e.Type))
		}
	}
	for _, t := range c.MemberCredentialTypes {
		if !slices.Contains(caps.Credentials, t) {
			return fmt.Errorf("mls: leaf node does not support credential type %d used in the group", t)
		}
	}
	if n.LeafNodeSource == LeafNodeSourceKeyPackage && !c.Now.IsZero() {
		if err := n.Lifetime.check(c.Now, c.MaxLifetime); err != nil {
			return err
		}
	}
	if !signed {
		if err := checkHPKEPublicKey(s, n.EncryptionKey); err != nil {
			return fmt.Errorf("mls: leaf node encryption key: %w", err)
		}
		if err := checkSignaturePublicKey(s, n.SignatureKey); err != nil {
			return fmt.Errorf("mls: leaf node signature key: %w", err)
		}
		if err := n.verifySignature(s, c.GroupID, c.Leaf, c.once); err != nil {
			return err
		}
	}
	creds := c.Credentials
	if creds == nil {
		creds = BasicCredentials{}
	}
	if err := creds.ValidateCredential(s, &n.Credential, n.SignatureKey); err != nil {
		return fmt.Errorf("mls: leaf node credential: %w", err)
	}
	return nil
}

// check verifies that now lies within the lifetime and that the lifetime is
// no longer than max (MaxLeafNodeLifetime when zero, unlimited when
// negative).
func (l *Lifetime) check(now time.Time, max time.Duration) error {
	if l.NotAfter < l.NotBefore {
		return errors.New("mls: leaf node lifetime ends before it begins")
	}
	if max == 0 {
		max = MaxLeafNodeLifetime
	}
	if max > 0 && l.NotAfter-l.NotBefore > uint64(max/time.Second) {
		return fmt.Errorf("mls: leaf node lifetime of %ds exceeds the maximum %v", l.NotAfter-l.NotBefore, max)
	}
	// Before 1970 no lifetime can be valid; comparing as uint64 would wrap.
	t := now.Unix()
	if t < 0 || uint64(t) < l.NotBefore {
		return errors.New("mls: leaf node lifetime has not begun")
	}
	if uint64(t) > l.NotAfter {
		return errors.New("mls: leaf node lifetime has expired")
	}
	return nil
}

// checkHPKEPublicKey reports whether pub is a valid public key of the
// suite's KEM, so that a malformed key is refused when the leaf arrives
// rather than when someone first encrypts to it. The keys whose parse does
// more than validation are checked without it (hpke_key_check.go).
func checkHPKEPublicKey(s *CipherSuite, pub []byte) (err error) {
	defer recoverAsError(&err, "parsing HPKE public key")
	if s.KEMID == kemDHKEMX448 {
		if _, err := circlhpke.KEM_X448_HKDF_SHA512.Scheme().UnmarshalBinaryPublicKey(pub); err != nil {
			return fmt.Errorf("mls: invalid X448 HPKE public key: %w", err)
		}
		return nil
	}
	if handled, err := checkUnparsedHPKEPublicKey(s, pub); handled {
		if err != nil {
			return fmt.Errorf("mls: invalid HPKE public key: %w", err)
		}
		return nil
	}
	kem, ok := s.stdKEM()
	if !ok {
		return s.errUnsupportedKEM()
	}
	if _, err := s.stdPublicKey(kem, pub); err != nil {
		return fmt.Errorf("mls: invalid HPKE public key: %w", err)
	}
	return nil
}

// checkSignaturePublicKey reports whether pub is a well-formed public key of
// the suite's signature scheme. For the Edwards curves only the length is
// checked; a bad point makes every signature fail to verify anyway.
func checkSignaturePublicKey(s *CipherSuite, pub []byte) (err error) {
	defer recoverAsError(&err, "parsing signature public key")
	switch s.Signature {
	case SigEd25519:
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("mls: Ed25519 public key must be %d bytes, got %d", ed25519.PublicKeySize, len(pub))
		}
		return nil
	case SigEd448:
		if len(pub) != ed448.PublicKeySize {
			return fmt.Errorf("mls: Ed448 public key must be %d bytes, got %d", ed448.PublicKeySize, len(pub))
		}
		return nil
	case SigMLDSA65:
		var pk mldsa65.PublicKey
		if err := pk.UnmarshalBinary(pub); err != nil {
			return fmt.Errorf("mls: invalid ML-DSA-65 public key: %w", err)
		}
		return nil
	}
	if p, ok := s.ecdsaParams(); ok {
		if _, err := ecdsa.ParseUncompressedPublicKey(p.curve, pub); err != nil {
			return fmt.Errorf("mls: invalid ECDSA public key: %w", err)
		}
		return nil
	}
	return s.errUnsupportedSignature()
}
