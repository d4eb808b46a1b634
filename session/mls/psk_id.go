package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// PSKType says how a pre-shared key was provisioned.
type PSKType uint8

const (
	PSKExternal   PSKType = 1
	PSKResumption PSKType = 2
)

// ResumptionPSKUsage says why a resumption PSK is injected.
type ResumptionPSKUsage uint8

const (
	ResumptionApplication ResumptionPSKUsage = 1
	ResumptionReInit      ResumptionPSKUsage = 2
	ResumptionBranch      ResumptionPSKUsage = 3
)

// PreSharedKeyID names a PSK injected into the key schedule (RFC 9420
// section 8.4).
type PreSharedKeyID struct {
	Type PSKType

	// External PSKs.
	PSKID []byte

	// Resumption PSKs.
	Usage      ResumptionPSKUsage
	PSKGroupID []byte
	PSKEpoch   uint64

	Nonce []byte
}

func (p *PreSharedKeyID) MarshalMLS(w *wire.Writer) {
	w.U8(uint8(p.Type))
	switch p.Type {
	case PSKExternal:
		w.Opaque(p.PSKID)
	case PSKResumption:
		w.U8(uint8(p.Usage))
		w.Opaque(p.PSKGroupID)
		w.U64(p.PSKEpoch)
	default:
		w.Fail(fmt.Errorf("mls: cannot encode PSK type %d", p.Type))
	}
	w.Opaque(p.Nonce)
}

func (p *PreSharedKeyID) UnmarshalMLS(r *wire.Reader) {
	p.Type = PSKType(r.U8())
	switch p.Type {
	case PSKExternal:
		p.PSKID = r.Opaque()
	case PSKResumption:
		p.Usage = ResumptionPSKUsage(r.U8())
		if p.Usage < ResumptionApplication || p.Usage > ResumptionBranch {
			r.Failf("mls: invalid resumption PSK usage %d", p.Usage)
		}
		p.PSKGroupID = r.Opaque()
		p.PSKEpoch = r.U64()
	default:
		r.Failf("mls: invalid PSK type %d", p.Type)
	}
	p.Nonce = r.Opaque()
}
