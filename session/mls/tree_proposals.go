package mls

import (
	"errors"
	"fmt"
	"slices"
)

// The tree effects of Add, Update and Remove proposals (RFC 9420 sections
// 7.7 and 12.1.1-12.1.3). They are applied to a tree the caller owns (the
// provisional copy during Commit processing); each replaces the nodes it
// changes rather than editing them, so nodes shared with another tree, such
// as a Truncated view, are never modified.

var errNilLeaf = errors.New("mls: leaf node is nil")

// FreeLeaf returns the leftmost blank leaf, first extending the tree to the
// right when every leaf is taken. Add uses it; an external Commit uses it
// directly to place the joiner before PrepareUpdatePath or MergeUpdatePath.
func (t *RatchetTree) FreeLeaf() (LeafIndex, error) {
	if len(*t) > 0 {
		if _, err := t.checkShape(); err != nil {
			return 0, err
		}
	}
	l, ok := t.freeLeaf()
	if !ok {
		return 0, errors.New("mls: ratchet tree is full")
	}
	return l, nil
}

// freeLeaf is FreeLeaf on a tree of full width (or empty).
func (t *RatchetTree) freeLeaf() (LeafIndex, bool) {
	if len(*t) == 0 {
		*t = RatchetTree{nil}
		return 0, true
	}
	for x := NodeIndex(0); int(x) < len(*t); x += 2 {
		if t.leafAt(x) == nil {
			return LeafIndex(x / 2), true
		}
	}
	size := t.LeafCount()
	if size >= maxTreeLeaves {
		return 0, false
	}
	// The old tree becomes the left subtree of a new blank root.
	*t = append(*t, make(RatchetTree, 2*size)...)
	return LeafIndex(size), true
}

// AddLeaf places a copy of n in the leftmost blank leaf, extending the tree
// if needed, and marks it unmerged at every non-blank node above it: the new
// member does not know those nodes' private keys until a Commit's path
// covers it (RFC 9420 sections 7.7 and 12.1.1).
//
// It returns no error because none can occur on a tree this package built or
// validated; a tree of the wrong width is first padded the way
// NewRatchetTreeFromWire pads. A nil n is a programming error and panics, as
// does growing past 2^31 leaves, which no process has the memory to reach.
func (t *RatchetTree) AddLeaf(n *LeafNode) LeafIndex {
	if n == nil {
		panic(errNilLeaf)
	}
	return t.addOwnedLeaf(n.clone())
}

// addOwnedLeaf is AddLeaf of a leaf node that nobody else holds, which
// the tree then owns instead of a copy.
func (t *RatchetTree) addOwnedLeaf(n *LeafNode) LeafIndex {
	if _, ok := t.size(); !ok && len(*t) > 0 {
		t.pad()
	}
	l, ok := t.freeLeaf()
	if !ok {
		panic("mls: ratchet tree is full")
	}
	size := t.LeafCount()
	x := NodeIndex(2 * l)
	for y, ok := x.parent(size); ok; y, ok = y.parent(size) {
		p := t.parentAt(y)
		if p == nil {
			continue
		}
		i, found := slices.BinarySearch(p.UnmergedLeaves, l)
		if found {
			continue
		}
		q := *p
		q.UnmergedLeaves = slices.Insert(slices.Clone(p.UnmergedLeaves), i, l)
		(*t)[y] = &Node{NodeType: NodeTypeParent, Parent: &q}
	}
	(*t)[x] = &Node{NodeType: NodeTypeLeaf, Leaf: n}
	return l
}

// pad extends t with blanks to the smallest full width that holds it.
func (t *RatchetTree) pad() {
	n := 1
	for 2*n-1 < len(*t) {
		n *= 2
	}
	*t = append(*t, make(RatchetTree, 2*n-1-len(*t))...)
}

// occupiedLeaf returns the node of leaf i, which must be non-blank.
func (t RatchetTree) occupiedLeaf(i LeafIndex) (NodeIndex, uint32, error) {
	size, err := t.checkShape()
	if err != nil {
		return 0, 0, err
	}
	x, ok := leafNode(i, size)
	if !ok || t.leafAt(x) == nil {
		return 0, 0, fmt.Errorf("mls: leaf %d is blank or outside the tree", i)
	}
	return x, size, nil
}

// blankDirectPath blanks every parent above x: the member below changed, so
// keys it may have known must no longer be used.
func (t RatchetTree) blankDirectPath(x NodeIndex, size uint32) {
	for y, ok := x.parent(size); ok; y, ok = y.parent(size) {
		t[y] = nil
	}
}

// UpdateLeaf replaces leaf i with a copy of n and blanks its direct path
// (RFC 9420 section 12.1.2).
func (t *RatchetTree) UpdateLeaf(i LeafIndex, n *LeafNode) error {
	if n == nil {
		return errNilLeaf
	}
	x, size, err := t.occupiedLeaf(i)
	if err != nil {
		return err
	}
	t.blankDirectPath(x, size)
	(*t)[x] = &Node{NodeType: NodeTypeLeaf, Leaf: n.clone()}
	return nil
}

// RemoveLeaf blanks leaf i and its direct path, then halves the tree while
// its right half holds no member (RFC 9420 sections 7.7 and 12.1.3).
func (t *RatchetTree) RemoveLeaf(i LeafIndex) error {
	x, size, err := t.occupiedLeaf(i)
	if err != nil {
		return err
	}
	t.blankDirectPath(x, size)
	(*t)[x] = nil
	t.truncate(size)
	return nil
}

func (t *RatchetTree) truncate(size uint32) {
	for size > 1 && t.rightHalfEmpty(size) {
		// The left subtree is exactly the first size-1 nodes. Clearing the
		// dropped tail lets the garbage collector have it.
		clear((*t)[size-1:])
		*t = (*t)[: size-1 : size-1]
		size /= 2
	}
}

func (t RatchetTree) rightHalfEmpty(size uint32) bool {
	for x := NodeIndex(size); uint32(x) < 2*size-1; x += 2 {
		if t.leafAt(x) != nil {
			return false
		}
	}
	return true
}
