package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// LeafNodeSource says how a leaf node entered the tree, which decides whether
// it carries a lifetime or a parent hash (RFC 9420 section 7.2).
type LeafNodeSource uint8

const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// Capabilities lists what a client supports (RFC 9420 section 7.2). Unknown
// values, GREASE included, must be kept and ignored, so none is checked here.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []CipherSuiteID
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

func (c *Capabilities) MarshalMLS(w *wire.Writer) {
	marshalU16s(w, c.Versions)
	marshalU16s(w, c.CipherSuites)
	marshalU16s(w, c.Extensions)
	marshalU16s(w, c.Proposals)
	marshalU16s(w, c.Credentials)
}

func (c *Capabilities) UnmarshalMLS(r *wire.Reader) {
	c.Versions = unmarshalU16s[ProtocolVersion](r)
	c.CipherSuites = unmarshalU16s[CipherSuiteID](r)
	c.Extensions = unmarshalU16s[ExtensionType](r)
	c.Proposals = unmarshalU16s[ProposalType](r)
	c.Credentials = unmarshalU16s[CredentialType](r)
}

func marshalU16s[T ~uint16](w *wire.Writer, vs []T) {
	w.Vector(func(w *wire.Writer) {
		for _, v := range vs {
			w.U16(uint16(v))
		}
	})
}

// unmarshalU16s grows the slice one element at a time rather than from the
// vector's length, so a hostile header cannot make it allocate.
func unmarshalU16s[T ~uint16](r *wire.Reader) []T {
	var vs []T
	r.Vector(func(r *wire.Reader) { vs = append(vs, T(r.U16())) })
	return vs
}

// Lifetime is the validity window, in seconds since the Unix epoch, of a leaf
// node created for a KeyPackage (RFC 9420 section 7.2).
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

func (l *Lifetime) MarshalMLS(w *wire.Writer) {
	w.U64(l.NotBefore)
	w.U64(l.NotAfter)
}

func (l *Lifetime) UnmarshalMLS(r *wire.Reader) {
	l.NotBefore = r.U64()
	l.NotAfter = r.U64()
}

// LeafNode describes one member in the ratchet tree (RFC 9420 section 7.2).
// Lifetime is encoded only for source key_package, ParentHash only for source
// commit.
type LeafNode struct {
	EncryptionKey  []byte
	SignatureKey   []byte
	Credential     Credential
	Capabilities   Capabilities
	LeafNodeSource LeafNodeSource
	Lifetime       Lifetime
	ParentHash     []byte
	Extensions     Extensions
	Signature      []byte
}

func (n *LeafNode) MarshalMLS(w *wire.Writer) {
	n.marshalContent(w)
	w.Opaque(n.Signature)
}

// marshalTBS writes LeafNodeTBS (RFC 9420 section 7.2), the input of the leaf
// signature. Leaves made inside a group (update, commit) also sign the group
// ID and their position, so they cannot be replayed into another group or
// leaf; groupID and leafIndex are ignored for key_package leaves.
func (n *LeafNode) marshalTBS(w *wire.Writer, groupID []byte, leafIndex uint32) {
	n.marshalContent(w)
	switch n.LeafNodeSource {
	case LeafNodeSourceUpdate, LeafNodeSourceCommit:
		w.Opaque(groupID)
		w.U32(leafIndex)
	}
}

// marshalContent writes the fields that LeafNode and LeafNodeTBS share.
func (n *LeafNode) marshalContent(w *wire.Writer) {
	w.Opaque(n.EncryptionKey)
	w.Opaque(n.SignatureKey)
	n.Credential.MarshalMLS(w)
	n.Capabilities.MarshalMLS(w)
	w.U8(uint8(n.LeafNodeSource))
	switch n.LeafNodeSource {
	case LeafNodeSourceKeyPackage:
		n.Lifetime.MarshalMLS(w)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		w.Opaque(n.ParentHash)
	default:
		w.Fail(fmt.Errorf("mls: cannot encode LeafNode.leaf_node_source %d", n.LeafNodeSource))
	}
	n.Extensions.MarshalMLS(w)
}

func (n *LeafNode) UnmarshalMLS(r *wire.Reader) {
	*n = LeafNode{}
	n.EncryptionKey = r.Opaque()
	n.SignatureKey = r.Opaque()
	n.Credential.UnmarshalMLS(r)
	n.Capabilities.UnmarshalMLS(r)
	n.LeafNodeSource = LeafNodeSource(r.U8())
	switch n.LeafNodeSource {
	case LeafNodeSourceKeyPackage:
		n.Lifetime.UnmarshalMLS(r)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		n.ParentHash = r.Opaque()
	default:
		r.Failf("mls: invalid LeafNode.leaf_node_source %d", n.LeafNodeSource)
	}
	n.Extensions.UnmarshalMLS(r)
	n.Signature = r.Opaque()
}
