package mls

import (
	"bytes"
	"errors"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func secretTreeState(t *testing.T, st *SecretTree) []byte {
	t.Helper()
	w := wire.NewWriter(nil)
	st.marshalState(w)
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSecretTreePeekLeavesStateAlone(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	st, err := NewSecretTree(s, bytes.Repeat([]byte{5}, s.Nh()), 4, SecretTreeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Leaf 2 untouched (derived from the frontier), leaf 1 partly used.
	if _, _, err := st.Get(1, ApplicationRatchet, 3); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		leaf, gen uint32
	}{{2, 0}, {2, 7}, {1, 1}, {1, 4}, {1, 9}} {
		before := secretTreeState(t, st)
		pk, pn, err := st.Peek(tc.leaf, ApplicationRatchet, tc.gen)
		if err != nil {
			t.Fatalf("peek leaf %d gen %d: %v", tc.leaf, tc.gen, err)
		}
		if !bytes.Equal(before, secretTreeState(t, st)) {
			t.Fatalf("peek leaf %d gen %d changed the tree", tc.leaf, tc.gen)
		}
		gk, gn, err := st.Get(tc.leaf, ApplicationRatchet, tc.gen)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pk, gk) || !bytes.Equal(pn, gn) {
			t.Fatalf("peek and get disagree for leaf %d gen %d", tc.leaf, tc.gen)
		}
		if _, _, err := st.Peek(tc.leaf, ApplicationRatchet, tc.gen); !errors.Is(err, ErrGenerationConsumed) {
			t.Fatalf("peek after get: %v", err)
		}
	}
	if _, _, err := st.Peek(3, ApplicationRatchet, DefaultMaxForwardRatchet+1); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("peek far ahead: %v", err)
	}
	if _, _, err := st.Peek(9, ApplicationRatchet, 0); err == nil {
		t.Fatal("peek outside the tree succeeded")
	}
}
