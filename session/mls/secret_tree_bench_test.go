package mls

import "testing"

// BenchmarkSecretTreeNextKey measures the sender's cost per message key:
// one ratchet step (three HKDF-Expand calls) plus the lock.
func BenchmarkSecretTreeNextKey(b *testing.B) {
	for _, s := range Suites() {
		b.Run(s.Name, func(b *testing.B) {
			secret := make([]byte, s.Nh())
			st, err := NewSecretTree(s, secret, 2, SecretTreeConfig{})
			if err != nil {
				b.Fatal(err)
			}
			if _, _, _, err := st.Next(1, ApplicationRatchet); err != nil { // derive the path outside the loop
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, key, nonce, err := st.Next(1, ApplicationRatchet)
				if err != nil {
					b.Fatal(err)
				}
				zeroAll(key, nonce)
			}
		})
	}
}

// BenchmarkExpandWithLabel: one ExpandWithLabel of Nh bytes, the unit of
// the key schedule, the secret tree and TreeKEM's path derivation.
func BenchmarkExpandWithLabel(b *testing.B) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	secret := make([]byte, s.Nh())
	ctx := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		out, err := s.ExpandWithLabel(secret, "sender data", ctx, s.Nh())
		if err != nil {
			b.Fatal(err)
		}
		zero(out)
	}
}
