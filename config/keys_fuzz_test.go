package config

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseKeys checks the key text formats: no panic, every accepted key
// prints back as the canonical text it was parsed from (modulo the white
// space that is ignored), and no private key error quotes the key's text,
// which may be a secret that was mistyped by a character.
func FuzzParseKeys(f *testing.F) {
	priv := exampleKey(f, "a")
	pub := examplePublic(f, "a")
	f.Add(priv.String())
	f.Add(" " + priv.String() + "\n")
	f.Add(pub.String())
	f.Add(PrivateKeyPrefix + "mls-xwing-ed25519:" + strings.Repeat("A", 43) + "=")
	f.Add(PrivateKeyPrefix + "nonesuch:AAAA")
	f.Add("ecdsa-p256:" + strings.Repeat("B", 88))
	f.Add("mldsa65:AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		if k, err := ParsePrivateKey(text); err == nil {
			if got := k.String(); got != strings.TrimSpace(text) {
				t.Fatalf("private key %q prints as %q", text, got)
			}
			if _, err := k.Public(); err != nil {
				t.Fatalf("accepted private key has no public key: %v", err)
			}
			k.Zero()
		} else if _, enc, ok := strings.Cut(strings.TrimSpace(text), ":"); ok {
			// The part after the first colon is the suite and the key
			// material; an error may name the suite, never the material.
			if _, material, ok := strings.Cut(enc, ":"); ok && len(material) >= 8 && strings.Contains(err.Error(), material) {
				t.Fatalf("error quotes the key material: %v", err)
			}
		}
		k, err := ParsePublicKey(text)
		if err != nil {
			return
		}
		again, err := ParsePublicKey(k.String())
		if err != nil || !bytes.Equal(again.key, k.key) || again.scheme != k.scheme {
			t.Fatalf("public key %q prints as %q, which parses to %v, %v", text, k.String(), again, err)
		}
	})
}
