package mls

import (
	"fmt"
	"testing"
)

func init() { registerVectorChecker("secret-tree", checkSecretTreeVectors) }

type secretTreeVector struct {
	CipherSuite uint16 `json:"cipher_suite"`
	SenderData  struct {
		SenderDataSecret hexBytes `json:"sender_data_secret"`
		Ciphertext       hexBytes `json:"ciphertext"`
		Key              hexBytes `json:"key"`
		Nonce            hexBytes `json:"nonce"`
	} `json:"sender_data"`
	EncryptionSecret hexBytes `json:"encryption_secret"`
	Leaves           [][]struct {
		Generation       uint32   `json:"generation"`
		HandshakeKey     hexBytes `json:"handshake_key"`
		HandshakeNonce   hexBytes `json:"handshake_nonce"`
		ApplicationKey   hexBytes `json:"application_key"`
		ApplicationNonce hexBytes `json:"application_nonce"`
	} `json:"leaves"`
}

func checkSecretTreeVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[secretTreeVector](t, data) {
		t.Run(fmt.Sprintf("case%d_suite%d_leaves%d", i, tc.CipherSuite, len(tc.Leaves)), func(t *testing.T) {
			s := mustSuite(t, tc.CipherSuite)
			sd := tc.SenderData
			key, nonce, err := SenderDataKeyNonce(s, sd.SenderDataSecret, sd.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			expectEqual(t, "sender_data key", key, sd.Key)
			expectEqual(t, "sender_data nonce", nonce, sd.Nonce)

			if len(tc.Leaves) == 0 {
				t.Fatal("vector has no leaves")
			}
			// The receiver tree fetches the listed generations, skipping
			// between them; the sender tree checks that Next starts at the
			// same keys, so both paths through a ratchet are covered.
			receiver, err := NewSecretTree(s, tc.EncryptionSecret, uint32(len(tc.Leaves)), SecretTreeConfig{})
			if err != nil {
				t.Fatal(err)
			}
			sender, err := NewSecretTree(s, tc.EncryptionSecret, uint32(len(tc.Leaves)), SecretTreeConfig{})
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for leaf, gens := range tc.Leaves {
				for _, g := range gens {
					for _, r := range []struct {
						typ        RatchetType
						key, nonce hexBytes
					}{
						{HandshakeRatchet, g.HandshakeKey, g.HandshakeNonce},
						{ApplicationRatchet, g.ApplicationKey, g.ApplicationNonce},
					} {
						what := fmt.Sprintf("leaf %d %s generation %d", leaf, r.typ, g.Generation)
						key, nonce, err := receiver.Get(uint32(leaf), r.typ, g.Generation)
						if err != nil {
							t.Fatalf("%s: %v", what, err)
						}
						expectEqual(t, what+" key", key, r.key)
						expectEqual(t, what+" nonce", nonce, r.nonce)
						checked++
						if g.Generation != 0 {
							continue
						}
						gen, key, nonce, err := sender.Next(uint32(leaf), r.typ)
						if err != nil || gen != 0 {
							t.Fatalf("%s: Next = generation %d, %v", what, gen, err)
						}
						expectEqual(t, what+" key from Next", key, r.key)
						expectEqual(t, what+" nonce from Next", nonce, r.nonce)
					}
				}
			}
			if checked == 0 {
				t.Fatal("vector lists no generation")
			}
		})
	}
}
