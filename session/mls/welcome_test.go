package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

// wtWelcome is a Welcome built the way a committer builds one, with what
// the test needs to open or break it.
type wtWelcome struct {
	s            *CipherSuite
	joiner       *kptMember
	signerPriv   []byte
	signerPub    []byte
	joinerSecret []byte
	gi           *GroupInfo
	w            *Welcome
}

func wtBuild(t *testing.T, s *CipherSuite) *wtWelcome {
	t.Helper()
	joiner := kptNewMember(t, s, KeyPackageOptions{})
	signerPriv, signerPub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	joinerSecret := make([]byte, s.Nh())
	rand.Read(joinerSecret)

	gi := &GroupInfo{
		GroupContext: GroupContext{
			Version:                 ProtocolMLS10,
			CipherSuite:             s.ID,
			GroupID:                 []byte("group"),
			Epoch:                   1,
			TreeHash:                s.Digest([]byte("tree")),
			ConfirmedTranscriptHash: s.Digest([]byte("transcript")),
		},
		Extensions: Extensions{{Type: ExtExternalPub, Data: []byte("pub")}},
		Signer:     2,
	}
	es, err := s.NewEpochSecrets(joinerSecret, nil, &gi.GroupContext)
	if err != nil {
		t.Fatal(err)
	}
	gi.ConfirmationTag = s.ConfirmationTag(es.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash)
	es.Wipe()
	if err := gi.Sign(s, signerPriv); err != nil {
		t.Fatal(err)
	}

	welcomeSecret, err := s.WelcomeSecret(joinerSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	egi, err := EncryptGroupInfo(s, welcomeSecret, gi)
	if err != nil {
		t.Fatal(err)
	}
	gs := &GroupSecrets{JoinerSecret: bytes.Clone(joinerSecret), PathSecret: &PathSecret{s.Digest([]byte("path"))}}
	ct, err := EncryptGroupSecrets(s, joiner.kp.InitKey, gs, egi)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := joiner.kp.Ref(s)
	if err != nil {
		t.Fatal(err)
	}
	// Another joiner's entry first, so FindSecrets has to search.
	other := kptNewMember(t, s, KeyPackageOptions{})
	otherRef, _ := other.kp.Ref(s)
	otherCT, err := EncryptGroupSecrets(s, other.kp.InitKey, gs, egi)
	if err != nil {
		t.Fatal(err)
	}
	w := &Welcome{
		CipherSuite:        s.ID,
		Secrets:            []EncryptedGroupSecrets{{otherRef, otherCT}, {ref, ct}},
		EncryptedGroupInfo: egi,
	}
	return &wtWelcome{s, joiner, signerPriv, signerPub, joinerSecret, gi, w}
}

// open joins as the test's joiner: find, decrypt, verify, as section
// 12.4.3.1 orders it.
func (b *wtWelcome) open(initPriv, signerPub []byte) (*GroupSecrets, *GroupInfo, error) {
	s := b.s
	ref, err := b.joiner.kp.Ref(s)
	if err != nil {
		return nil, nil, err
	}
	egs, ok := b.w.FindSecrets(ref)
	if !ok {
		return nil, nil, errors.New("no secrets")
	}
	gs, err := DecryptGroupSecrets(s, initPriv, &egs.EncryptedGroupSecrets, b.w.EncryptedGroupInfo)
	if err != nil {
		return nil, nil, err
	}
	welcomeSecret, err := s.WelcomeSecret(gs.JoinerSecret, nil)
	if err != nil {
		return nil, nil, err
	}
	gi, err := DecryptGroupInfo(s, welcomeSecret, b.w.EncryptedGroupInfo)
	if err != nil {
		return nil, nil, err
	}
	if err := gi.VerifySignature(s, signerPub); err != nil {
		return nil, nil, err
	}
	es, err := s.NewEpochSecrets(gs.JoinerSecret, nil, &gi.GroupContext)
	if err != nil {
		return nil, nil, err
	}
	defer es.Wipe()
	if err := s.VerifyConfirmationTag(es.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		return nil, nil, err
	}
	return gs, gi, nil
}

func TestWelcomeRoundTrip(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			b := wtBuild(t, s)
			// Through the wire, as the joiner receives it.
			enc, err := wire.Marshal(&MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatWelcome, Welcome: b.w})
			if err != nil {
				t.Fatal(err)
			}
			var msg MLSMessage
			if err := wire.Unmarshal(enc, &msg); err != nil {
				t.Fatal(err)
			}
			b.w = msg.Welcome

			gs, gi, err := b.open(b.joiner.initPriv, b.signerPub)
			if err != nil {
				t.Fatalf("joining: %v", err)
			}
			if !bytes.Equal(gs.JoinerSecret, b.joinerSecret) || gs.PathSecret == nil || !bytes.Equal(gs.PathSecret.PathSecret, s.Digest([]byte("path"))) {
				t.Error("GroupSecrets changed in transit")
			}
			if !reflect.DeepEqual(gi, b.gi) {
				t.Errorf("GroupInfo changed in transit:\n got  %+v\n want %+v", gi, b.gi)
			}
			gs.Wipe()
			if !bytes.Equal(gs.JoinerSecret, make([]byte, s.Nh())) || !bytes.Equal(gs.PathSecret.PathSecret, make([]byte, s.Nh())) {
				t.Error("Wipe left secrets behind")
			}
		})
	}
}

