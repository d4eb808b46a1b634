package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// ProposalType is the code point of a proposal (RFC 9420 section 12.1, IANA
// "MLS Proposal Types").
type ProposalType uint16

const (
	ProposalAdd                    ProposalType = 1
	ProposalUpdate                 ProposalType = 2
	ProposalRemove                 ProposalType = 3
	ProposalPSK                    ProposalType = 4
	ProposalReInit                 ProposalType = 5
	ProposalExternalInit           ProposalType = 6
	ProposalGroupContextExtensions ProposalType = 7
)

// Add asks for the owner of KeyPackage to be added (RFC 9420 section 12.1.1).
type Add struct {
	KeyPackage KeyPackage
}

func (p *Add) MarshalMLS(w *wire.Writer)   { p.KeyPackage.MarshalMLS(w) }
func (p *Add) UnmarshalMLS(r *wire.Reader) { p.KeyPackage.UnmarshalMLS(r) }

// Update replaces the sender's own leaf (RFC 9420 section 12.1.2).
type Update struct {
	LeafNode LeafNode
}

func (p *Update) MarshalMLS(w *wire.Writer)   { p.LeafNode.MarshalMLS(w) }
func (p *Update) UnmarshalMLS(r *wire.Reader) { p.LeafNode.UnmarshalMLS(r) }

// Remove asks for the member at leaf Removed to be removed (RFC 9420
// section 12.1.3).
type Remove struct {
	Removed LeafIndex
}

func (p *Remove) MarshalMLS(w *wire.Writer)   { w.U32(uint32(p.Removed)) }
func (p *Remove) UnmarshalMLS(r *wire.Reader) { p.Removed = LeafIndex(r.U32()) }

// PreSharedKey asks for a PSK to be injected into the next epoch's key
// schedule (RFC 9420 section 12.1.4).
type PreSharedKey struct {
	PSK PreSharedKeyID
}

func (p *PreSharedKey) MarshalMLS(w *wire.Writer)   { p.PSK.MarshalMLS(w) }
func (p *PreSharedKey) UnmarshalMLS(r *wire.Reader) { p.PSK.UnmarshalMLS(r) }

// ReInit asks for the group to be restarted with new parameters (RFC 9420
// section 12.1.5).
type ReInit struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite CipherSuiteID
	Extensions  Extensions
}

func (p *ReInit) MarshalMLS(w *wire.Writer) {
	w.Opaque(p.GroupID)
	w.U16(uint16(p.Version))
	w.U16(uint16(p.CipherSuite))
	p.Extensions.MarshalMLS(w)
}

// UnmarshalMLS rejects versions other than mls10, the only one a group could
// be reinitialised to.
func (p *ReInit) UnmarshalMLS(r *wire.Reader) {
	p.GroupID = r.Opaque()
	p.Version = ProtocolVersion(r.U16())
	if r.Err() == nil && p.Version != ProtocolMLS10 {
		r.Failf("mls: unsupported ReInit.version %d", p.Version)
	}
	p.CipherSuite = CipherSuiteID(r.U16())
	p.Extensions.UnmarshalMLS(r)
}

// ExternalInit carries the KEM output from which an external joiner and the
// group derive the new init secret (RFC 9420 section 12.1.6).
type ExternalInit struct {
	KEMOutput []byte
}

func (p *ExternalInit) MarshalMLS(w *wire.Writer)   { w.Opaque(p.KEMOutput) }
func (p *ExternalInit) UnmarshalMLS(r *wire.Reader) { p.KEMOutput = r.Opaque() }

// GroupContextExtensions replaces the group's extension list wholesale (RFC
// 9420 section 12.1.7).
type GroupContextExtensions struct {
	Extensions Extensions
}

func (p *GroupContextExtensions) MarshalMLS(w *wire.Writer)   { p.Extensions.MarshalMLS(w) }
func (p *GroupContextExtensions) UnmarshalMLS(r *wire.Reader) { p.Extensions.UnmarshalMLS(r) }

