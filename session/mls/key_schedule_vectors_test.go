package mls

import (
	"bytes"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func init() {
	registerVectorChecker("key-schedule", checkKeyScheduleVectors)
	registerVectorChecker("psk_secret", checkPSKSecretVectors)
}

type keyScheduleVector struct {
	CipherSuite       uint16   `json:"cipher_suite"`
	GroupID           hexBytes `json:"group_id"`
	InitialInitSecret hexBytes `json:"initial_init_secret"`
	Epochs            []struct {
		TreeHash                hexBytes `json:"tree_hash"`
		CommitSecret            hexBytes `json:"commit_secret"`
		PSKSecret               hexBytes `json:"psk_secret"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`

		GroupContext       hexBytes `json:"group_context"`
		JoinerSecret       hexBytes `json:"joiner_secret"`
		WelcomeSecret      hexBytes `json:"welcome_secret"`
		InitSecret         hexBytes `json:"init_secret"`
		SenderDataSecret   hexBytes `json:"sender_data_secret"`
		EncryptionSecret   hexBytes `json:"encryption_secret"`
		ExporterSecret     hexBytes `json:"exporter_secret"`
		EpochAuthenticator hexBytes `json:"epoch_authenticator"`
		ExternalSecret     hexBytes `json:"external_secret"`
		ConfirmationKey    hexBytes `json:"confirmation_key"`
		MembershipKey      hexBytes `json:"membership_key"`
		ResumptionPSK      hexBytes `json:"resumption_psk"`
		ExternalPub        hexBytes `json:"external_pub"`
		Exporter           struct {
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  int      `json:"length"`
			Secret  hexBytes `json:"secret"`
		} `json:"exporter"`
	} `json:"epochs"`
}

func checkKeyScheduleVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[keyScheduleVector](t, data) {
		s := mustSuite(t, tc.CipherSuite)
		if len(tc.Epochs) == 0 {
			t.Fatalf("case %d: no epochs", i)
		}
		initSecret := []byte(tc.InitialInitSecret)
		for n, ep := range tc.Epochs {
			gc := &GroupContext{
				Version:                 ProtocolMLS10,
				CipherSuite:             s.ID,
				GroupID:                 tc.GroupID,
				Epoch:                   uint64(n),
				TreeHash:                ep.TreeHash,
				ConfirmedTranscriptHash: ep.ConfirmedTranscriptHash,
			}
			where := func(field string) string { return s.Name + " case " + itoa(i) + " epoch " + itoa(n) + ": " + field }
			gcBytes, err := wire.Marshal(gc)
			if err != nil {
				t.Fatal(err)
			}
			expectEqual(t, where("group_context"), gcBytes, ep.GroupContext)

			secrets, joiner, err := s.NextEpochSecrets(initSecret, ep.CommitSecret, ep.PSKSecret, gc)
			if err != nil {
				t.Fatalf("%s: %v", where("key schedule"), err)
			}
			expectEqual(t, where("joiner_secret"), joiner, ep.JoinerSecret)
			welcome, err := s.WelcomeSecret(joiner, ep.PSKSecret)
			if err != nil {
				t.Fatal(err)
			}
			expectEqual(t, where("welcome_secret"), welcome, ep.WelcomeSecret)
			expectEqual(t, where("init_secret"), secrets.InitSecret, ep.InitSecret)
			expectEqual(t, where("sender_data_secret"), secrets.SenderDataSecret, ep.SenderDataSecret)
			expectEqual(t, where("encryption_secret"), secrets.EncryptionSecret, ep.EncryptionSecret)
			expectEqual(t, where("exporter_secret"), secrets.ExporterSecret, ep.ExporterSecret)
			expectEqual(t, where("epoch_authenticator"), secrets.EpochAuthenticator, ep.EpochAuthenticator)
			expectEqual(t, where("external_secret"), secrets.ExternalSecret, ep.ExternalSecret)
			expectEqual(t, where("confirmation_key"), secrets.ConfirmationKey, ep.ConfirmationKey)
			expectEqual(t, where("membership_key"), secrets.MembershipKey, ep.MembershipKey)
			expectEqual(t, where("resumption_psk"), secrets.ResumptionPSK, ep.ResumptionPSK)

			_, pub, err := secrets.ExternalKeyPair()
			if err != nil {
				t.Fatalf("%s: %v", where("external key pair"), err)
			}
			expectEqual(t, where("external_pub"), pub, ep.ExternalPub)

			exported, err := secrets.Export(ep.Exporter.Label, ep.Exporter.Context, ep.Exporter.Length)
			if err != nil {
				t.Fatalf("%s: %v", where("exporter"), err)
			}
			expectEqual(t, where("exporter.secret"), exported, ep.Exporter.Secret)

			initSecret = bytes.Clone(secrets.InitSecret)
			secrets.Wipe()
		}
	}
}

type pskSecretVector struct {
	CipherSuite uint16 `json:"cipher_suite"`
	PSKs        []struct {
		PSKID    hexBytes `json:"psk_id"`
		PSK      hexBytes `json:"psk"`
		PSKNonce hexBytes `json:"psk_nonce"`
	} `json:"psks"`
	PSKSecret hexBytes `json:"psk_secret"`
}

func checkPSKSecretVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[pskSecretVector](t, data) {
		s := mustSuite(t, tc.CipherSuite)
		psks := make([]PSK, len(tc.PSKs))
		for j, p := range tc.PSKs {
			psks[j] = PSK{
				ID:     PreSharedKeyID{Type: PSKExternal, PSKID: p.PSKID, Nonce: p.PSKNonce},
				Secret: p.PSK,
			}
		}
		got, err := s.PSKSecret(psks)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		expectEqual(t, s.Name+" case "+itoa(i)+" ("+itoa(len(psks))+" PSKs): psk_secret", got, tc.PSKSecret)
	}
}
