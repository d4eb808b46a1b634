package mls

import (
	"bytes"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func init() {
	registerVectorChecker("passive-client-welcome", checkPassiveClientVectors)
	registerVectorChecker("passive-client-handling-commit", checkPassiveClientVectors)
	registerVectorChecker("passive-client-random", checkPassiveClientVectors)
}

type passiveClientVector struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID hexBytes `json:"psk_id"`
		PSK   hexBytes `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                hexBytes `json:"key_package"`
	SignaturePriv             hexBytes `json:"signature_priv"`
	EncryptionPriv            hexBytes `json:"encryption_priv"`
	InitPriv                  hexBytes `json:"init_priv"`
	Welcome                   hexBytes `json:"welcome"`
	RatchetTree               hexBytes `json:"ratchet_tree"`
	InitialEpochAuthenticator hexBytes `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []hexBytes `json:"proposals"`
		Commit             hexBytes   `json:"commit"`
		EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

func checkPassiveClientVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[passiveClientVector](t, data) {
		s := mustSuite(t, tc.CipherSuite)
		t.Run(itoa(i)+"/"+s.Name, func(t *testing.T) { runPassiveClient(t, s, &tc) })
	}
}

func decodeMessage(t *testing.T, what string, b []byte) *MLSMessage {
	t.Helper()
	var m MLSMessage
	if err := wire.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding %s: %v", what, err)
	}
	return &m
}

func runPassiveClient(t *testing.T, s *CipherSuite, tc *passiveClientVector) {
	kpMsg := decodeMessage(t, "key_package", tc.KeyPackage)
	if kpMsg.KeyPackage == nil {
		t.Fatal("key_package is not a KeyPackage")
	}
	kp := kpMsg.KeyPackage
	if pub, err := s.SignaturePublicKey(tc.SignaturePriv); err != nil || !bytes.Equal(pub, kp.LeafNode.SignatureKey) {
		t.Fatalf("signature_priv does not match the KeyPackage (%v)", err)
	}
	if pub, err := s.HPKEPublicKey(tc.EncryptionPriv); err != nil || !bytes.Equal(pub, kp.LeafNode.EncryptionKey) {
		t.Fatalf("encryption_priv does not match the KeyPackage (%v)", err)
	}
	if pub, err := s.HPKEPublicKey(tc.InitPriv); err != nil || !bytes.Equal(pub, kp.InitKey) {
		t.Fatalf("init_priv does not match the KeyPackage (%v)", err)
	}

	psks := map[string][]byte{}
	for _, p := range tc.ExternalPSKs {
		psks[string(p.PSKID)] = p.PSK
	}
	cfg := GroupConfig{
		ExternalPSKs: func(id []byte) ([]byte, bool) { v, ok := psks[string(id)]; return v, ok },
		// The vectors replay long histories; keep every resumption PSK.
		ResumptionPSKs: 1 << 16,
		// The vectors' KeyPackages live from 0 to 2^64-1 seconds.
		MaxLeafLifetime: -1,
	}
	var tree RatchetTree
	if tc.RatchetTree != nil {
		if err := wire.Unmarshal(tc.RatchetTree, &tree); err != nil {
			t.Fatalf("decoding ratchet_tree: %v", err)
		}
	}
	g, err := JoinFromWelcome(decodeMessage(t, "welcome", tc.Welcome), kp,
		&KeyPackageSecrets{InitPriv: tc.InitPriv, EncryptionPriv: tc.EncryptionPriv, SignaturePriv: tc.SignaturePriv}, tree, cfg)
	if err != nil {
		t.Fatalf("joining from the Welcome: %v", err)
	}
	expectEqual(t, "initial epoch authenticator", g.EpochAuthenticator(), tc.InitialEpochAuthenticator)
	for n, ep := range tc.Epochs {
		for j, p := range ep.Proposals {
			if _, err := g.Process(decodeMessage(t, "proposal", p)); err != nil {
				t.Fatalf("epoch %d proposal %d: %v", n, j, err)
			}
		}
		res, err := g.Process(decodeMessage(t, "commit", ep.Commit))
		if err != nil {
			t.Fatalf("epoch %d commit: %v", n, err)
		}
		if res.Kind != KindCommit {
			t.Fatalf("epoch %d: commit processed as kind %d", n, res.Kind)
		}
		expectEqual(t, "epoch "+itoa(n)+" authenticator", g.EpochAuthenticator(), ep.EpochAuthenticator)
		if t.Failed() {
			return
		}
	}
}
