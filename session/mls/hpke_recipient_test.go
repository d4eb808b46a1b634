package mls

import (
	"bytes"
	"testing"
)

// A parsed recipient opens what SealBase sealed, for every suite (X448's
// CIRCL route included), concurrently, and refuses a wrong info.
func TestHPKERecipient(t *testing.T) {
	for _, s := range Suites() {
		priv, pub, err := s.GenerateHPKEKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.NewHPKERecipient(priv)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		done := make(chan error, 4)
		for g := range 4 {
			go func() {
				msg := []byte{byte(g), 1, 2, 3}
				enc, ct, err := s.SealBase(pub, []byte("info"), []byte("aad"), msg)
				if err == nil {
					var pt []byte
					if pt, err = r.OpenBase(enc, []byte("info"), []byte("aad"), ct); err == nil && !bytes.Equal(pt, msg) {
						err = errHPKEDecrypt
					}
				}
				done <- err
			}()
		}
		for range 4 {
			if err := <-done; err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		enc, ct, _ := s.SealBase(pub, []byte("info"), nil, []byte("x"))
		if _, err := r.OpenBase(enc, []byte("other"), nil, ct); err == nil {
			t.Fatalf("%s: opened under another info", s)
		}
	}
	if _, err := suites[MLS128DHKEMX25519AES128GCMSHA256Ed25519].NewHPKERecipient([]byte{1}); err == nil {
		t.Fatal("a 1-byte private key parsed")
	}
}
