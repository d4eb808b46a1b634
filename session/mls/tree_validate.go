package mls

import (
	"fmt"
	"slices"
)

// ValidateForJoin runs the structural checks RFC 9420 section 12.4.3.1 asks
// of a joiner's ratchet tree: unmerged leaves consistent, HPKE and signature
// keys unique, every non-blank parent parent-hash valid, and every leaf
// signed for this group and position. checkLeaf, if not nil, applies the
// caller's per-leaf policy (credential, lifetime, capabilities) after the
// leaf's signature has verified. Comparing the tree hash with the
// GroupContext is left to the caller, who holds it.
//
// The cheap structural checks run first, so a hostile tree is refused before
// it can cost any hashing or signature verification.
func (t RatchetTree) ValidateForJoin(s *CipherSuite, groupID []byte, checkLeaf func(LeafIndex, *LeafNode) error) error {
	size, err := t.checkShape()
	if err != nil {
		return err
	}
	if err := t.checkUnmergedLeaves(size); err != nil {
		return err
	}
	if err := t.checkKeysUnique(); err != nil {
		return err
	}
	if err := t.VerifyParentHashes(s); err != nil {
		return err
	}
	for i := LeafIndex(0); uint32(i) < size; i++ {
		ln := t.leafAt(NodeIndex(2 * i))
		if ln == nil {
			continue
		}
		if err := ln.VerifySignature(s, groupID, i); err != nil {
			return fmt.Errorf("mls: leaf %d: %w", i, err)
		}
		if checkLeaf != nil {
			if err := checkLeaf(i, ln); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkUnmergedLeaves enforces the unmerged_leaves rules of RFC 9420
// sections 7.1 and 12.4.3.1: each list strictly increasing, each entry a
// non-blank leaf below the node, and listed again by every non-blank node
// between that leaf and the node (a leaf is unmerged at all the nodes that
// existed above it when it was added, or at none).
func (t RatchetTree) checkUnmergedLeaves(size uint32) error {
	for x := NodeIndex(1); int(x) < len(t); x += 2 {
		p := t.parentAt(x)
		if p == nil {
			continue
		}
		lo, hi := leafSpan(x)
		for i, u := range p.UnmergedLeaves {
			if i > 0 && u <= p.UnmergedLeaves[i-1] {
				return fmt.Errorf("mls: unmerged leaves of node %d are not strictly increasing", x)
			}
			if u < lo || u > hi {
				return fmt.Errorf("mls: node %d lists leaf %d, not below it, as unmerged", x, u)
			}
			if t.leafAt(NodeIndex(2*u)) == nil {
				return fmt.Errorf("mls: node %d lists blank leaf %d as unmerged", x, u)
			}
		}
	}
	// A second pass, once every list is known to be sorted, so that the
	// lookups below can use binary search.
	for x := NodeIndex(1); int(x) < len(t); x += 2 {
		p := t.parentAt(x)
		if p == nil {
			continue
		}
		for _, u := range p.UnmergedLeaves {
			for y, ok := NodeIndex(2 * u).parent(size); ok && y != x; y, ok = y.parent(size) {
				q := t.parentAt(y)
				if q == nil {
					continue
				}
				if _, found := slices.BinarySearch(q.UnmergedLeaves, u); !found {
					return fmt.Errorf("mls: leaf %d is unmerged at node %d but not at node %d below it", u, x, y)
				}
			}
		}
	}
	return nil
}

// checkKeysUnique rejects a tree in which two nodes share an HPKE key or two
// leaves share a signature key (RFC 9420 sections 7.3 and 12.4.3.1): a
// repeated key would let one member's secrets open another's.
func (t RatchetTree) checkKeysUnique() error {
	enc := make(map[string]NodeIndex)
	sig := make(map[string]NodeIndex)
	for i := range t {
		x := NodeIndex(i)
		if t.blank(x) {
			continue
		}
		key := t.encryptionKey(x)
		if prev, dup := enc[string(key)]; dup {
			return fmt.Errorf("mls: nodes %d and %d have the same encryption key", prev, x)
		}
		enc[string(key)] = x
		if ln := t.leafAt(x); ln != nil {
			if prev, dup := sig[string(ln.SignatureKey)]; dup {
				return fmt.Errorf("mls: leaves %d and %d have the same signature key", prev/2, x/2)
			}
			sig[string(ln.SignatureKey)] = x
		}
	}
	return nil
}
