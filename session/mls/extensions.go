package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// ExtensionType identifies an MLS extension (RFC 9420 section 17.3).
type ExtensionType uint16

const (
	ExtApplicationID        ExtensionType = 0x0001
	ExtRatchetTree          ExtensionType = 0x0002
	ExtRequiredCapabilities ExtensionType = 0x0003
	ExtExternalPub          ExtensionType = 0x0004
	ExtExternalSenders      ExtensionType = 0x0005
)

// Extension is one entry of an Extension extensions<V> list.
type Extension struct {
	Type ExtensionType
	Data []byte
}

func (e *Extension) MarshalMLS(w *wire.Writer) {
	w.U16(uint16(e.Type))
	w.Opaque(e.Data)
}

func (e *Extension) UnmarshalMLS(r *wire.Reader) {
	e.Type = ExtensionType(r.U16())
	e.Data = r.Opaque()
}

// Extensions is an ordered extension list.
type Extensions []Extension

func (es Extensions) MarshalMLS(w *wire.Writer) {
	w.Vector(func(w *wire.Writer) {
		for i := range es {
			es[i].MarshalMLS(w)
		}
	})
}

func (es *Extensions) UnmarshalMLS(r *wire.Reader) {
	*es = nil
	r.Vector(func(r *wire.Reader) {
		var e Extension
		e.UnmarshalMLS(r)
		*es = append(*es, e)
	})
}

// Find returns the data of the extension of type t, if present.
func (es Extensions) Find(t ExtensionType) ([]byte, bool) {
	for _, e := range es {
		if e.Type == t {
			return e.Data, true
		}
	}
	return nil, false
}

// CheckUnique reports an error if any extension type appears twice, which
// RFC 9420 section 13.4 forbids in every extension list.
func (es Extensions) CheckUnique() error {
	seen := make(map[ExtensionType]bool, len(es))
	for _, e := range es {
		if seen[e.Type] {
			return fmt.Errorf("mls: extension %#04x appears twice", uint16(e.Type))
		}
		seen[e.Type] = true
	}
	return nil
}
