package config

import (
	"crypto/sha256"
	"testing"
)

// exampleKey derives the key of the example configs in configs/ from a
// public seed. The examples' keys are therefore reproducible, obviously not
// secret, and checked against each other by TestExampleKeys.
func exampleKey(t testing.TB, label string) PrivateKey {
	t.Helper()
	seed := sha256.Sum256([]byte("current example key: " + label))
	k, err := newPrivateKey(DefaultSuite, seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func examplePublic(t testing.TB, label string) PublicKey {
	t.Helper()
	pub, err := exampleKey(t, label).Public()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
