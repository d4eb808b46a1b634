package mls

import (
	"errors"
	"fmt"
	"slices"
)

// The in-memory RatchetTree is always padded to the full 2n-1 width of a
// tree with n = 2^d leaves, so the tree math of treemath.go applies directly
// and node lookups never have to synthesize blanks. The wire form omits
// trailing blanks; NewRatchetTreeFromWire and Truncated convert between the
// two. Methods given a slice of any other length treat it as malformed: they
// return nil or an error rather than guess at the layout.
//
// Every mutation in this package replaces *Node values instead of editing
// them in place, so a copy of the slice of pointers (Truncated) never sees
// later changes to the tree it came from.

var errTreeWidth = errors.New("mls: ratchet tree is not padded to a full width (use NewRatchetTreeFromWire)")

// size returns the leaf count of a correctly padded tree.
func (t RatchetTree) size() (uint32, bool) {
	if len(t) == 0 || len(t) > 2*maxTreeLeaves-1 {
		return 0, false
	}
	n := uint32(len(t)+1) / 2
	if !validLeafCount(n) || int(2*n-1) != len(t) {
		return 0, false
	}
	return n, true
}

// LeafCount is the number of leaves, blank ones included, of the padded tree;
// 0 when t is malformed.
func (t RatchetTree) LeafCount() uint32 {
	n, _ := t.size()
	return n
}

// node returns the node at x, nil when blank or outside the slice.
func (t RatchetTree) node(x NodeIndex) *Node {
	if uint64(x) >= uint64(len(t)) {
		return nil
	}
	return t[x]
}

// leafAt and parentAt read a node as the type its position requires. A node
// whose tag or body disagrees with its position counts as blank here; tree
// hashing and validation report such nodes as errors instead (checkShape).
func (t RatchetTree) leafAt(x NodeIndex) *LeafNode {
	nd := t.node(x)
	if nd == nil || !x.isLeaf() || nd.NodeType != NodeTypeLeaf {
		return nil
	}
	return nd.Leaf
}

func (t RatchetTree) parentAt(x NodeIndex) *ParentNode {
	nd := t.node(x)
	if nd == nil || x.isLeaf() || nd.NodeType != NodeTypeParent {
		return nil
	}
	return nd.Parent
}

// Leaf returns leaf i, or nil if it is blank or outside the tree.
func (t RatchetTree) Leaf(i LeafIndex) *LeafNode {
	x, ok := leafNode(i, t.LeafCount())
	if !ok {
		return nil
	}
	return t.leafAt(x)
}

// Parent returns the parent node at n, or nil if it is blank, a leaf
// position or outside the tree.
func (t RatchetTree) Parent(n NodeIndex) *ParentNode {
	if !n.inTree(t.LeafCount()) {
		return nil
	}
	return t.parentAt(n)
}

// encryptionKey is the HPKE public key of node x, nil when blank.
func (t RatchetTree) encryptionKey(x NodeIndex) []byte {
	if x.isLeaf() {
		if l := t.leafAt(x); l != nil {
			return l.EncryptionKey
		}
		return nil
	}
	if p := t.parentAt(x); p != nil {
		return p.EncryptionKey
	}
	return nil
}

func (t RatchetTree) blank(x NodeIndex) bool {
	if x.isLeaf() {
		return t.leafAt(x) == nil
	}
	return t.parentAt(x) == nil
}

// checkShape rejects a tree that is not padded, or holds a node whose tag
// does not match its position or lacks its body. Trees decoded from the wire
// and built by this package never fail it; hand-assembled ones might, and
// hashing them would silently treat the bad node as blank.
func (t RatchetTree) checkShape() (uint32, error) {
	n, ok := t.size()
	if !ok {
		return 0, errTreeWidth
	}
	for i, nd := range t {
		if nd == nil {
			continue
		}
		want := nodeTypeAt(i)
		if nd.NodeType != want || (want == NodeTypeLeaf && nd.Leaf == nil) || (want == NodeTypeParent && nd.Parent == nil) {
			return 0, fmt.Errorf("mls: ratchet tree node %d is malformed (node_type %d, want %d)", i, nd.NodeType, want)
		}
	}
	return n, nil
}

// NewRatchetTreeFromWire checks the layout of a decoded ratchet_tree and pads
// it with blanks to the smallest full width that holds it (RFC 9420 section
// 12.4.3.3). The nodes themselves are shared with the input, not copied.
func NewRatchetTreeFromWire(nodes RatchetTree) (RatchetTree, error) {
	if len(nodes) == 0 {
		return nil, errEmptyTree
	}
	if len(nodes) > 2*maxTreeLeaves-1 {
		return nil, fmt.Errorf("mls: ratchet_tree has %d nodes, more than any tree can hold", len(nodes))
	}
	if nodes[len(nodes)-1] == nil {
		return nil, errors.New("mls: ratchet_tree ends in a blank node")
	}
	n := uint32(1)
	for int(2*n-1) < len(nodes) {
		n *= 2
	}
	t := make(RatchetTree, 2*n-1)
	copy(t, nodes)
	if _, err := t.checkShape(); err != nil {
		return nil, err
	}
	return t, nil
}

// Truncated drops the trailing blank nodes, which senders must omit from the
// ratchet_tree extension. The result is a new slice sharing t's nodes, which
// later changes to t replace rather than modify.
func (t RatchetTree) Truncated() RatchetTree {
	end := len(t)
	for end > 0 && t[end-1] == nil {
		end--
	}
	return slices.Clone(t[:end])
}

