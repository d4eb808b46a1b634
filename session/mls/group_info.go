package mls

import "github.com/current-vpn/current/session/mls/wire"

// GroupInfo is the signed public state a joiner needs (RFC 9420 section
// 12.4.3): sent encrypted in a Welcome, or in the clear for external joins.
// Signer is the leaf whose signature key verifies Signature.
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      Extensions
	ConfirmationTag []byte
	Signer          LeafIndex
	Signature       []byte
}

func (g *GroupInfo) MarshalMLS(w *wire.Writer) {
	g.marshalTBS(w)
	w.Opaque(g.Signature)
}

// marshalTBS writes GroupInfoTBS (RFC 9420 section 12.4.3): every field but
// the signature, which signs it.
func (g *GroupInfo) marshalTBS(w *wire.Writer) {
	g.GroupContext.MarshalMLS(w)
	g.Extensions.MarshalMLS(w)
	w.Opaque(g.ConfirmationTag)
	w.U32(uint32(g.Signer))
}

func (g *GroupInfo) UnmarshalMLS(r *wire.Reader) {
	g.GroupContext.UnmarshalMLS(r)
	g.Extensions.UnmarshalMLS(r)
	g.ConfirmationTag = r.Opaque()
	g.Signer = LeafIndex(r.U32())
	g.Signature = r.Opaque()
}
