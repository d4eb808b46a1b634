package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

const labelLeafNodeTBS = "LeafNodeTBS"

func (n *LeafNode) tbs(groupID []byte, leaf LeafIndex) func(*wire.Writer) {
	return func(w *wire.Writer) { n.marshalTBS(w, groupID, uint32(leaf)) }
}

// Sign signs the leaf node with sigPriv and stores the signature in
// n.Signature. groupID and leaf only enter the signature for update and
// commit leaves (see marshalTBS); pass nil and 0 for key_package leaves.
// The caller must set every other field first, since all of them are signed.
func (n *LeafNode) Sign(s *CipherSuite, sigPriv, groupID []byte, leaf LeafIndex) error {
	k, err := s.newSigningKey(sigPriv)
	if err != nil {
		return err
	}
	defer k.wipe()
	return n.signWith(k, groupID, leaf)
}

func (n *LeafNode) signWith(k *signingKey, groupID []byte, leaf LeafIndex) error {
	sig, err := k.signLabeled(labelLeafNodeTBS, n.tbs(groupID, leaf))
	if err != nil {
		return err
	}
	n.Signature = sig
	return nil
}

// VerifySignature checks n.Signature against the leaf's own signature key.
// That only proves possession of the key; binding the key to an identity is
// the credential check's job (Validate).
func (n *LeafNode) VerifySignature(s *CipherSuite, groupID []byte, leaf LeafIndex) error {
	return n.verifySignature(s, groupID, leaf, false)
}

// verifySignature is VerifySignature; once is verifyLabeled's.
func (n *LeafNode) verifySignature(s *CipherSuite, groupID []byte, leaf LeafIndex, once bool) error {
	if err := s.verifyLabeled(n.SignatureKey, labelLeafNodeTBS, n.tbs(groupID, leaf), n.Signature, once); err != nil {
		return fmt.Errorf("%w: leaf node: %v", ErrBadSignature, err)
	}
	return nil
}
