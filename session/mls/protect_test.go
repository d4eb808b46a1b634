package mls

import (
	"bytes"
	"errors"
	"testing"
)

type protectHarness struct {
	s               *CipherSuite
	gc              *GroupContext
	epoch           *EpochSecrets
	sigPriv, sigPub []byte
}

func newProtectHarness(t *testing.T, id CipherSuiteID) *protectHarness {
	t.Helper()
	s, err := Suite(id)
	if err != nil {
		t.Fatal(err)
	}
	gc := &GroupContext{Version: ProtocolMLS10, CipherSuite: id, GroupID: []byte("group"), Epoch: 5, TreeHash: make([]byte, s.Nh())}
	e, err := s.NewEpochSecrets(bytes.Repeat([]byte{3}, s.Nh()), nil, gc)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return &protectHarness{s: s, gc: gc, epoch: e, sigPriv: priv, sigPub: pub}
}

func (h *protectHarness) keys(t *testing.T) *MessageKeys {
	tree, err := NewSecretTree(h.s, h.epoch.EncryptionSecret, 2, SecretTreeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &MessageKeys{Suite: h.s, Context: h.gc, MembershipKey: h.epoch.MembershipKey, SenderDataSecret: h.epoch.SenderDataSecret, Tree: tree}
}

func (h *protectHarness) app(t *testing.T, wf WireFormat, data string) *AuthenticatedContent {
	c := &FramedContent{GroupID: h.gc.GroupID, Epoch: h.gc.Epoch, Sender: Sender{SenderType: SenderTypeMember, LeafIndex: 1},
		AuthenticatedData: []byte("aad"), ContentType: ContentTypeApplication, ApplicationData: []byte(data)}
	ac, err := h.s.SignContent(h.sigPriv, wf, c, h.gc)
	if err != nil {
		t.Fatal(err)
	}
	return ac
}

func (h *protectHarness) removeProposal(t *testing.T) *AuthenticatedContent {
	c := &FramedContent{GroupID: h.gc.GroupID, Epoch: h.gc.Epoch, Sender: Sender{SenderType: SenderTypeMember, LeafIndex: 1},
		ContentType: ContentTypeProposal, Proposal: &Proposal{ProposalType: ProposalRemove, Remove: &Remove{Removed: 0}}}
	ac, err := h.s.SignContent(h.sigPriv, WireFormatPublicMessage, c, h.gc)
	if err != nil {
		t.Fatal(err)
	}
	return ac
}

func TestPrivateMessageRejectsTampering(t *testing.T) {
	h := newProtectHarness(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	pm, err := h.keys(t).ProtectPrivate(h.app(t, WireFormatPrivateMessage, "hello"), 8)
	if err != nil {
		t.Fatal(err)
	}
	clone := func() *PrivateMessage {
		c := *pm
		c.GroupID = bytes.Clone(pm.GroupID)
		c.AuthenticatedData = bytes.Clone(pm.AuthenticatedData)
		c.EncryptedSenderData = bytes.Clone(pm.EncryptedSenderData)
		c.Ciphertext = bytes.Clone(pm.Ciphertext)
		return &c
	}
	for name, tc := range map[string]struct {
		mutate func(*PrivateMessage)
		want   error
	}{
		"ciphertext":         {func(m *PrivateMessage) { m.Ciphertext[len(m.Ciphertext)-1] ^= 1 }, ErrDecrypt},
		"sender data":        {func(m *PrivateMessage) { m.EncryptedSenderData[0] ^= 1 }, ErrDecrypt},
		"authenticated data": {func(m *PrivateMessage) { m.AuthenticatedData[0] ^= 1 }, ErrDecrypt},
		"content type":       {func(m *PrivateMessage) { m.ContentType = ContentTypeProposal }, ErrDecrypt},
		"epoch":              {func(m *PrivateMessage) { m.Epoch++ }, ErrWrongEpoch},
		"group":              {func(m *PrivateMessage) { m.GroupID[0] ^= 1 }, ErrWrongGroup},
	} {
		t.Run(name, func(t *testing.T) {
			m := clone()
			tc.mutate(m)
			if _, err := h.keys(t).UnprotectPrivate(m); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v; want %v", err, tc.want)
			}
		})
	}

	keys := h.keys(t)
	keys.IsMember = func(l LeafIndex) bool { return l == 0 }
	if _, err := keys.UnprotectPrivate(clone()); !errors.Is(err, ErrUnknownSender) {
		t.Fatalf("message from a blank leaf: error = %v", err)
	}

	keys = h.keys(t)
	ac, err := keys.UnprotectPrivate(clone())
	if err != nil {
		t.Fatal(err)
	}
	if string(ac.Content.ApplicationData) != "hello" || string(ac.Content.AuthenticatedData) != "aad" {
		t.Fatalf("decrypted %q / %q", ac.Content.ApplicationData, ac.Content.AuthenticatedData)
	}
	if err := h.s.VerifyContent(h.sigPub, ac, h.gc); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.UnprotectPrivate(clone()); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("replayed message: error = %v; want ErrGenerationConsumed", err)
	}
}

