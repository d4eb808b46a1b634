package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"
)

const labelKeyPackageTBS = "KeyPackageTBS"

// DefaultKeyPackageLifetime is how long a KeyPackage made by NewKeyPackage
// stays valid unless told otherwise: long enough to sit on a server between
// uses, short enough that a leaked init key soon stops mattering.
const DefaultKeyPackageLifetime = 90 * 24 * time.Hour

// keyPackageClockSkew backdates not_before, so that a peer whose clock runs
// a little behind ours does not reject a KeyPackage as not yet valid.
const keyPackageClockSkew = time.Hour

// KeyPackageOptions tunes NewKeyPackage; the zero value gives a KeyPackage
// valid from now for DefaultKeyPackageLifetime with DefaultCapabilities.
type KeyPackageOptions struct {
	Now      time.Time     // zero means time.Now()
	Lifetime time.Duration // zero means DefaultKeyPackageLifetime

	// Capabilities defaults to DefaultCapabilities(). It must not contain
	// GREASE values: NewKeyPackage adds them.
	Capabilities *Capabilities

	Extensions     Extensions // KeyPackage.extensions
	LeafExtensions Extensions // leaf_node.extensions
}

// NewKeyPackage creates and signs a KeyPackage for the holder of sigPriv.
// It returns the private keys of the init key (used once, to open the
// Welcome) and of the leaf's encryption key (kept for the tree); the caller
// must zero both when done with them.
func NewKeyPackage(s *CipherSuite, sigPriv []byte, cred Credential, opts KeyPackageOptions) (kp *KeyPackage, initPriv, encPriv []byte, err error) {
	if s == nil {
		return nil, nil, nil, errors.New("mls: NewKeyPackage needs a cipher suite")
	}
	sk, err := s.newSigningKey(sigPriv)
	if err != nil {
		return nil, nil, nil, err
	}
	defer sk.wipe()
	return newKeyPackage(s, sk, cred, opts, true)
}

// newKeyPackage is NewKeyPackage with a parsed signature key. Without
// withInit it makes only the signed leaf node (kp.LeafNode): no init key
// and no KeyPackage signature, which a group's creator has no use for.
func newKeyPackage(s *CipherSuite, sk *signingKey, cred Credential, opts KeyPackageOptions, withInit bool) (kp *KeyPackage, initPriv, encPriv []byte, err error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	lifetime := opts.Lifetime
	if lifetime == 0 {
		lifetime = DefaultKeyPackageLifetime
	}
	if lifetime < 0 || lifetime+keyPackageClockSkew > MaxLeafNodeLifetime {
		return nil, nil, nil, fmt.Errorf("mls: KeyPackage lifetime %v outside (0, %v]", lifetime, MaxLeafNodeLifetime-keyPackageClockSkew)
	}
	var caps Capabilities
	if opts.Capabilities != nil {
		caps = *opts.Capabilities
	} else {
		caps = DefaultCapabilities()
	}
	if err := checkOwnCapabilities(s, &caps, &cred, opts.Extensions, opts.LeafExtensions); err != nil {
		return nil, nil, nil, err
	}

	sigPub := sk.pub
	// Publishing a credential that names another key would only make every
	// peer reject the KeyPackage later, with a less useful error.
	if cred.CredentialType == CredentialX509 {
		chain, err := parseX509Chain(&cred)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := x509KeyMatches(s, chain[0], sigPub); err != nil {
			return nil, nil, nil, err
		}
	}

	defer func() {
		if err != nil {
			zeroAll(initPriv, encPriv)
			kp, initPriv, encPriv = nil, nil, nil
		}
	}()
	var initPub []byte
	if withInit {
		if initPriv, initPub, err = s.GenerateHPKEKeyPair(); err != nil {
			return nil, nil, nil, err
		}
	}
	encPriv, encPub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		return nil, initPriv, nil, err
	}

	notBefore := max(now.Add(-keyPackageClockSkew).Unix(), 0)
	kp = &KeyPackage{
		Version:     ProtocolMLS10,
		CipherSuite: s.ID,
		InitKey:     initPub,
		LeafNode: LeafNode{
			EncryptionKey:  encPub,
			SignatureKey:   bytes.Clone(sigPub),
			Credential:     cred,
			Capabilities:   withGREASE(caps),
			LeafNodeSource: LeafNodeSourceKeyPackage,
			Lifetime:       Lifetime{NotBefore: uint64(notBefore), NotAfter: uint64(now.Add(lifetime).Unix())},
			Extensions:     slices.Clone(opts.LeafExtensions),
		},
		Extensions: slices.Clone(opts.Extensions),
	}
	if err := kp.LeafNode.signWith(sk, nil, 0); err != nil {
		return nil, initPriv, encPriv, err
	}
	if !withInit {
		return kp, nil, encPriv, nil
	}
	if err := kp.signWith(sk); err != nil {
		return nil, initPriv, encPriv, err
	}
	return kp, initPriv, encPriv, nil
}

