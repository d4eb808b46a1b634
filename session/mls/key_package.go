package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// KeyPackage is a client's pre-published offer to be added to a group (RFC
// 9420 section 10). InitKey is the HPKE key the Welcome is encrypted to.
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite CipherSuiteID
	InitKey     []byte
	LeafNode    LeafNode
	Extensions  Extensions
	Signature   []byte
}

func (k *KeyPackage) MarshalMLS(w *wire.Writer) {
	k.marshalTBS(w)
	w.Opaque(k.Signature)
}

// marshalTBS writes KeyPackageTBS (RFC 9420 section 10): every field but the
// signature, which signs it.
func (k *KeyPackage) marshalTBS(w *wire.Writer) {
	if k.Version != ProtocolMLS10 {
		w.Fail(fmt.Errorf("mls: cannot encode KeyPackage.version %d", k.Version))
	}
	w.U16(uint16(k.Version))
	w.U16(uint16(k.CipherSuite))
	w.Opaque(k.InitKey)
	k.LeafNode.MarshalMLS(w)
	k.Extensions.MarshalMLS(w)
}

// UnmarshalMLS rejects versions other than mls10: the rest of the structure
// is defined only for it.
func (k *KeyPackage) UnmarshalMLS(r *wire.Reader) {
	*k = KeyPackage{}
	k.Version = ProtocolVersion(r.U16())
	if r.Err() == nil && k.Version != ProtocolMLS10 {
		r.Failf("mls: unsupported KeyPackage.version %d", k.Version)
	}
	k.CipherSuite = CipherSuiteID(r.U16())
	k.InitKey = r.Opaque()
	k.LeafNode.UnmarshalMLS(r)
	k.Extensions.UnmarshalMLS(r)
	k.Signature = r.Opaque()
}
