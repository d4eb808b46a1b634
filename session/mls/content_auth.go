package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

const labelFramedContentTBS = "FramedContentTBS"

// marshalFramedContentTBS writes the to-be-signed form of content (RFC 9420
// section 6.1). Members and new members committing bind the signature to the
// group context, so a signature cannot be replayed into another epoch.
func marshalFramedContentTBS(w *wire.Writer, wf WireFormat, content *FramedContent, gc *GroupContext) {
	w.U16(uint16(ProtocolMLS10))
	w.U16(uint16(wf))
	content.MarshalMLS(w)
	switch content.Sender.SenderType {
	case SenderTypeMember, SenderTypeNewMemberCommit:
		if gc == nil {
			w.Fail(fmt.Errorf("mls: FramedContentTBS for a member needs the group context"))
			return
		}
		gc.MarshalMLS(w)
	}
}

// checkSenderContent enforces the sender/content combinations of section 6.1:
// external senders only propose, new members only add themselves or commit.
func checkSenderContent(c *FramedContent) error {
	switch c.Sender.SenderType {
	case SenderTypeMember:
		return nil
	case SenderTypeExternal:
		if c.ContentType != ContentTypeProposal {
			return fmt.Errorf("mls: external sender sent content type %d, only proposals are allowed", c.ContentType)
		}
	case SenderTypeNewMemberProposal:
		if c.ContentType != ContentTypeProposal || c.Proposal == nil || c.Proposal.ProposalType != ProposalAdd {
			return fmt.Errorf("mls: new_member_proposal sender must send an Add proposal")
		}
	case SenderTypeNewMemberCommit:
		if c.ContentType != ContentTypeCommit {
			return fmt.Errorf("mls: new_member_commit sender must send a commit")
		}
	default:
		return fmt.Errorf("mls: invalid sender type %d", c.Sender.SenderType)
	}
	return nil
}

// SignContent signs content for sending in wire format wf and returns the
// AuthenticatedContent. For a commit, the caller fills Auth.ConfirmationTag
// once the new epoch's confirmation key is known.
func (s *CipherSuite) SignContent(sigPriv []byte, wf WireFormat, content *FramedContent, gc *GroupContext) (*AuthenticatedContent, error) {
	k, err := s.newSigningKey(sigPriv)
	if err != nil {
		return nil, err
	}
	defer k.wipe()
	return k.signContent(wf, content, gc)
}

func (k *signingKey) signContent(wf WireFormat, content *FramedContent, gc *GroupContext) (*AuthenticatedContent, error) {
	if wf != WireFormatPublicMessage && wf != WireFormatPrivateMessage {
		return nil, fmt.Errorf("mls: cannot frame content in wire format %d", wf)
	}
	if err := checkSenderContent(content); err != nil {
		return nil, err
	}
	sig, err := k.signLabeled(labelFramedContentTBS, func(w *wire.Writer) { marshalFramedContentTBS(w, wf, content, gc) })
	if err != nil {
		return nil, err
	}
	return &AuthenticatedContent{WireFormat: wf, Content: *content, Auth: FramedContentAuthData{Signature: sig}}, nil
}

// VerifyContent checks the signature of ac with the sender's public key.
func (s *CipherSuite) VerifyContent(sigPub []byte, ac *AuthenticatedContent, gc *GroupContext) error {
	if err := checkSenderContent(&ac.Content); err != nil {
		return err
	}
	tbs := func(w *wire.Writer) { marshalFramedContentTBS(w, ac.WireFormat, &ac.Content, gc) }
	if err := s.verifyLabeled(sigPub, labelFramedContentTBS, tbs, ac.Auth.Signature, false); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// ProposalRef computes the reference by which a Commit can include the
// proposal carried in ac.
func (s *CipherSuite) ProposalRef(ac *AuthenticatedContent) ([]byte, error) {
	return s.refHashOf(labelProposalRef, ac.MarshalMLS)
}