func TestSignatureBindsGroupContext(t *testing.T) {
	h := newProtectHarness(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	ac := h.app(t, WireFormatPrivateMessage, "x")
	other := *h.gc
	other.Epoch++
	if err := h.s.VerifyContent(h.sigPub, ac, &other); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("signature verified under another epoch's context: %v", err)
	}
	ac.WireFormat = WireFormatPublicMessage
	if err := h.s.VerifyContent(h.sigPub, ac, h.gc); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("signature verified under another wire format: %v", err)
	}
}

func TestPublicMessageMembershipTag(t *testing.T) {
	h := newProtectHarness(t, MLS128DHKEMP256AES128GCMSHA256P256)
	pm, err := h.keys(t).ProtectPublic(h.removeProposal(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.keys(t).UnprotectPublic(pm); err != nil {
		t.Fatal(err)
	}
	wrong := h.keys(t)
	wrong.MembershipKey = bytes.Repeat([]byte{9}, h.s.Nh())
	if _, err := wrong.UnprotectPublic(pm); !errors.Is(err, ErrBadMembershipTag) {
		t.Fatalf("wrong membership key: error = %v", err)
	}
	pm.Content.Proposal.Remove.Removed = 1
	if _, err := h.keys(t).UnprotectPublic(pm); !errors.Is(err, ErrBadMembershipTag) {
		t.Fatalf("modified content: error = %v", err)
	}
}

func TestSenderContentRules(t *testing.T) {
	h := newProtectHarness(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	for _, c := range []FramedContent{
		{Sender: Sender{SenderType: SenderTypeExternal}, ContentType: ContentTypeApplication},
		{Sender: Sender{SenderType: SenderTypeNewMemberCommit}, ContentType: ContentTypeProposal, Proposal: &Proposal{ProposalType: ProposalRemove, Remove: &Remove{}}},
		{Sender: Sender{SenderType: SenderTypeNewMemberProposal}, ContentType: ContentTypeProposal, Proposal: &Proposal{ProposalType: ProposalRemove, Remove: &Remove{}}},
		{Sender: Sender{SenderType: 9}, ContentType: ContentTypeApplication},
	} {
		c.GroupID, c.Epoch = h.gc.GroupID, h.gc.Epoch
		if _, err := h.s.SignContent(h.sigPriv, WireFormatPublicMessage, &c, h.gc); err == nil {
			t.Errorf("signed forbidden combination sender %d / content %d", c.Sender.SenderType, c.ContentType)
		}
	}
}

func TestKeyScheduleWipe(t *testing.T) {
	h := newProtectHarness(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	exporter := h.epoch.ExporterSecret
	h.epoch.Wipe()
	if !bytes.Equal(exporter, make([]byte, len(exporter))) {
		t.Fatal("exporter secret not zeroed")
	}
	if _, err := h.epoch.Export("x", nil, 16); err == nil {
		t.Fatal("export after wipe succeeded")
	}
}
