package mls

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func init() { registerVectorChecker("crypto-basics", checkCryptoBasics) }

type cryptoBasicsCase struct {
	CipherSuite uint16 `json:"cipher_suite"`

	RefHash struct {
		Label string   `json:"label"`
		Value hexBytes `json:"value"`
		Out   hexBytes `json:"out"`
	} `json:"ref_hash"`

	ExpandWithLabel struct {
		Secret  hexBytes `json:"secret"`
		Label   string   `json:"label"`
		Context hexBytes `json:"context"`
		Length  uint16   `json:"length"`
		Out     hexBytes `json:"out"`
	} `json:"expand_with_label"`

	DeriveSecret struct {
		Secret hexBytes `json:"secret"`
		Label  string   `json:"label"`
		Out    hexBytes `json:"out"`
	} `json:"derive_secret"`

	DeriveTreeSecret struct {
		Secret     hexBytes `json:"secret"`
		Label      string   `json:"label"`
		Generation uint32   `json:"generation"`
		Length     uint16   `json:"length"`
		Out        hexBytes `json:"out"`
	} `json:"derive_tree_secret"`

	SignWithLabel struct {
		Priv      hexBytes `json:"priv"`
		Pub       hexBytes `json:"pub"`
		Content   hexBytes `json:"content"`
		Label     string   `json:"label"`
		Signature hexBytes `json:"signature"`
	} `json:"sign_with_label"`

	EncryptWithLabel struct {
		Priv       hexBytes `json:"priv"`
		Pub        hexBytes `json:"pub"`
		Label      string   `json:"label"`
		Context    hexBytes `json:"context"`
		Plaintext  hexBytes `json:"plaintext"`
		KEMOutput  hexBytes `json:"kem_output"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"encrypt_with_label"`
}

// cryptoBasicsFields lists every field test-vectors.md defines. A field
// missing from a case (or null) would otherwise decode to a zero value and
// could make a check pass by comparing nothing, so its absence fails the case.
var cryptoBasicsFields = map[string][]string{
	"ref_hash":           {"label", "value", "out"},
	"expand_with_label":  {"secret", "label", "context", "length", "out"},
	"derive_secret":      {"secret", "label", "out"},
	"derive_tree_secret": {"secret", "label", "generation", "length", "out"},
	"sign_with_label":    {"priv", "pub", "content", "label", "signature"},
	"encrypt_with_label": {"priv", "pub", "label", "context", "plaintext", "kem_output", "ciphertext"},
}

func checkCryptoBasics(t *testing.T, data []byte) {
	raw := decodeVectors[map[string]json.RawMessage](t, data)
	cases := decodeVectors[cryptoBasicsCase](t, data)
	if len(raw) != len(cases) {
		t.Fatalf("decoded %d raw cases but %d typed cases", len(raw), len(cases))
	}
	seen := map[uint16]bool{}
	for i, c := range cases {
		t.Run(fmt.Sprintf("case%d/suite%#04x", i, c.CipherSuite), func(t *testing.T) {
			if !cryptoBasicsComplete(t, raw[i]) {
				return
			}
			seen[c.CipherSuite] = true
			s := mustSuite(t, c.CipherSuite)
			checkCryptoBasicsCase(t, s, &c)
		})
	}
	// The official file covers every RFC 9420 suite; losing one (a
	// truncated or replaced file) must not go unnoticed.
	for id := uint16(1); id <= 7; id++ {
		if !seen[id] {
			t.Errorf("no complete crypto-basics case for cipher suite %#04x", id)
		}
	}
}

func cryptoBasicsComplete(t *testing.T, raw map[string]json.RawMessage) bool {
	t.Helper()
	ok := true
	if v, present := raw["cipher_suite"]; !present || string(v) == "null" {
		t.Error("case has no cipher_suite")
		ok = false
	}
	for group, fields := range cryptoBasicsFields {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw[group], &obj); err != nil || obj == nil {
			t.Errorf("case has no %s object", group)
			ok = false
			continue
		}
		for _, f := range fields {
			if v, present := obj[f]; !present || string(v) == "null" {
				t.Errorf("%s.%s is missing", group, f)
				ok = false
			}
		}
	}
	return ok
}

