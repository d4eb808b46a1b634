package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// ProtocolVersion is the MLS protocol version; only mls10 exists.
type ProtocolVersion uint16

const ProtocolMLS10 ProtocolVersion = 1

// GroupContext summarises the state of a group in one epoch (RFC 9420
// section 8.1). Its encoding is the context of most key schedule steps.
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             CipherSuiteID
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              Extensions
}

func (g *GroupContext) MarshalMLS(w *wire.Writer) {
	w.U16(uint16(g.Version))
	w.U16(uint16(g.CipherSuite))
	w.Opaque(g.GroupID)
	w.U64(g.Epoch)
	w.Opaque(g.TreeHash)
	w.Opaque(g.ConfirmedTranscriptHash)
	g.Extensions.MarshalMLS(w)
}

func (g *GroupContext) UnmarshalMLS(r *wire.Reader) {
	g.Version = ProtocolVersion(r.U16())
	if r.Err() == nil && g.Version != ProtocolMLS10 {
		r.Fail(fmt.Errorf("mls: unsupported protocol version %d", g.Version))
	}
	g.CipherSuite = CipherSuiteID(r.U16())
	g.GroupID = r.Opaque()
	g.Epoch = r.U64()
	g.TreeHash = r.Opaque()
	g.ConfirmedTranscriptHash = r.Opaque()
	g.Extensions.UnmarshalMLS(r)
}