// Clone returns a deep copy, so that Commit processing can work on a
// provisional tree and drop it on failure.
func (t RatchetTree) Clone() RatchetTree {
	if t == nil {
		return nil
	}
	c := make(RatchetTree, len(t))
	for i, nd := range t {
		c[i] = nd.clone()
	}
	return c
}

func (nd *Node) clone() *Node {
	if nd == nil {
		return nil
	}
	c := &Node{NodeType: nd.NodeType}
	if nd.Leaf != nil {
		c.Leaf = nd.Leaf.clone()
	}
	if nd.Parent != nil {
		c.Parent = &ParentNode{
			EncryptionKey:  slices.Clone(nd.Parent.EncryptionKey),
			ParentHash:     slices.Clone(nd.Parent.ParentHash),
			UnmergedLeaves: slices.Clone(nd.Parent.UnmergedLeaves),
		}
	}
	return c
}

// clone deep-copies a leaf node, so that a tree never aliases the caller's
// KeyPackage or UpdatePath.
func (n *LeafNode) clone() *LeafNode {
	c := *n
	c.EncryptionKey = slices.Clone(n.EncryptionKey)
	c.SignatureKey = slices.Clone(n.SignatureKey)
	c.Credential.Identity = slices.Clone(n.Credential.Identity)
	if n.Credential.Certificates != nil {
		c.Credential.Certificates = make([]Certificate, len(n.Credential.Certificates))
		for i, cert := range n.Credential.Certificates {
			c.Credential.Certificates[i] = Certificate{CertData: slices.Clone(cert.CertData)}
		}
	}
	c.Capabilities = Capabilities{
		Versions:     slices.Clone(n.Capabilities.Versions),
		CipherSuites: slices.Clone(n.Capabilities.CipherSuites),
		Extensions:   slices.Clone(n.Capabilities.Extensions),
		Proposals:    slices.Clone(n.Capabilities.Proposals),
		Credentials:  slices.Clone(n.Capabilities.Credentials),
	}
	c.ParentHash = slices.Clone(n.ParentHash)
	c.Extensions = n.Extensions.clone()
	c.Signature = slices.Clone(n.Signature)
	return &c
}

// clone is a deep copy of e (nil stays nil).
func (e Extensions) clone() Extensions {
	if e == nil {
		return nil
	}
	c := make(Extensions, len(e))
	for i, x := range e {
		c[i] = Extension{Type: x.Type, Data: slices.Clone(x.Data)}
	}
	return c
}

// Resolution lists the non-blank nodes that together cover every non-blank
// node below n (RFC 9420 section 4.1.1), nil if n is outside the tree.
// Unmerged leaves are listed as given, without descending into them, so a
// hostile unmerged list cannot make this loop; entries naming a leaf outside
// the tree are dropped (ValidateForJoin rejects such trees).
func (t RatchetTree) Resolution(n NodeIndex) []NodeIndex {
	size := t.LeafCount()
	if !n.inTree(size) {
		return nil
	}
	return t.appendResolution(nil, n, size)
}

func (t RatchetTree) appendResolution(out []NodeIndex, x NodeIndex, size uint32) []NodeIndex {
	if x.isLeaf() {
		if t.leafAt(x) != nil {
			out = append(out, x)
		}
		return out
	}
	if p := t.parentAt(x); p != nil {
		out = append(out, x)
		for _, l := range p.UnmergedLeaves {
			if u, ok := leafNode(l, size); ok {
				out = append(out, u)
			}
		}
		return out
	}
	l, _ := x.left(size)
	r, _ := x.right(size)
	return t.appendResolution(t.appendResolution(out, l, size), r, size)
}

// resolutionEmpty is len(Resolution(x)) == 0 without building the list; it
// stops at the first non-blank node.
func (t RatchetTree) resolutionEmpty(x NodeIndex, size uint32) bool {
	if !t.blank(x) {
		return false
	}
	if x.isLeaf() {
		return true
	}
	l, _ := x.left(size)
	r, _ := x.right(size)
	return t.resolutionEmpty(l, size) && t.resolutionEmpty(r, size)
}

// pathStep is one node of a filtered direct path together with its child on
// the copath, to whose resolution the node's path secret is encrypted.
type pathStep struct {
	node, copath NodeIndex
}

// filteredPath is FilteredDirectPath with each node's copath child.
func (t RatchetTree) filteredPath(l LeafIndex) ([]pathStep, bool) {
	size := t.LeafCount()
	x, ok := leafNode(l, size)
	if !ok {
		return nil, false
	}
	var steps []pathStep
	for x != NodeIndex(size-1) {
		sib, _ := x.sibling(size)
		x, _ = x.parent(size)
		if !t.resolutionEmpty(sib, size) {
			steps = append(steps, pathStep{x, sib})
		}
	}
	return steps, true
}

// FilteredDirectPath is leaf l's direct path without the nodes whose copath
// child has an empty resolution (RFC 9420 section 4.1.2), leaf to root. It is
// nil when l is outside the tree, and empty when no other leaf is occupied.
func (t RatchetTree) FilteredDirectPath(l LeafIndex) []NodeIndex {
	steps, ok := t.filteredPath(l)
	if !ok {
		return nil
	}
	out := make([]NodeIndex, len(steps))
	for i, st := range steps {
		out[i] = st.node
	}
	return out
}

// FindLeaf returns the leftmost non-blank leaf for which match is true.
func (t RatchetTree) FindLeaf(match func(*LeafNode) bool) (LeafIndex, bool) {
	for i := 0; i < len(t); i += 2 {
		if l := t.leafAt(NodeIndex(i)); l != nil && match(l) {
			return LeafIndex(i / 2), true
		}
	}
	return 0, false
}
