package mls

import (
	"bytes"
	"errors"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func init() { registerVectorChecker("message-protection", checkMessageProtectionVectors) }

type messageProtectionVector struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	TreeHash                hexBytes `json:"tree_hash"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	SignaturePriv           hexBytes `json:"signature_priv"`
	SignaturePub            hexBytes `json:"signature_pub"`
	EncryptionSecret        hexBytes `json:"encryption_secret"`
	SenderDataSecret        hexBytes `json:"sender_data_secret"`
	MembershipKey           hexBytes `json:"membership_key"`
	Proposal                hexBytes `json:"proposal"`
	ProposalPub             hexBytes `json:"proposal_pub"`
	ProposalPriv            hexBytes `json:"proposal_priv"`
	Commit                  hexBytes `json:"commit"`
	CommitPub               hexBytes `json:"commit_pub"`
	CommitPriv              hexBytes `json:"commit_priv"`
	Application             hexBytes `json:"application"`
	ApplicationPriv         hexBytes `json:"application_priv"`
}

// protectionFixture holds one vector case and builds fresh key material for
// each check, since decrypting consumes ratchet keys.
type protectionFixture struct {
	t  *testing.T
	s  *CipherSuite
	tc *messageProtectionVector
	gc *GroupContext
}

func (f *protectionFixture) keys() *MessageKeys {
	tree, err := NewSecretTree(f.s, f.tc.EncryptionSecret, 2, SecretTreeConfig{})
	if err != nil {
		f.t.Fatal(err)
	}
	return &MessageKeys{
		Suite:            f.s,
		Context:          f.gc,
		MembershipKey:    f.tc.MembershipKey,
		SenderDataSecret: f.tc.SenderDataSecret,
		Tree:             tree,
	}
}

func mustDecodeMLSMessage(t *testing.T, what string, b []byte, wf WireFormat) *MLSMessage {
	t.Helper()
	var m MLSMessage
	if err := wire.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: decoding: %v", what, err)
	}
	if m.WireFormat != wf {
		t.Fatalf("%s: wire format %d, want %d", what, m.WireFormat, wf)
	}
	return &m
}

// rawContent returns the encoding of the body a content carries.
func rawContent(t *testing.T, c *FramedContent) []byte {
	t.Helper()
	var enc []byte
	var err error
	switch c.ContentType {
	case ContentTypeApplication:
		return c.ApplicationData
	case ContentTypeProposal:
		enc, err = wire.Marshal(c.Proposal)
	case ContentTypeCommit:
		enc, err = wire.Marshal(c.Commit)
	}
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func (f *protectionFixture) content(ct ContentType, raw []byte) *FramedContent {
	c := &FramedContent{
		GroupID:     f.tc.GroupID,
		Epoch:       f.tc.Epoch,
		Sender:      Sender{SenderType: SenderTypeMember, LeafIndex: 1},
		ContentType: ct,
	}
	switch ct {
	case ContentTypeApplication:
		c.ApplicationData = raw
	case ContentTypeProposal:
		c.Proposal = new(Proposal)
		if err := wire.Unmarshal(raw, c.Proposal); err != nil {
			f.t.Fatalf("decoding raw proposal: %v", err)
		}
	case ContentTypeCommit:
		c.Commit = new(Commit)
		if err := wire.Unmarshal(raw, c.Commit); err != nil {
			f.t.Fatalf("decoding raw commit: %v", err)
		}
	}
	return c
}

// sign frames raw for wf; commits get a confirmation tag of the right size
// (its value is not checked by message protection).
func (f *protectionFixture) sign(wf WireFormat, c *FramedContent) *AuthenticatedContent {
	ac, err := f.s.SignContent(f.tc.SignaturePriv, wf, c, f.gc)
	if err != nil {
		f.t.Fatalf("signing: %v", err)
	}
	if c.ContentType == ContentTypeCommit {
		ac.Auth.ConfirmationTag = f.s.ConfirmationTag(f.tc.MembershipKey, f.gc.ConfirmedTranscriptHash)
	}
	return ac
}

func (f *protectionFixture) checkPublic(what string, ct ContentType, raw, pubMsg []byte) {
	t := f.t
	m := mustDecodeMLSMessage(t, what+"_pub", pubMsg, WireFormatPublicMessage)
	ac, err := f.keys().UnprotectPublic(m.PublicMessage)
	if err != nil {
		t.Fatalf("%s_pub: unprotect: %v", what, err)
	}
	if err := f.s.VerifyContent(f.tc.SignaturePub, ac, f.gc); err != nil {
		t.Fatalf("%s_pub: %v", what, err)
	}
	if ac.Content.ContentType != ct || !bytes.Equal(rawContent(t, &ac.Content), raw) {
		t.Fatalf("%s_pub does not carry the raw %s", what, what)
	}
	// Flipping a bit of the membership tag must be caught.
	m.PublicMessage.MembershipTag[0] ^= 1
	if _, err := f.keys().UnprotectPublic(m.PublicMessage); !errors.Is(err, ErrBadMembershipTag) {
		t.Fatalf("%s_pub with a corrupted membership tag: %v", what, err)
	}

	// Our own protection must verify the same way.
	ours, err := f.keys().ProtectPublic(f.sign(WireFormatPublicMessage, f.content(ct, raw)))
	if err != nil {
		t.Fatalf("%s: protect as PublicMessage: %v", what, err)
	}
	enc, err := wire.Marshal(&MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: ours})
	if err != nil {
		t.Fatal(err)
	}
	back := mustDecodeMLSMessage(t, what+" (ours)", enc, WireFormatPublicMessage)
	ac, err = f.keys().UnprotectPublic(back.PublicMessage)
	if err != nil {
		t.Fatalf("%s: unprotect our PublicMessage: %v", what, err)
	}
	if err := f.s.VerifyContent(f.tc.SignaturePub, ac, f.gc); err != nil {
		t.Fatalf("%s: our PublicMessage: %v", what, err)
	}
	if !bytes.Equal(rawContent(t, &ac.Content), raw) {
		t.Fatalf("%s: our PublicMessage round-trips to different content", what)
	}
}

func (f *protectionFixture) checkPrivate(what string, ct ContentType, raw, privMsg []byte) {
	t := f.t
	m := mustDecodeMLSMessage(t, what+"_priv", privMsg, WireFormatPrivateMessage)
	keys := f.keys()
	ac, err := keys.UnprotectPrivate(m.PrivateMessage)
	if err != nil {
		t.Fatalf("%s_priv: unprotect: %v", what, err)
	}
	if err := f.s.VerifyContent(f.tc.SignaturePub, ac, f.gc); err != nil {
		t.Fatalf("%s_priv: %v", what, err)
	}
	if ac.Content.ContentType != ct || !bytes.Equal(rawContent(t, &ac.Content), raw) {
		t.Fatalf("%s_priv does not carry the raw %s", what, what)
	}
	// The key is gone after one use: a replay must fail.
	if _, err := keys.UnprotectPrivate(m.PrivateMessage); err == nil {
		t.Fatalf("%s_priv decrypted twice", what)
	}

	sender := f.keys()
	ours, err := sender.ProtectPrivate(f.sign(WireFormatPrivateMessage, f.content(ct, raw)), 17)
	if err != nil {
		t.Fatalf("%s: protect as PrivateMessage: %v", what, err)
	}
	enc, err := wire.Marshal(&MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: ours})
	if err != nil {
		t.Fatal(err)
	}
	back := mustDecodeMLSMessage(t, what+" (ours)", enc, WireFormatPrivateMessage)
	ac, err = f.keys().UnprotectPrivate(back.PrivateMessage)
	if err != nil {
		t.Fatalf("%s: unprotect our PrivateMessage: %v", what, err)
	}
	if err := f.s.VerifyContent(f.tc.SignaturePub, ac, f.gc); err != nil {
		t.Fatalf("%s: our PrivateMessage: %v", what, err)
	}
	if !bytes.Equal(rawContent(t, &ac.Content), raw) {
		t.Fatalf("%s: our PrivateMessage round-trips to different content", what)
	}
}

func checkMessageProtectionVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[messageProtectionVector](t, data) {
		s := mustSuite(t, tc.CipherSuite)
		f := &protectionFixture{t: t, s: s, tc: &tc, gc: &GroupContext{
			Version:                 ProtocolMLS10,
			CipherSuite:             s.ID,
			GroupID:                 tc.GroupID,
			Epoch:                   tc.Epoch,
			TreeHash:                tc.TreeHash,
			ConfirmedTranscriptHash: tc.ConfirmedTranscriptHash,
		}}
		t.Run(itoa(i)+"/"+s.Name, func(t *testing.T) {
			f.t = t
			f.checkPublic("proposal", ContentTypeProposal, tc.Proposal, tc.ProposalPub)
			f.checkPrivate("proposal", ContentTypeProposal, tc.Proposal, tc.ProposalPriv)
			f.checkPublic("commit", ContentTypeCommit, tc.Commit, tc.CommitPub)
			f.checkPrivate("commit", ContentTypeCommit, tc.Commit, tc.CommitPriv)
			f.checkPrivate("application", ContentTypeApplication, tc.Application, tc.ApplicationPriv)
			ac := f.sign(WireFormatPublicMessage, f.content(ContentTypeApplication, tc.Application))
			if _, err := f.keys().ProtectPublic(ac); !errors.Is(err, errApplicationInPublic) {
				t.Fatalf("protecting application data as a PublicMessage: %v", err)
			}
		})
	}
}
