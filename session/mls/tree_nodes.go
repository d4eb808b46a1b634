package mls

import (
	"errors"
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// LeafIndex numbers the leaves of the ratchet tree from 0 at the left (RFC
// 9420 section 4.1.1); leaf L sits at node index 2L.
type LeafIndex uint32

// ParentNode is the public state of an intermediate tree node (RFC 9420
// section 7.1). UnmergedLeaves must be sorted; that is checked by tree
// validation, not here.
type ParentNode struct {
	EncryptionKey  []byte
	ParentHash     []byte
	UnmergedLeaves []LeafIndex
}

func (p *ParentNode) MarshalMLS(w *wire.Writer) {
	w.Opaque(p.EncryptionKey)
	w.Opaque(p.ParentHash)
	w.Vector(func(w *wire.Writer) {
		for _, l := range p.UnmergedLeaves {
			w.U32(uint32(l))
		}
	})
}

func (p *ParentNode) UnmarshalMLS(r *wire.Reader) {
	*p = ParentNode{}
	p.EncryptionKey = r.Opaque()
	p.ParentHash = r.Opaque()
	r.Vector(func(r *wire.Reader) {
		p.UnmergedLeaves = append(p.UnmergedLeaves, LeafIndex(r.U32()))
	})
}

// NodeType tags the contents of a non-blank tree node (RFC 9420 section 7.8).
type NodeType uint8

const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// Node is a non-blank ratchet tree node (RFC 9420 section 12.4.3.3): Leaf is
// set for NodeTypeLeaf, Parent for NodeTypeParent.
type Node struct {
	NodeType NodeType
	Leaf     *LeafNode
	Parent   *ParentNode
}

func (n *Node) MarshalMLS(w *wire.Writer) {
	w.U8(uint8(n.NodeType))
	switch n.NodeType {
	case NodeTypeLeaf:
		marshalOrZero(w, n.Leaf)
	case NodeTypeParent:
		marshalOrZero(w, n.Parent)
	default:
		w.Fail(fmt.Errorf("mls: cannot encode Node.node_type %d", n.NodeType))
	}
}

func (n *Node) UnmarshalMLS(r *wire.Reader) {
	*n = Node{NodeType: NodeType(r.U8())}
	switch n.NodeType {
	case NodeTypeLeaf:
		n.Leaf = new(LeafNode)
		n.Leaf.UnmarshalMLS(r)
	case NodeTypeParent:
		n.Parent = new(ParentNode)
		n.Parent.UnmarshalMLS(r)
	default:
		r.Failf("mls: invalid Node.node_type %d", n.NodeType)
	}
}

// marshalOrZero encodes v, or the zero value of its type when v is nil, so a
// struct whose tag and body disagree still encodes without a panic.
func marshalOrZero[T any, P interface {
	*T
	wire.Marshaler
}](w *wire.Writer, v P) {
	if v == nil {
		v = new(T)
	}
	v.MarshalMLS(w)
}

// RatchetTree is the array form of a ratchet tree as carried in the
// ratchet_tree extension (RFC 9420 section 12.4.3.3): node i of the in-order
// traversal, nil for a blank node. Leaves sit at even indices.
//
// The encoding omits blank nodes after the last non-blank one, as the RFC
// requires of senders, so a tree held at its full 2^(d+1)-1 width encodes
// correctly. Decoding returns the nodes exactly as sent; extending them to a
// full tree is left to the tree code.
type RatchetTree []*Node

var errEmptyTree = errors.New("mls: ratchet_tree has no non-blank node")

func (t RatchetTree) MarshalMLS(w *wire.Writer) {
	n := len(t)
	for n > 0 && t[n-1] == nil {
		n--
	}
	if n == 0 {
		w.Fail(errEmptyTree)
	}
	w.Vector(func(w *wire.Writer) {
		for i, node := range t[:n] {
			w.Bool(node != nil)
			if node == nil {
				continue
			}
			if want := nodeTypeAt(i); node.NodeType != want {
				w.Fail(fmt.Errorf("mls: ratchet_tree node %d has node_type %d, want %d", i, node.NodeType, want))
			}
			node.MarshalMLS(w)
		}
	})
}

// UnmarshalMLS enforces the layout the RFC fixes: leaves at even positions,
// parents at odd ones, and a non-blank last node (receivers MUST check it, and
// it keeps the encoding canonical).
func (t *RatchetTree) UnmarshalMLS(r *wire.Reader) {
	*t = nil
	r.Vector(func(r *wire.Reader) {
		var node *Node
		if r.Bool() {
			node = new(Node)
			node.UnmarshalMLS(r)
			if want := nodeTypeAt(len(*t)); r.Err() == nil && node.NodeType != want {
				r.Failf("mls: ratchet_tree node %d has node_type %d, want %d", len(*t), node.NodeType, want)
			}
		}
		*t = append(*t, node)
	})
	if r.Err() != nil {
		return
	}
	if len(*t) == 0 || (*t)[len(*t)-1] == nil {
		r.Fail(errors.New("mls: ratchet_tree is empty or ends in a blank node"))
	}
}

func nodeTypeAt(i int) NodeType {
	if i%2 == 0 {
		return NodeTypeLeaf
	}
	return NodeTypeParent
}
