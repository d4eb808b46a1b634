package mls

import (
	"bytes"
	"crypto/rand"
	"fmt"
)

// NewGroup creates a one-member group (RFC 9420 section 11) with this member,
// identified by cred and the signature key sigPriv, as its creator. The
// group's context carries extensions (which the creator must support).
func NewGroup(s *CipherSuite, groupID, sigPriv []byte, cred Credential, extensions Extensions, cfg GroupConfig) (*Group, error) {
	return newGroup(s, groupID, sigPriv, cred, extensions, cfg, false)
}

// newGroup is NewGroup; with transient, epoch 0 is made only to be
// committed from at once (NewGroupWithMember): it gets the secrets of
// commitEpochSecrets and no message keys.
func newGroup(s *CipherSuite, groupID, sigPriv []byte, cred Credential, extensions Extensions, cfg GroupConfig, transient bool) (*Group, error) {
	if len(groupID) == 0 {
		return nil, fmt.Errorf("mls: empty group ID")
	}
	if err := extensions.CheckUnique(); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("mls: NewGroup needs a cipher suite")
	}
	// The creator's leaf is a KeyPackage's leaf node, without the rest of a
	// KeyPackage (init key, signature), which nobody would ever see.
	signer, err := s.newSigningKey(sigPriv)
	if err != nil {
		return nil, err
	}
	kp, _, encPriv, err := newKeyPackage(s, signer, cred, KeyPackageOptions{Now: cfg.now(), Capabilities: cfg.LeafCapabilities}, false)
	if err != nil {
		signer.wipe()
		return nil, err
	}
	leaf := kp.LeafNode
	defer func() {
		if signer != nil {
			signer.wipe()
		}
	}()
	for _, e := range extensions {
		if !isDefaultExtension(e.Type) && !containsValue(leaf.Capabilities.Extensions, e.Type) {
			zero(encPriv)
			return nil, fmt.Errorf("mls: group extension %#04x not in the creator's capabilities", uint16(e.Type))
		}
	}

	var tree RatchetTree
	// The KeyPackage was made here and goes nowhere: its leaf is the
	// tree's.
	tree.addOwnedLeaf(&leaf)
	treeHash, err := tree.TreeHash(s)
	if err != nil {
		zero(encPriv)
		return nil, err
	}
	ctx := GroupContext{
		Version:                 ProtocolMLS10,
		CipherSuite:             s.ID,
		GroupID:                 bytes.Clone(groupID),
		Epoch:                   0,
		TreeHash:                treeHash,
		ConfirmedTranscriptHash: []byte{},
		Extensions:              extensions,
	}
	// Epoch 0's epoch secret is a fresh random value (RFC 9420 section 11),
	// not the output of a key schedule: there is no joiner secret to
	// extract from, nor anyone who could check one.
	epochSecret := make([]byte, s.Nh())
	if _, err := rand.Read(epochSecret); err != nil {
		zero(encPriv)
		return nil, err
	}
	var secrets *EpochSecrets
	if transient {
		secrets, err = s.commitEpochSecrets(epochSecret)
	} else {
		secrets, err = s.epochSecretsFrom(epochSecret)
	}
	zero(epochSecret)
	if err != nil {
		zero(encPriv)
		return nil, err
	}
	tag := s.ConfirmationTag(secrets.ConfirmationKey, ctx.ConfirmedTranscriptHash)
	interim, err := s.InterimTranscriptHash(ctx.ConfirmedTranscriptHash, tag)
	if err != nil {
		secrets.Wipe()
		zero(encPriv)
		return nil, err
	}
	g := &Group{cfg: cfg, suite: s, sigPriv: bytes.Clone(sigPriv), signer: signer}
	priv := &TreePrivateKey{Leaf: 0, EncryptionPriv: encPriv, PathPrivs: map[NodeIndex][]byte{}}
	if transient {
		g.state = epochState{ctx: ctx, tree: tree, priv: priv, secrets: secrets, interim: interim}
	} else {
		st, err := g.newEpochState(ctx, tree, priv, secrets, interim)
		if err != nil {
			secrets.Wipe()
			priv.Wipe()
			return nil, err
		}
		g.state = st
	}
	// The group owns the key now; an ML-DSA key stays only until the
	// creator's first commit (releaseSigningKey), which usually follows.
	signer = nil
	return g, nil
}

func containsValue[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
