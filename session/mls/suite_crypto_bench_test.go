package mls

import "testing"

// Benchmarks of the labelled public-key operations, one sub-benchmark per
// suite. Keys are made once outside the timed loop; each iteration parses
// them from bytes as MLS code does.

const benchLabel = "LeafNodeTBS"

var benchContent = make([]byte, 256)

func BenchmarkSignWithLabel(b *testing.B) {
	for _, s := range Suites() {
		b.Run(s.Name, func(b *testing.B) {
			priv, _, err := s.GenerateSignatureKeyPair()
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.SignWithLabel(priv, benchLabel, benchContent); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyWithLabel(b *testing.B) {
	for _, s := range Suites() {
		b.Run(s.Name, func(b *testing.B) {
			priv, pub, err := s.GenerateSignatureKeyPair()
			if err != nil {
				b.Fatal(err)
			}
			sig, err := s.SignWithLabel(priv, benchLabel, benchContent)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := s.VerifyWithLabel(pub, benchLabel, benchContent, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncryptWithLabel(b *testing.B) {
	for _, s := range Suites() {
		b.Run(s.Name, func(b *testing.B) {
			_, pub, err := s.GenerateHPKEKeyPair()
			if err != nil {
				b.Fatal(err)
			}
			pt := make([]byte, s.Nh())
			for b.Loop() {
				if _, _, err := s.EncryptWithLabel(pub, "UpdatePathNode", benchContent, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecryptWithLabel(b *testing.B) {
	for _, s := range Suites() {
		b.Run(s.Name, func(b *testing.B) {
			priv, pub, err := s.GenerateHPKEKeyPair()
			if err != nil {
				b.Fatal(err)
			}
			enc, ct, err := s.EncryptWithLabel(pub, "UpdatePathNode", benchContent, make([]byte, s.Nh()))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", benchContent, enc, ct); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
