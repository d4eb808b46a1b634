package mls

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/current-vpn/current/session/mls/wire"
)

// TreePrivateKey is one member's TreeKEM secret state: the HPKE private key
// of its leaf and of the parent nodes above it whose keys it knows (RFC 9420
// section 4.2). By the tree invariant it never holds a key for a node that is
// not an ancestor of Leaf.
type TreePrivateKey struct {
	Leaf           LeafIndex
	EncryptionPriv []byte
	PathPrivs      map[NodeIndex][]byte
}

// Clone returns a deep copy, so the copy can be wiped independently.
func (k *TreePrivateKey) Clone() *TreePrivateKey {
	c := &TreePrivateKey{
		Leaf:           k.Leaf,
		EncryptionPriv: bytes.Clone(k.EncryptionPriv),
		PathPrivs:      make(map[NodeIndex][]byte, len(k.PathPrivs)),
	}
	for x, priv := range k.PathPrivs {
		c.PathPrivs[x] = bytes.Clone(priv)
	}
	return c
}

// Wipe zeroes every private key and forgets them.
func (k *TreePrivateKey) Wipe() {
	zero(k.EncryptionPriv)
	k.EncryptionPriv = nil
	for x, priv := range k.PathPrivs {
		zero(priv)
		delete(k.PathPrivs, x)
	}
}

// privFor returns the private key k holds for node x, nil if none.
func (k *TreePrivateKey) privFor(x NodeIndex) []byte {
	if x == NodeIndex(2*k.Leaf) {
		return k.EncryptionPriv
	}
	if x.isLeaf() {
		return nil
	}
	return k.PathPrivs[x]
}

// ConsistentWith checks that every key k holds belongs where the tree says:
// its leaf is occupied and has the public key of EncryptionPriv, and every
// path key is for a non-blank ancestor of the leaf with the matching public
// key. Compared by public key, since some KEMs accept several encodings of
// one private key.
func (k *TreePrivateKey) ConsistentWith(s *CipherSuite, t RatchetTree) error {
	size, err := t.checkShape()
	if err != nil {
		return err
	}
	x, ok := leafNode(k.Leaf, size)
	if !ok || t.leafAt(x) == nil {
		return fmt.Errorf("mls: private key's leaf %d is blank or outside the tree", k.Leaf)
	}
	if err := checkKeyPair(s, k.EncryptionPriv, t.leafAt(x).EncryptionKey); err != nil {
		return fmt.Errorf("mls: leaf %d: %w", k.Leaf, err)
	}
	for _, y := range slices.Sorted(maps.Keys(k.PathPrivs)) {
		if y.isLeaf() || !y.inTree(size) || !nodeBelow(x, y) {
			return fmt.Errorf("mls: private key for node %d, which is not above leaf %d", y, k.Leaf)
		}
		p := t.parentAt(y)
		if p == nil {
			return fmt.Errorf("mls: private key for blank node %d", y)
		}
		if err := checkKeyPair(s, k.PathPrivs[y], p.EncryptionKey); err != nil {
			return fmt.Errorf("mls: node %d: %w", y, err)
		}
	}
	return nil
}

func checkKeyPair(s *CipherSuite, priv, pub []byte) error {
	got, err := s.HPKEPublicKey(priv)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, pub) {
		return fmt.Errorf("mls: private key does not match the public key in the tree")
	}
	return nil
}

// prune drops, zeroing them, the keys of nodes that are blank in t or not
// above the leaf: a blanked node's old key must not outlive it (RFC 9420
// section 7.4 asks to delete replaced key material).
func (k *TreePrivateKey) prune(t RatchetTree) {
	size := t.LeafCount()
	x, _ := leafNode(k.Leaf, size)
	for y, priv := range k.PathPrivs {
		if t.parentAt(y) == nil || !y.inTree(size) || !nodeBelow(x, y) {
			zero(priv)
			delete(k.PathPrivs, y)
		}
	}
}

// Prune forgets the keys of nodes that t has blanked, as Update and Remove
// proposals do. DecryptUpdatePath prunes on its own; call this after a
// Commit without a path.
func (k *TreePrivateKey) Prune(t RatchetTree) { k.prune(t) }

// MarshalMLS encodes the state for persistence: leaf index, leaf key, then
// (node, key) pairs in node order so the encoding is deterministic.
func (k *TreePrivateKey) MarshalMLS(w *wire.Writer) {
	w.U32(uint32(k.Leaf))
	w.Opaque(k.EncryptionPriv)
	w.Vector(func(w *wire.Writer) {
		for _, x := range slices.Sorted(maps.Keys(k.PathPrivs)) {
			w.U32(uint32(x))
			w.Opaque(k.PathPrivs[x])
		}
	})
}

// UnmarshalMLS decodes MarshalMLS's output, rejecting a node listed twice or
// a leaf position among the path keys.
func (k *TreePrivateKey) UnmarshalMLS(r *wire.Reader) {
	*k = TreePrivateKey{PathPrivs: make(map[NodeIndex][]byte)}
	k.Leaf = LeafIndex(r.U32())
	k.EncryptionPriv = r.Opaque()
	r.Vector(func(r *wire.Reader) {
		x := NodeIndex(r.U32())
		priv := r.Opaque()
		if r.Err() != nil {
			return
		}
		if _, dup := k.PathPrivs[x]; dup || x.isLeaf() {
			r.Failf("mls: tree private key lists node %d twice or at a leaf position", x)
			return
		}
		k.PathPrivs[x] = priv
	})
}
