package mls

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"testing"
)

// The expander must agree with crypto/hkdf for every length, including
// several blocks and lengths that end inside one, and keep agreeing when
// one keyed HMAC serves several outputs in a row.
func TestExpanderMatchesHKDF(t *testing.T) {
	for _, s := range Suites() {
		prk := make([]byte, s.Nh())
		rand.Read(prk)
		e := s.newExpander(prk)
		for length := 0; length <= 3*s.Nh()+1; length++ {
			info := []byte{byte(length), 'i', 'n', 'f', 'o'}
			want, err := hkdf.Expand(hashFunc(s.Hash), prk, string(info), length)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.expand(info, length)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: length %d: expander %x, hkdf %x", s.Name, length, got, want)
			}
			if cap(got) != len(got) {
				t.Fatalf("%s: length %d: output capacity %d exposes the zeroed tail", s.Name, length, cap(got))
			}
		}
	}
}

func TestExpanderRejectsLength(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	e := s.newExpander(make([]byte, 32))
	for _, n := range []int{-1, 255*32 + 1} {
		if _, err := e.expand(nil, n); err == nil {
			t.Errorf("length %d accepted", n)
		}
	}
	if _, err := e.expandWithLabel("x", nil, 0x10000); err == nil {
		t.Error("ExpandWithLabel length 0x10000 accepted")
	}
}

// deriveSecrets must give what one DeriveSecret call per label gives, and
// its outputs, carved from one block, must not reach into each other.
func TestDeriveSecretsMatchesDeriveSecret(t *testing.T) {
	for _, s := range Suites() {
		secret := make([]byte, s.Nh())
		rand.Read(secret)
		labels := []string{labelSenderData, labelEncryption, labelInit}
		e := s.newExpander(secret)
		got, err := e.deriveSecrets(labels...)
		if err != nil {
			t.Fatal(err)
		}
		for i, label := range labels {
			want, err := s.DeriveSecret(secret, label)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[i], want) {
				t.Fatalf("%s: %q: %x, want %x", s.Name, label, got[i], want)
			}
			if cap(got[i]) != s.Nh() {
				t.Fatalf("%s: %q: capacity %d, want %d", s.Name, label, cap(got[i]), s.Nh())
			}
		}
		// The same expander keeps serving single outputs afterwards.
		key, err := e.expandWithLabel("key", []byte("context"), s.KeySize)
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.ExpandWithLabel(secret, "key", []byte("context"), s.KeySize)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(key, want) {
			t.Fatalf("%s: expandWithLabel after deriveSecrets: %x, want %x", s.Name, key, want)
		}
	}
}
