package mls

import (
	"errors"
	"fmt"
)

const labelGroupInfoTBS = "GroupInfoTBS"

// Sign signs the GroupInfo ("GroupInfoTBS") with the private key of the
// member at leaf g.Signer and stores the signature in g.Signature.
func (g *GroupInfo) Sign(s *CipherSuite, sigPriv []byte) error {
	k, err := s.newSigningKey(sigPriv)
	if err != nil {
		return err
	}
	defer k.wipe()
	return g.signWith(k)
}

func (g *GroupInfo) signWith(k *signingKey) error {
	if g == nil {
		return errors.New("mls: missing GroupInfo")
	}
	sig, err := k.signLabeled(labelGroupInfoTBS, g.marshalTBS)
	if err != nil {
		return err
	}
	g.Signature = sig
	return nil
}

// VerifySignature checks g.Signature with sigPub, which the caller takes
// from the leaf g.Signer of the group's ratchet tree (RFC 9420 section
// 12.4.3.1); the GroupInfo cannot vouch for its own signer.
func (g *GroupInfo) VerifySignature(s *CipherSuite, sigPub []byte) error {
	if g == nil {
		return errors.New("mls: missing GroupInfo")
	}
	if err := s.verifyLabeled(sigPub, labelGroupInfoTBS, g.marshalTBS, g.Signature, false); err != nil {
		return fmt.Errorf("%w: GroupInfo: %v", ErrBadSignature, err)
	}
	return nil
}
