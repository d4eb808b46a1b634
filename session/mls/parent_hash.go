package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/current-vpn/current/session/mls/wire"
)

// parentHash is Hash(ParentHashInput) of a parent node with the given key and
// parent_hash field, whose copath child has original tree hash osth (RFC 9420
// section 7.9).
func parentHash(s *CipherSuite, key, parentHashField, osth []byte) ([]byte, error) {
	w := wire.NewWriter(make([]byte, 0, 3*4+len(key)+len(parentHashField)+len(osth)))
	w.Opaque(key)
	w.Opaque(parentHashField)
	w.Opaque(osth)
	in, err := w.Bytes()
	if err != nil {
		return nil, err
	}
	return s.Digest(in), nil
}

// pathParentHashes chains the parent hashes of a freshly set filtered direct
// path: keys[i] is the new key of its i-th node and copathHashes[i] the tree
// hash of that node's copath child. The nodes' unmerged lists are empty, so
// the plain tree hash is the original sibling tree hash. The chain runs from
// the root down because each node's input includes the hash above it; the
// topmost node, with nothing above, gets an empty parent_hash. It returns
// each node's parent_hash field and the leaf's.
func pathParentHashes(s *CipherSuite, keys, copathHashes [][]byte) (fields [][]byte, leaf []byte, err error) {
	fields = make([][]byte, len(keys))
	next := []byte{}
	for i := len(keys) - 1; i >= 0; i-- {
		fields[i] = next
		if next, err = parentHash(s, keys[i], fields[i], copathHashes[i]); err != nil {
			return nil, nil, err
		}
	}
	return fields, next, nil
}

// copathHashes returns the tree hash of each step's copath child. The copath
// subtrees are disjoint, so this is linear in the tree size.
func (t RatchetTree) copathHashes(s *CipherSuite, steps []pathStep) ([][]byte, error) {
	h := &treeHasher{s: s, t: t, size: t.LeafCount()}
	out := make([][]byte, len(steps))
	for i, st := range steps {
		var err error
		if out[i], err = h.hash(st.copath); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// VerifyParentHashes checks that every non-blank parent node is parent-hash
// valid (RFC 9420 section 7.9.2), top down: each must have exactly one
// descendant D, in the resolution of one of its children, whose parent_hash
// is the parent's hash with the other child as copath child. As D is itself
// a leaf or a non-blank parent checked the same way, every parent chains down
// to a leaf whose signature covers the chain.
func (t RatchetTree) VerifyParentHashes(s *CipherSuite) error {
	size, err := t.checkShape()
	if err != nil {
		return err
	}
	hashes, err := t.treeHashes(s)
	if err != nil {
		return err
	}
	for x := NodeIndex(1); int(x) < len(t); x += 2 {
		p := t.parentAt(x)
		if p == nil {
			continue
		}
		l, _ := x.left(size)
		r, _ := x.right(size)
		valid := 0
		for _, pair := range [2][2]NodeIndex{{l, r}, {r, l}} {
			ok, err := t.parentHashLinks(s, hashes, p, pair[0], pair[1])
			if err != nil {
				return err
			}
			if ok {
				valid++
			}
		}
		if valid != 1 {
			return fmt.Errorf("mls: parent node %d is not parent-hash valid (%d valid links)", x, valid)
		}
	}
	return nil
}

// parentHashLinks reports whether parent p, with children c and sib, is
// linked to a node D under c: D is in c's resolution, the rest of that
// resolution is exactly p's unmerged leaves under c (so D and p were set by
// the same UpdatePath, with only blanks between them), and D's parent_hash is
// p's hash with sib's original tree hash.
func (t RatchetTree) parentHashLinks(s *CipherSuite, hashes [][]byte, p *ParentNode, c, sib NodeIndex) (bool, error) {
	lo, hi := leafSpan(c)
	var unmerged []NodeIndex
	for _, u := range p.UnmergedLeaves {
		if u >= lo && u <= hi {
			unmerged = append(unmerged, NodeIndex(2*u))
		}
	}
	res := t.Resolution(c)
	d, others := NodeIndex(0), 0
	for _, y := range res {
		if slices.Contains(unmerged, y) {
			continue
		}
		d = y
		others++
	}
	if others != 1 || len(res)-1 != len(unmerged) || !nodeBelow(d, c) {
		return false, nil
	}
	for _, u := range unmerged {
		if !slices.Contains(res, u) {
			return false, nil
		}
	}
	var field []byte
	if d.isLeaf() {
		ln := t.leafAt(d)
		if ln.LeafNodeSource != LeafNodeSourceCommit {
			return false, nil
		}
		field = ln.ParentHash
	} else {
		field = t.parentAt(d).ParentHash
	}
	osth, err := t.originalTreeHash(s, hashes, sib, p.UnmergedLeaves)
	if err != nil {
		return false, err
	}
	want, err := parentHash(s, p.EncryptionKey, p.ParentHash, osth)
	if err != nil {
		return false, err
	}
	return bytes.Equal(field, want), nil
}

// nodeBelow reports whether d lies in the subtree headed by c.
func nodeBelow(d, c NodeIndex) bool {
	half := uint32(1)<<c.level() - 1
	return uint32(d) >= uint32(c)-half && uint32(d) <= uint32(c)+half
}

// originalTreeHash is the tree hash of the subtree at x as it was before the
// leaves in unmerged were added: those leaves blanked and dropped from every
// unmerged list.
func (t RatchetTree) originalTreeHash(s *CipherSuite, hashes [][]byte, x NodeIndex, unmerged []LeafIndex) ([]byte, error) {
	if len(unmerged) == 0 {
		return hashes[x], nil
	}
	exclude := slices.Clone(unmerged)
	slices.Sort(exclude)
	exclude = slices.Compact(exclude)
	h := &treeHasher{s: s, t: t, size: t.LeafCount(), exclude: exclude, memo: hashes}
	return h.hash(x)
}
