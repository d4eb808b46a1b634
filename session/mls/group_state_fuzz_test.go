package mls

import (
	"bytes"
	"testing"
)

// FuzzUnmarshalGroup feeds arbitrary bytes to the loader of persisted group
// state (a file on disk that a crash or an operator may corrupt): it must
// never panic, and a state it accepts must encode back to the same bytes.
func FuzzUnmarshalGroup(f *testing.F) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	a := newCreator(f, s, "a")
	add(f, s, a, nil, "b")
	saved, err := a.g.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(saved)
	f.Add(saved[:len(saved)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := UnmarshalGroup(data, GroupConfig{})
		if err != nil {
			return
		}
		again, err := g.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted state re-encodes differently (%v)", err)
		}
	})
}
