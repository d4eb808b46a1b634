package mls

import (
	"errors"
	"fmt"
	"sort"

	"github.com/current-vpn/current/session/mls/wire"
)

// The secret tree is part of the persisted group state: a restored member
// must never derive a message key it already used, so the ratchet positions
// and the retained out-of-order keys are saved exactly. Maps are written in
// key order so that equal states encode identically.

// marshalState writes the tree's state. The suite and configuration are
// restored from the group, not from these bytes.
func (t *SecretTree) marshalState(w *wire.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.wiped {
		w.Fail(errors.New("mls: cannot persist a wiped secret tree"))
		return
	}
	w.U32(t.leafCount)
	nodes := make([]NodeIndex, 0, len(t.nodes))
	for n := range t.nodes {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i] < nodes[j] })
	w.Vector(func(w *wire.Writer) {
		for _, n := range nodes {
			w.U32(uint32(n))
			w.Opaque(t.nodes[n])
		}
	})
	leaves := make([]LeafIndex, 0, len(t.ratchets))
	for l := range t.ratchets {
		leaves = append(leaves, l)
	}
	sort.Slice(leaves, func(i, j int) bool { return leaves[i] < leaves[j] })
	w.Vector(func(w *wire.Writer) {
		for _, l := range leaves {
			w.U32(uint32(l))
			t.ratchets[l].handshake.marshalState(w)
			t.ratchets[l].application.marshalState(w)
		}
	})
}

func (r *hashRatchet) marshalState(w *wire.Writer) {
	w.Bool(r.secret != nil)
	if r.secret != nil {
		w.Opaque(r.secret)
	}
	w.U64(r.next)
	gens := make([]uint32, 0, len(r.kept))
	for g := range r.kept {
		gens = append(gens, g)
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	w.Vector(func(w *wire.Writer) {
		for _, g := range gens {
			w.U32(g)
			w.Opaque(r.kept[g].key)
			w.Opaque(r.kept[g].nonce)
		}
	})
}

// unmarshalSecretTree restores a tree written by marshalState, checking
// every index and length so a corrupted state file cannot crash the daemon.
func unmarshalSecretTree(r *wire.Reader, s *CipherSuite, cfg SecretTreeConfig) *SecretTree {
	leafCount := r.U32()
	if r.Err() != nil {
		return nil
	}
	// NewSecretTree validates the leaf count and fills in the defaults.
	t, err := NewSecretTree(s, make([]byte, s.Nh()), leafCount, cfg)
	if err != nil {
		r.Fail(err)
		return nil
	}
	t.nodes = map[NodeIndex][]byte{}
	r.Vector(func(r *wire.Reader) {
		n := NodeIndex(r.U32())
		secret := r.Opaque()
		if r.Err() == nil && (!n.inTree(leafCount) || len(secret) != s.Nh() || t.nodes[n] != nil) {
			r.Failf("mls: bad secret tree node %d in saved state", n)
		}
		t.nodes[n] = secret
	})
	r.Vector(func(r *wire.Reader) {
		l := LeafIndex(r.U32())
		lr := &leafRatchets{}
		lr.handshake.unmarshalState(r, s)
		lr.application.unmarshalState(r, s)
		if _, ok := leafNode(l, leafCount); r.Err() == nil && (!ok || t.ratchets[l] != nil) {
			r.Failf("mls: bad secret tree leaf %d in saved state", l)
		}
		t.ratchets[l] = lr
	})
	if r.Err() != nil {
		t.Wipe()
		return nil
	}
	return t
}

func (h *hashRatchet) unmarshalState(r *wire.Reader, s *CipherSuite) {
	if r.Bool() {
		h.secret = r.Opaque()
		if r.Err() == nil && len(h.secret) != s.Nh() {
			r.Fail(fmt.Errorf("mls: bad ratchet secret length in saved state"))
		}
	}
	h.next = r.U64()
	if r.Err() == nil && h.next > 1<<32 {
		r.Fail(fmt.Errorf("mls: ratchet generation %d out of range in saved state", h.next))
	}
	r.Vector(func(r *wire.Reader) {
		g := r.U32()
		key, nonce := r.Opaque(), r.Opaque()
		if r.Err() == nil && (len(key) != s.KeySize || len(nonce) != s.NonceSize || uint64(g) >= h.next) {
			r.Fail(fmt.Errorf("mls: bad retained key for generation %d in saved state", g))
		}
		if h.kept == nil {
			h.kept = map[uint32]messageKey{}
		}
		h.kept[g] = messageKey{key: key, nonce: nonce}
	})
}
