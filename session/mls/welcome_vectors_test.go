package mls

import (
	"bytes"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls/wire"
)

func init() {
	registerVectorChecker("welcome", checkWelcomeVectors)
}

type welcomeVector struct {
	CipherSuite uint16   `json:"cipher_suite"`
	InitPriv    hexBytes `json:"init_priv"`
	SignerPub   hexBytes `json:"signer_pub"`
	KeyPackage  hexBytes `json:"key_package"`
	Welcome     hexBytes `json:"welcome"`
}

func checkWelcomeVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[welcomeVector](t, data) {
		t.Run(itoa(i), func(t *testing.T) {
			checkWelcomeVector(t, &tc)
		})
	}
}

func checkWelcomeVector(t *testing.T, tc *welcomeVector) {
	s := mustSuite(t, tc.CipherSuite)

	var kpMsg, wMsg MLSMessage
	if err := wire.Unmarshal(tc.KeyPackage, &kpMsg); err != nil {
		t.Fatalf("decoding key_package: %v", err)
	}
	if err := wire.Unmarshal(tc.Welcome, &wMsg); err != nil {
		t.Fatalf("decoding welcome: %v", err)
	}
	if kpMsg.WireFormat != WireFormatKeyPackage || wMsg.WireFormat != WireFormatWelcome {
		t.Fatalf("wire formats %d, %d; want KeyPackage, Welcome", kpMsg.WireFormat, wMsg.WireFormat)
	}
	kp, w := kpMsg.KeyPackage, wMsg.Welcome
	if kp.CipherSuite != s.ID || w.CipherSuite != s.ID {
		t.Fatalf("suites: KeyPackage %#04x, Welcome %#04x, vector %s", uint16(kp.CipherSuite), uint16(w.CipherSuite), s)
	}

	// The lifetime check alone is skipped (zero time): the vectors' leaves
	// carry [0, 2^64-1], which no moment fails but which our
	// MaxLeafNodeLifetime policy (section 7.2) rightly refuses for live
	// KeyPackages. Everything else of section 10.1 is checked.
	if err := kp.Validate(s, time.Time{}, BasicCredentials{}); err != nil {
		t.Fatalf("KeyPackage does not validate: %v", err)
	}
	if lt := kp.LeafNode.Lifetime; lt.NotAfter < lt.NotBefore {
		t.Errorf("KeyPackage lifetime [%d, %d] is empty", lt.NotBefore, lt.NotAfter)
	}

	ref, err := kp.Ref(s)
	if err != nil {
		t.Fatal(err)
	}
	egs, ok := w.FindSecrets(ref)
	if !ok {
		t.Fatalf("Welcome has no secrets for KeyPackageRef %x", ref)
	}
	gs, err := DecryptGroupSecrets(s, tc.InitPriv, &egs.EncryptedGroupSecrets, w.EncryptedGroupInfo)
	if err != nil {
		t.Fatalf("decrypting GroupSecrets: %v", err)
	}
	defer gs.Wipe()
	if len(gs.PSKs) != 0 {
		t.Fatalf("vector uses %d PSKs; the format defines none", len(gs.PSKs))
	}

	welcomeSecret, err := s.WelcomeSecret(gs.JoinerSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	gi, err := DecryptGroupInfo(s, welcomeSecret, w.EncryptedGroupInfo)
	if err != nil {
		t.Fatalf("decrypting GroupInfo: %v", err)
	}
	if err := gi.VerifySignature(s, tc.SignerPub); err != nil {
		t.Fatalf("GroupInfo signature: %v", err)
	}

	es, err := s.NewEpochSecrets(gs.JoinerSecret, nil, &gi.GroupContext)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Wipe()
	tag := s.ConfirmationTag(es.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash)
	expectEqual(t, "confirmation_tag", tag, gi.ConfirmationTag)
	if err := s.VerifyConfirmationTag(es.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		t.Error(err)
	}

	// Our own encoders must give back the bytes we were sent, or the
	// KeyPackageRef and signatures we compute would not match other stacks'.
	for _, m := range []struct {
		what string
		msg  *MLSMessage
		want []byte
	}{{"key_package", &kpMsg, tc.KeyPackage}, {"welcome", &wMsg, tc.Welcome}} {
		got, err := wire.Marshal(m.msg)
		if err != nil || !bytes.Equal(got, m.want) {
			t.Errorf("%s does not re-encode to the vector bytes (err %v)", m.what, err)
		}
	}
}
