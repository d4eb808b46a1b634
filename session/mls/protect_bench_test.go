package mls

import (
	"bytes"
	"testing"
)

// benchEpoch builds the secrets of a two-member group's first epoch.
func benchEpoch(b *testing.B, s *CipherSuite) (*EpochSecrets, *GroupContext) {
	b.Helper()
	gc := &GroupContext{Version: ProtocolMLS10, CipherSuite: s.ID, GroupID: []byte("bench-group"), TreeHash: bytes.Repeat([]byte{1}, s.Nh())}
	e, err := s.NewEpochSecrets(bytes.Repeat([]byte{7}, s.Nh()), nil, gc)
	if err != nil {
		b.Fatal(err)
	}
	return e, gc
}

func BenchmarkExporter(b *testing.B) {
	for _, s := range Suites() {
		b.Run(s.Name, func(b *testing.B) {
			e, _ := benchEpoch(b, s)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Export("MLS-TLS c ap traffic", nil, s.Nh()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSealPrivateMessage(b *testing.B) {
	payload := bytes.Repeat([]byte{0x45}, 1400)
	for _, s := range Suites() {
		b.Run(s.Name, func(b *testing.B) {
			e, gc := benchEpoch(b, s)
			sigPriv, _, err := s.GenerateSignatureKeyPair()
			if err != nil {
				b.Fatal(err)
			}
			tree, err := NewSecretTree(s, e.EncryptionSecret, 2, SecretTreeConfig{})
			if err != nil {
				b.Fatal(err)
			}
			keys := &MessageKeys{Suite: s, Context: gc, MembershipKey: e.MembershipKey, SenderDataSecret: e.SenderDataSecret, Tree: tree}
			content := &FramedContent{
				GroupID: gc.GroupID, Epoch: gc.Epoch,
				Sender:      Sender{SenderType: SenderTypeMember, LeafIndex: 0},
				ContentType: ContentTypeApplication, ApplicationData: payload,
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				ac, err := s.SignContent(sigPriv, WireFormatPrivateMessage, content, gc)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := keys.ProtectPrivate(ac, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
