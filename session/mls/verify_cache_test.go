package mls

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// The cache of successful checks must answer only for identical bytes: a
// signature verified once stays valid, anything differing in key, label,
// content or signature is verified afresh, and failures are never cached.
func TestVerifiedCacheOnlyIdenticalBytes(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			priv, pub, err := s.GenerateSignatureKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			_, otherPub, err := s.GenerateSignatureKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			content := []byte("content")
			sig, err := s.SignWithLabel(priv, "LeafNodeTBS", content)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second time from the cache
				if err := s.VerifyWithLabel(pub, "LeafNodeTBS", content, sig); err != nil {
					t.Fatal(err)
				}
			}
			bad := bytes.Clone(sig)
			bad[len(bad)/2] ^= 1
			for range 2 {
				if s.VerifyWithLabel(pub, "LeafNodeTBS", content, bad) == nil {
					t.Fatal("tampered signature accepted")
				}
			}
			if s.VerifyWithLabel(pub, "KeyPackageTBS", content, sig) == nil {
				t.Fatal("signature accepted under another label")
			}
			if s.VerifyWithLabel(pub, "LeafNodeTBS", []byte("contenT"), sig) == nil {
				t.Fatal("signature accepted for other content")
			}
			if s.VerifyWithLabel(otherPub, "LeafNodeTBS", content, sig) == nil {
				t.Fatal("signature accepted under another key")
			}
		})
	}
}

// A parsed HPKE public key is reused only for the same encoding, and a bad
// encoding is refused every time.
func TestPublicKeyCache(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			_, pub, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := checkHPKEPublicKey(s, pub); err != nil {
					t.Fatal(err)
				}
			}
			short := pub[:len(pub)-1]
			for range 2 {
				if checkHPKEPublicKey(s, short) == nil {
					t.Fatal("truncated public key accepted")
				}
			}
		})
	}
}

// Cached Ed25519 public keys: the same key as without the cache, and
// signatures made with the cached expansion verify.
func TestEd25519PublicKeyCache(t *testing.T) {
	s, err := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := s.SignaturePublicKey(priv)
		if err != nil || !bytes.Equal(got, pub) {
			t.Fatalf("public key %x, %v; want %x", got, err, pub)
		}
		sig, err := s.Sign(priv, []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(pub, []byte("m"), sig); err != nil {
			t.Fatal(err)
		}
	}
	// Another seed must not hit.
	priv2, pub2, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SignaturePublicKey(priv2); !bytes.Equal(got, pub2) {
		t.Fatal("second key: wrong public key")
	}
}

// A parse recorded for a tree private key is used only while the key it
// was made for is still the one held: a key swapped in afterwards is checked
// against the tree for real.
func TestTreePrivateKeyParsedOnlyForSameKey(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			secret := make([]byte, s.Nh())
			priv, pub, sk, err := deriveNodeKey(s, secret)
			if err != nil {
				t.Fatal(err)
			}
			if sk == nil {
				t.Skip("X448 keys are not kept parsed")
			}
			k := &TreePrivateKey{Leaf: 0, EncryptionPriv: priv, PathPrivs: map[NodeIndex][]byte{}}
			k.setParsed(0, k.EncryptionPriv, sk, pub)
			if err := k.checkKeyPair(s, 0, k.EncryptionPriv, pub); err != nil {
				t.Fatal(err)
			}
			other, _, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			k.EncryptionPriv = other
			if k.checkKeyPair(s, 0, k.EncryptionPriv, pub) == nil {
				t.Fatal("swapped private key matched the old public key")
			}
			c := k.Clone()
			if _, ok := c.parsedFor(0, c.EncryptionPriv); ok {
				t.Fatal("clone kept a parse of a key it does not hold")
			}
			k.EncryptionPriv = priv
			c = k.Clone()
			if p, ok := c.parsedFor(0, c.EncryptionPriv); !ok || p.pubHash != sha256.Sum256(pub) || (p.sk != nil) != smallParsedKey(sk) {
				t.Fatal("clone lost the parse of its key")
			}
			k.Wipe()
			if _, ok := k.parsedFor(0, priv); ok {
				t.Fatal("parse survived Wipe")
			}
		})
	}
}

// The caches are shared by every group of the process; run them from
// several goroutines at once (meaningful under -race).
func TestCachesConcurrent(t *testing.T) {
	s, err := Suite(MLS128MLKEM768X25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	_, hpub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for w := range 4 {
		go func() {
			var err error
			for i := range 20 {
				msg := []byte{byte(w), byte(i % 3)}
				var sig []byte
				if sig, err = s.SignWithLabel(priv, "LeafNodeTBS", msg); err != nil {
					break
				}
				if err = s.VerifyWithLabel(pub, "LeafNodeTBS", msg, sig); err != nil {
					break
				}
				if err = checkHPKEPublicKey(s, hpub); err != nil {
					break
				}
				if _, _, err = s.EncryptWithLabel(hpub, "UpdatePathNode", msg, msg); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