// checkOwnCapabilities refuses to advertise capabilities that our own
// KeyPackage would contradict (sections 7.2 and 10), since peers would
// reject it.
func checkOwnCapabilities(s *CipherSuite, caps *Capabilities, cred *Credential, kpExts, leafExts Extensions) error {
	if !slices.Contains(caps.Versions, ProtocolMLS10) {
		return errors.New("mls: capabilities must include MLS 1.0")
	}
	if !slices.Contains(caps.CipherSuites, s.ID) {
		return fmt.Errorf("mls: capabilities must include the KeyPackage's cipher suite %s", s.Name)
	}
	if !slices.Contains(caps.Credentials, cred.CredentialType) {
		return fmt.Errorf("mls: capabilities must include the credential type %d", cred.CredentialType)
	}
	for _, es := range []Extensions{kpExts, leafExts} {
		if err := es.CheckUnique(); err != nil {
			return err
		}
		for _, e := range es {
			if !caps.SupportsExtension(e.Type) {
				return fmt.Errorf("mls: extension %#04x is missing from the capabilities", uint16(e.Type))
			}
		}
	}
	return nil
}

// Sign signs the KeyPackage ("KeyPackageTBS") and stores the signature in
// k.Signature. The leaf node must already be signed, since its signature is
// part of what is signed here.
func (k *KeyPackage) Sign(s *CipherSuite, sigPriv []byte) error {
	sk, err := s.newSigningKey(sigPriv)
	if err != nil {
		return err
	}
	defer sk.wipe()
	return k.signWith(sk)
}

func (k *KeyPackage) signWith(sk *signingKey) error {
	sig, err := sk.signLabeled(labelKeyPackageTBS, k.marshalTBS)
	if err != nil {
		return err
	}
	k.Signature = sig
	return nil
}

// VerifySignature checks the KeyPackage signature against the leaf node's
// signature key.
func (k *KeyPackage) VerifySignature(s *CipherSuite) error { return k.verifySignature(s, false) }

// verifySignature is VerifySignature; once is verifyLabeled's.
func (k *KeyPackage) verifySignature(s *CipherSuite, once bool) error {
	if err := s.verifyLabeled(k.LeafNode.SignatureKey, labelKeyPackageTBS, k.marshalTBS, k.Signature, once); err != nil {
		return fmt.Errorf("%w: KeyPackage: %v", ErrBadSignature, err)
	}
	return nil
}

// Validate checks a KeyPackage before it is used to add its owner (RFC 9420
// section 10.1), outside any group's requirements; ValidateWith adds them.
// A zero now skips the lifetime check.
func (k *KeyPackage) Validate(s *CipherSuite, now time.Time, creds CredentialValidator) error {
	return k.ValidateWith(&LeafNodeCheck{Suite: s, Now: now, Credentials: creds})
}

// ValidateWith is Validate with the leaf node checked in the given context,
// for an Add, where the group's required capabilities, extensions and
// credential types apply. c.Source, c.GroupID and c.Leaf are ignored: a
// KeyPackage's leaf is always of source key_package and signed outside any
// group.
func (k *KeyPackage) ValidateWith(c *LeafNodeCheck) error {
	return k.validateWith(c, false)
}

// validateWith is ValidateWith; with signed, the KeyPackage's and its
// leaf's signatures and key encodings are taken as checked
// (CheckedKeyPackage).
func (k *KeyPackage) validateWith(c *LeafNodeCheck, signed bool) error {
	if k == nil {
		return errors.New("mls: missing KeyPackage")
	}
	if c == nil || c.Suite == nil {
		return errors.New("mls: KeyPackage validation needs a cipher suite")
	}
	s := c.Suite
	if k.Version != ProtocolMLS10 {
		return fmt.Errorf("mls: KeyPackage version %d, want MLS 1.0", k.Version)
	}
	if k.CipherSuite != s.ID {
		return fmt.Errorf("mls: KeyPackage cipher suite %#04x, want %s", uint16(k.CipherSuite), s.Name)
	}
	// Unknown KeyPackage extensions must be ignored (section 13.4), so only
	// duplicates are refused here, not types missing from the capabilities.
	if err := k.Extensions.CheckUnique(); err != nil {
		return fmt.Errorf("mls: KeyPackage: %w", err)
	}
	if bytes.Equal(k.InitKey, k.LeafNode.EncryptionKey) {
		return errors.New("mls: KeyPackage init key equals its leaf's encryption key")
	}
	if !signed {
		if err := checkHPKEPublicKey(s, k.InitKey); err != nil {
			return fmt.Errorf("mls: KeyPackage init key: %w", err)
		}
		if err := k.verifySignature(s, c.once); err != nil {
			return err
		}
	}
	lc := *c
	lc.Source, lc.GroupID, lc.Leaf = LeafNodeSourceKeyPackage, nil, 0
	return k.LeafNode.validate(&lc, signed)
}

// Ref is the KeyPackageRef that names k in a Welcome (section 5.2).
func (k *KeyPackage) Ref(s *CipherSuite) ([]byte, error) {
	return s.refHashOf(labelKeyPackageRef, k.MarshalMLS)
}