func TestWelcomeRejects(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			b := wtBuild(t, s)

			// The init key of another KeyPackage cannot open our secrets.
			stranger := kptNewMember(t, s, KeyPackageOptions{})
			if _, _, err := b.open(stranger.initPriv, b.signerPub); !errors.Is(err, ErrDecrypt) {
				t.Errorf("wrong init key: %v, want ErrDecrypt", err)
			}
			// Nor can the leaf's encryption key, which must differ from it.
			if _, _, err := b.open(b.joiner.encPriv, b.signerPub); !errors.Is(err, ErrDecrypt) {
				t.Errorf("encryption key as init key: %v, want ErrDecrypt", err)
			}
			// A GroupInfo signed by someone else.
			_, otherPub, _ := s.GenerateSignatureKeyPair()
			if _, _, err := b.open(b.joiner.initPriv, otherPub); !errors.Is(err, ErrBadSignature) {
				t.Errorf("wrong signer: %v, want ErrBadSignature", err)
			}
			// A missing entry.
			if _, ok := b.w.FindSecrets(s.Digest([]byte("nobody"))); ok {
				t.Error("FindSecrets found an unknown reference")
			}
			if _, ok := b.w.FindSecrets(nil); ok {
				t.Error("FindSecrets found an empty reference")
			}
			if _, ok := (*Welcome)(nil).FindSecrets([]byte{1}); ok {
				t.Error("FindSecrets on nil Welcome")
			}

			// Tampering with the encrypted GroupInfo breaks both layers:
			// it is the HPKE context of the secrets, and AEAD-protected.
			egi := b.w.EncryptedGroupInfo
			b.w.EncryptedGroupInfo = bytes.Clone(egi)
			b.w.EncryptedGroupInfo[0] ^= 1
			if _, _, err := b.open(b.joiner.initPriv, b.signerPub); !errors.Is(err, ErrDecrypt) {
				t.Errorf("tampered encrypted_group_info: %v, want ErrDecrypt", err)
			}
			welcomeSecret, _ := s.WelcomeSecret(b.joinerSecret, nil)
			if _, err := DecryptGroupInfo(s, welcomeSecret, b.w.EncryptedGroupInfo); !errors.Is(err, ErrDecrypt) {
				t.Errorf("tampered GroupInfo ciphertext: %v, want ErrDecrypt", err)
			}
			b.w.EncryptedGroupInfo = egi
			wrongSecret := bytes.Clone(welcomeSecret)
			wrongSecret[0] ^= 1
			if _, err := DecryptGroupInfo(s, wrongSecret, egi); !errors.Is(err, ErrDecrypt) {
				t.Errorf("wrong welcome secret: %v, want ErrDecrypt", err)
			}
			for _, short := range [][]byte{nil, egi[:1], egi[:len(egi)-1]} {
				if _, err := DecryptGroupInfo(s, welcomeSecret, short); err == nil {
					t.Error("truncated GroupInfo ciphertext accepted")
				}
			}
			// Tampered KEM output or ciphertext of the secrets.
			ref, _ := b.joiner.kp.Ref(s)
			egs, _ := b.w.FindSecrets(ref)
			for _, ct := range []HPKECiphertext{
				{KEMOutput: wtFlipLast(egs.EncryptedGroupSecrets.KEMOutput), Ciphertext: egs.EncryptedGroupSecrets.Ciphertext},
				{KEMOutput: egs.EncryptedGroupSecrets.KEMOutput, Ciphertext: wtFlipLast(egs.EncryptedGroupSecrets.Ciphertext)},
				{KEMOutput: egs.EncryptedGroupSecrets.KEMOutput[:1], Ciphertext: egs.EncryptedGroupSecrets.Ciphertext},
				{},
			} {
				if _, err := DecryptGroupSecrets(s, b.joiner.initPriv, &ct, egi); !errors.Is(err, ErrDecrypt) {
					t.Errorf("tampered GroupSecrets: %v, want ErrDecrypt", err)
				}
			}
			if _, err := DecryptGroupSecrets(s, b.joiner.initPriv, nil, egi); err == nil {
				t.Error("nil ciphertext accepted")
			}
		})
	}
}

