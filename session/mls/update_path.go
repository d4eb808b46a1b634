package mls

import "github.com/current-vpn/current/session/mls/wire"

// HPKECiphertext is a value encrypted with EncryptWithLabel (RFC 9420
// section 7.6): the KEM's encapsulated key and the AEAD ciphertext.
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

func (c *HPKECiphertext) MarshalMLS(w *wire.Writer) {
	w.Opaque(c.KEMOutput)
	w.Opaque(c.Ciphertext)
}

func (c *HPKECiphertext) UnmarshalMLS(r *wire.Reader) {
	c.KEMOutput = r.Opaque()
	c.Ciphertext = r.Opaque()
}

// UpdatePathNode carries the new public key of one node on the committer's
// filtered direct path, and its path secret encrypted to each node of the
// copath child's resolution, in resolution order (RFC 9420 section 7.6).
type UpdatePathNode struct {
	EncryptionKey       []byte
	EncryptedPathSecret []HPKECiphertext
}

func (n *UpdatePathNode) MarshalMLS(w *wire.Writer) {
	w.Opaque(n.EncryptionKey)
	w.Vector(func(w *wire.Writer) {
		for i := range n.EncryptedPathSecret {
			n.EncryptedPathSecret[i].MarshalMLS(w)
		}
	})
}

func (n *UpdatePathNode) UnmarshalMLS(r *wire.Reader) {
	*n = UpdatePathNode{EncryptionKey: r.Opaque()}
	r.Vector(func(r *wire.Reader) {
		var c HPKECiphertext
		c.UnmarshalMLS(r)
		n.EncryptedPathSecret = append(n.EncryptedPathSecret, c)
	})
}

// UpdatePath is the committer's fresh leaf and the new keys of its filtered
// direct path, leaf to root (RFC 9420 section 7.6).
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

func (p *UpdatePath) MarshalMLS(w *wire.Writer) {
	p.LeafNode.MarshalMLS(w)
	w.Vector(func(w *wire.Writer) {
		for i := range p.Nodes {
			p.Nodes[i].MarshalMLS(w)
		}
	})
}

func (p *UpdatePath) UnmarshalMLS(r *wire.Reader) {
	*p = UpdatePath{}
	p.LeafNode.UnmarshalMLS(r)
	r.Vector(func(r *wire.Reader) {
		var n UpdatePathNode
		n.UnmarshalMLS(r)
		p.Nodes = append(p.Nodes, n)
	})
}
