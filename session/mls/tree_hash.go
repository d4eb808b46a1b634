package mls

import (
	"fmt"
	"slices"

	"github.com/current-vpn/current/session/mls/wire"
)

// treeHasher computes tree hashes (RFC 9420 section 7.8) over one tree.
//
// exclude, sorted, lists leaves to hash as if they had never been added:
// blank, and absent from every unmerged_leaves list. That is the "original
// sibling tree hash" of a parent hash (section 7.9). When memo holds the
// plain hashes of the tree, subtrees that contain no excluded leaf reuse
// them, so recomputing an original hash costs only the affected paths.
type treeHasher struct {
	s       *CipherSuite
	t       RatchetTree
	size    uint32
	exclude []LeafIndex
	memo    [][]byte // plain hash per node; read when exclude is set, filled otherwise
	buf     []byte
}

// TreeHash is the tree hash of the root, the value the GroupContext carries.
func (t RatchetTree) TreeHash(s *CipherSuite) ([]byte, error) {
	n, err := t.checkShape()
	if err != nil {
		return nil, err
	}
	h := &treeHasher{s: s, t: t, size: n}
	return h.hash(NodeIndex(n - 1))
}

// NodeTreeHash is the tree hash of the subtree headed by n.
func (t RatchetTree) NodeTreeHash(s *CipherSuite, n NodeIndex) ([]byte, error) {
	size, err := t.checkShape()
	if err != nil {
		return nil, err
	}
	if !n.inTree(size) {
		return nil, fmt.Errorf("mls: node %d is outside a tree of %d leaves", n, size)
	}
	h := &treeHasher{s: s, t: t, size: size}
	return h.hash(n)
}

// treeHashes returns the tree hash of every node, in one pass.
func (t RatchetTree) treeHashes(s *CipherSuite) ([][]byte, error) {
	n, err := t.checkShape()
	if err != nil {
		return nil, err
	}
	h := &treeHasher{s: s, t: t, size: n, memo: make([][]byte, len(t))}
	if _, err := h.hash(NodeIndex(n - 1)); err != nil {
		return nil, err
	}
	return h.memo, nil
}

// leafSpan is the range [lo, hi] of leaves below x.
func leafSpan(x NodeIndex) (lo, hi LeafIndex) {
	half := uint32(1)<<x.level() - 1
	return LeafIndex((uint32(x) - half) / 2), LeafIndex((uint32(x) + half) / 2)
}

// excludesBelow reports whether an excluded leaf lies under x.
func (h *treeHasher) excludesBelow(x NodeIndex) bool {
	lo, hi := leafSpan(x)
	i, _ := slices.BinarySearch(h.exclude, lo)
	return i < len(h.exclude) && h.exclude[i] <= hi
}

func (h *treeHasher) hash(x NodeIndex) ([]byte, error) {
	if h.exclude != nil && h.memo != nil && !h.excludesBelow(x) {
		return h.memo[x], nil
	}
	var out []byte
	var err error
	if x.isLeaf() {
		out, err = h.hashLeaf(x)
	} else {
		out, err = h.hashParent(x)
	}
	if err != nil {
		return nil, err
	}
	if h.exclude == nil && h.memo != nil {
		h.memo[x] = out
	}
	return out, nil
}

func (h *treeHasher) hashLeaf(x NodeIndex) ([]byte, error) {
	leaf := LeafIndex(x / 2)
	ln := h.t.leafAt(x)
	if _, excluded := slices.BinarySearch(h.exclude, leaf); excluded {
		ln = nil
	}
	w := wire.NewWriter(h.buf[:0])
	w.U8(uint8(NodeTypeLeaf))
	w.U32(uint32(leaf))
	w.Bool(ln != nil)
	if ln != nil {
		ln.MarshalMLS(w)
	}
	return h.digest(w)
}

func (h *treeHasher) hashParent(x NodeIndex) ([]byte, error) {
	l, _ := x.left(h.size)
	r, _ := x.right(h.size)
	lh, err := h.hash(l)
	if err != nil {
		return nil, err
	}
	rh, err := h.hash(r)
	if err != nil {
		return nil, err
	}
	p := h.t.parentAt(x)
	w := wire.NewWriter(h.buf[:0])
	w.U8(uint8(NodeTypeParent))
	w.Bool(p != nil)
	if p != nil {
		if len(h.exclude) > 0 {
			q := *p
			q.UnmergedLeaves = slices.DeleteFunc(slices.Clone(p.UnmergedLeaves), func(u LeafIndex) bool {
				_, found := slices.BinarySearch(h.exclude, u)
				return found
			})
			p = &q
		}
		p.MarshalMLS(w)
	}
	w.Opaque(lh)
	w.Opaque(rh)
	return h.digest(w)
}

func (h *treeHasher) digest(w *wire.Writer) ([]byte, error) {
	in, err := w.Bytes()
	if err != nil {
		return nil, err
	}
	h.buf = in
	return h.s.Digest(in), nil
}
