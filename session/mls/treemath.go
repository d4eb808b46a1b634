package mls

import "math/bits"

// NodeIndex is the position of a node in the array representation of a
// tree (RFC 9420 appendix C): leaf i sits at 2i, parents at odd indices.
type NodeIndex uint32

// maxTreeLeaves is the largest leaf count whose 2n-1 nodes can all be
// addressed by a uint32 NodeIndex.
const maxTreeLeaves = 1 << 31

// The tree math below takes the leaf count n of a tree that RFC 9420 keeps
// full: n is a power of two (section 7.7 grows and shrinks the tree by
// doubling and halving). Other values, and nodes outside the tree, yield
// ok=false instead of a panic because indices and sizes arrive from peers;
// the caller decides how to reject the message. Trees that are not full
// would place the root and parents differently (the left-balanced trees of
// earlier drafts), so accepting them silently would derive the wrong secrets.

// validLeafCount reports whether n is the leaf count of a full tree.
func validLeafCount(n uint32) bool {
	return n != 0 && n <= maxTreeLeaves && n&(n-1) == 0
}

// nodeWidth is the number of nodes of a tree with n leaves.
func nodeWidth(n uint32) (uint32, bool) {
	if !validLeafCount(n) {
		return 0, false
	}
	return 2*n - 1, true
}

// rootNode is the root of a tree with n leaves.
func rootNode(n uint32) (NodeIndex, bool) {
	if !validLeafCount(n) {
		return 0, false
	}
	return NodeIndex(n - 1), true
}

// leafNode is the node of leaf index leaf in a tree with n leaves.
func leafNode(leaf LeafIndex, n uint32) (NodeIndex, bool) {
	if !validLeafCount(n) || uint32(leaf) >= n {
		return 0, false
	}
	return NodeIndex(2 * leaf), true
}

// inTree reports whether x is a node of a tree with n leaves.
func (x NodeIndex) inTree(n uint32) bool {
	w, ok := nodeWidth(n)
	return ok && uint32(x) < w
}

func (x NodeIndex) isLeaf() bool { return x&1 == 0 }

// leaf is the leaf index of x; ok is false when x is a parent node or lies
// outside the tree.
func (x NodeIndex) leaf(n uint32) (LeafIndex, bool) {
	if !x.isLeaf() || !x.inTree(n) {
		return 0, false
	}
	return LeafIndex(x / 2), true
}

// level is the height of x above the leaves: the number of trailing one
// bits of the index.
func (x NodeIndex) level() uint {
	return uint(bits.TrailingZeros32(^uint32(x)))
}

func (x NodeIndex) left(n uint32) (NodeIndex, bool) {
	k := x.level()
	if k == 0 || !x.inTree(n) {
		return 0, false
	}
	return x ^ (1 << (k - 1)), true
}

func (x NodeIndex) right(n uint32) (NodeIndex, bool) {
	k := x.level()
	if k == 0 || !x.inTree(n) {
		return 0, false
	}
	return x ^ (3 << (k - 1)), true
}

func (x NodeIndex) parent(n uint32) (NodeIndex, bool) {
	if !x.inTree(n) || x == NodeIndex(n-1) {
		return 0, false
	}
	// Below the root, level(x) <= 30, so the shifts stay inside uint32.
	k := x.level()
	b := (x >> (k + 1)) & 1
	return (x | (1 << k)) ^ (b << (k + 1)), true
}

func (x NodeIndex) sibling(n uint32) (NodeIndex, bool) {
	p, ok := x.parent(n)
	if !ok {
		return 0, false
	}
	if x < p {
		return p.right(n)
	}
	return p.left(n)
}

// directPath lists the ancestors of x from its parent up to the root; it is
// empty for the root.
func (x NodeIndex) directPath(n uint32) ([]NodeIndex, bool) {
	if !x.inTree(n) {
		return nil, false
	}
	r := NodeIndex(n - 1)
	path := make([]NodeIndex, 0, r.level()-x.level())
	for x != r {
		x, _ = x.parent(n)
		path = append(path, x)
	}
	return path, true
}

// copath lists the siblings of x and of each node of its direct path below
// the root, from the leaf side up.
func (x NodeIndex) copath(n uint32) ([]NodeIndex, bool) {
	if !x.inTree(n) {
		return nil, false
	}
	r := NodeIndex(n - 1)
	path := make([]NodeIndex, 0, r.level()-x.level())
	for x != r {
		s, _ := x.sibling(n)
		path = append(path, s)
		x, _ = x.parent(n)
	}
	return path, true
}

// commonAncestor is the lowest node whose subtree holds both x and y (x
// itself when y lies below x). In a full tree that is the node sharing the
// longest common prefix of the two indices, so no walk is needed.
func commonAncestor(x, y NodeIndex, n uint32) (NodeIndex, bool) {
	if !x.inTree(n) || !y.inTree(n) {
		return 0, false
	}
	lx, ly := x.level()+1, y.level()+1
	if lx <= ly && x>>ly == y>>ly {
		return y, true
	}
	if ly <= lx && x>>lx == y>>lx {
		return x, true
	}
	k := uint(bits.Len32(uint32(x ^ y)))
	return (x>>k)<<k + (1<<(k-1) - 1), true
}