func wtFlipLast(b []byte) []byte {
	b = bytes.Clone(b)
	if len(b) > 0 {
		b[len(b)-1] ^= 1
	}
	return b
}

func TestWelcomeGroupInfoSignature(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			b := wtBuild(t, s)
			gi := b.gi
			if err := gi.VerifySignature(s, b.signerPub); err != nil {
				t.Fatal(err)
			}
			for name, mutate := range map[string]func(g *GroupInfo){
				"signature": func(g *GroupInfo) { g.Signature = wtFlipLast(g.Signature) },
				"signer":    func(g *GroupInfo) { g.Signer++ },
				"epoch":     func(g *GroupInfo) { g.GroupContext.Epoch++ },
				"tag":       func(g *GroupInfo) { g.ConfirmationTag = wtFlipLast(g.ConfirmationTag) },
				"extension": func(g *GroupInfo) { g.Extensions = nil },
				"empty sig": func(g *GroupInfo) { g.Signature = nil },
			} {
				g := *gi
				mutate(&g)
				if err := g.VerifySignature(s, b.signerPub); !errors.Is(err, ErrBadSignature) {
					t.Errorf("%s altered: %v, want ErrBadSignature", name, err)
				}
			}
			if err := gi.VerifySignature(s, nil); err == nil {
				t.Error("empty public key accepted")
			}
			if err := (*GroupInfo)(nil).VerifySignature(s, b.signerPub); err == nil {
				t.Error("nil GroupInfo accepted")
			}
		})
	}
}

func TestWelcomeGroupInfoSuiteMismatch(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	b := wtBuild(t, s)
	gi := *b.gi
	gi.GroupContext.CipherSuite = MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519
	welcomeSecret, _ := s.WelcomeSecret(b.joinerSecret, nil)
	egi, err := EncryptGroupInfo(s, welcomeSecret, &gi)
	if err != nil {
		t.Fatal(err)
	}
	kptExpectErr(t, func() error { _, err := DecryptGroupInfo(s, welcomeSecret, egi); return err }(), "cipher suite")

	if _, err := EncryptGroupInfo(s, welcomeSecret, nil); err == nil {
		t.Error("nil GroupInfo encrypted")
	}
	if _, err := EncryptGroupInfo(nil, welcomeSecret, &gi); err == nil {
		t.Error("nil suite accepted")
	}
	if _, err := EncryptGroupSecrets(s, []byte("bad key"), &GroupSecrets{JoinerSecret: b.joinerSecret}, egi); err == nil {
		t.Error("malformed init key accepted")
	}
	if _, err := EncryptGroupSecrets(s, b.joiner.kp.InitKey, nil, egi); err == nil {
		t.Error("nil GroupSecrets encrypted")
	}
}