func cbExpectBytes(t *testing.T, what string, got []byte, err error, want []byte) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch\n got  %x\n want %x", what, got, want)
	}
}

func checkCryptoBasicsCase(t *testing.T, s *CipherSuite, c *cryptoBasicsCase) {
	{
		v := c.RefHash
		got, err := s.RefHash(v.Label, v.Value)
		cbExpectBytes(t, "ref_hash", got, err, v.Out)
	}
	{
		v := c.ExpandWithLabel
		if len(v.Out) != int(v.Length) {
			t.Errorf("expand_with_label: out is %d bytes but length is %d", len(v.Out), v.Length)
		}
		got, err := s.ExpandWithLabel(v.Secret, v.Label, v.Context, int(v.Length))
		cbExpectBytes(t, "expand_with_label", got, err, v.Out)
	}
	{
		v := c.DeriveSecret
		got, err := s.DeriveSecret(v.Secret, v.Label)
		cbExpectBytes(t, "derive_secret", got, err, v.Out)
	}
	{
		v := c.DeriveTreeSecret
		if len(v.Out) != int(v.Length) {
			t.Errorf("derive_tree_secret: out is %d bytes but length is %d", len(v.Out), v.Length)
		}
		got, err := s.DeriveTreeSecret(v.Secret, v.Label, v.Generation, int(v.Length))
		cbExpectBytes(t, "derive_tree_secret", got, err, v.Out)
	}
	{
		v := c.SignWithLabel
		pub, err := s.SignaturePublicKey(v.Priv)
		cbExpectBytes(t, "sign_with_label: public key of priv", pub, err, v.Pub)

		if err := s.VerifyWithLabel(v.Pub, v.Label, v.Content, v.Signature); err != nil {
			t.Errorf("sign_with_label: VerifyWithLabel(pub, label, content, signature): %v", err)
		}
		sig, err := s.SignWithLabel(v.Priv, v.Label, v.Content)
		if err != nil {
			t.Errorf("sign_with_label: SignWithLabel: %v", err)
		} else if err := s.VerifyWithLabel(v.Pub, v.Label, v.Content, sig); err != nil {
			t.Errorf("sign_with_label: VerifyWithLabel(pub, label, content, SignWithLabel(priv, label, content)): %v", err)
		}
		// The label must be bound: the vector signature is not valid
		// under any other label.
		if err := s.VerifyWithLabel(v.Pub, v.Label+"x", v.Content, v.Signature); err == nil {
			t.Error("sign_with_label: signature also verifies under a different label")
		}
	}
	{
		v := c.EncryptWithLabel
		pub, err := s.HPKEPublicKey(v.Priv)
		cbExpectBytes(t, "encrypt_with_label: public key of priv", pub, err, v.Pub)

		pt, err := s.DecryptWithLabel(v.Priv, v.Label, v.Context, v.KEMOutput, v.Ciphertext)
		cbExpectBytes(t, "encrypt_with_label: DecryptWithLabel(priv, label, context, kem_output, ciphertext)", pt, err, v.Plaintext)

		kemOut, ct, err := s.EncryptWithLabel(v.Pub, v.Label, v.Context, v.Plaintext)
		if err != nil {
			t.Errorf("encrypt_with_label: EncryptWithLabel: %v", err)
		} else {
			pt, err := s.DecryptWithLabel(v.Priv, v.Label, v.Context, kemOut, ct)
			cbExpectBytes(t, "encrypt_with_label: DecryptWithLabel of EncryptWithLabel output", pt, err, v.Plaintext)
		}
		if _, err := s.DecryptWithLabel(v.Priv, v.Label+"x", v.Context, v.KEMOutput, v.Ciphertext); err == nil {
			t.Error("encrypt_with_label: ciphertext also decrypts under a different label")
		}
	}
}