// Proposal is a tagged proposal (RFC 9420 section 12.1): the field matching
// ProposalType holds the body; the others are nil.
type Proposal struct {
	ProposalType           ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
}

func (p *Proposal) MarshalMLS(w *wire.Writer) {
	w.U16(uint16(p.ProposalType))
	switch p.ProposalType {
	case ProposalAdd:
		marshalOrZero(w, p.Add)
	case ProposalUpdate:
		marshalOrZero(w, p.Update)
	case ProposalRemove:
		marshalOrZero(w, p.Remove)
	case ProposalPSK:
		marshalOrZero(w, p.PreSharedKey)
	case ProposalReInit:
		marshalOrZero(w, p.ReInit)
	case ProposalExternalInit:
		marshalOrZero(w, p.ExternalInit)
	case ProposalGroupContextExtensions:
		marshalOrZero(w, p.GroupContextExtensions)
	default:
		w.Fail(fmt.Errorf("mls: cannot encode Proposal.proposal_type %d", p.ProposalType))
	}
}

// UnmarshalMLS rejects proposal types it does not know: a proposal body has
// no length prefix, so an unknown one cannot be skipped.
func (p *Proposal) UnmarshalMLS(r *wire.Reader) {
	*p = Proposal{ProposalType: ProposalType(r.U16())}
	switch p.ProposalType {
	case ProposalAdd:
		p.Add = new(Add)
		p.Add.UnmarshalMLS(r)
	case ProposalUpdate:
		p.Update = new(Update)
		p.Update.UnmarshalMLS(r)
	case ProposalRemove:
		p.Remove = new(Remove)
		p.Remove.UnmarshalMLS(r)
	case ProposalPSK:
		p.PreSharedKey = new(PreSharedKey)
		p.PreSharedKey.UnmarshalMLS(r)
	case ProposalReInit:
		p.ReInit = new(ReInit)
		p.ReInit.UnmarshalMLS(r)
	case ProposalExternalInit:
		p.ExternalInit = new(ExternalInit)
		p.ExternalInit.UnmarshalMLS(r)
	case ProposalGroupContextExtensions:
		p.GroupContextExtensions = new(GroupContextExtensions)
		p.GroupContextExtensions.UnmarshalMLS(r)
	default:
		r.Failf("mls: unknown Proposal.proposal_type %d", p.ProposalType)
	}
}

// ProposalOrRefType says whether a Commit carries a proposal inline or names
// one sent earlier (RFC 9420 section 12.4).
type ProposalOrRefType uint8

const (
	ProposalOrRefProposal  ProposalOrRefType = 1
	ProposalOrRefReference ProposalOrRefType = 2
)

// ProposalOrRef is one entry of a Commit's proposal list (RFC 9420 section
// 12.4). Reference is the ProposalRef (section 5.2) of the
// AuthenticatedContent that carried the proposal.
type ProposalOrRef struct {
	Type      ProposalOrRefType
	Proposal  *Proposal
	Reference []byte
}

func (p *ProposalOrRef) MarshalMLS(w *wire.Writer) {
	w.U8(uint8(p.Type))
	switch p.Type {
	case ProposalOrRefProposal:
		marshalOrZero(w, p.Proposal)
	case ProposalOrRefReference:
		w.Opaque(p.Reference)
	default:
		w.Fail(fmt.Errorf("mls: cannot encode ProposalOrRef.type %d", p.Type))
	}
}

func (p *ProposalOrRef) UnmarshalMLS(r *wire.Reader) {
	*p = ProposalOrRef{Type: ProposalOrRefType(r.U8())}
	switch p.Type {
	case ProposalOrRefProposal:
		p.Proposal = new(Proposal)
		p.Proposal.UnmarshalMLS(r)
	case ProposalOrRefReference:
		p.Reference = r.Opaque()
	default:
		r.Failf("mls: invalid ProposalOrRef.type %d", p.Type)
	}
}
