package mls

import (
	"bytes"
	"fmt"
)

// resolvePSKs looks up the secrets of the PSKs a commit or Welcome injects
// and returns the psk_secret they chain into (nil when there are none, which
// the key schedule reads as all zero).
func (g *Group) resolvePSKs(ids []PreSharedKeyID) ([]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	psks := make([]PSK, len(ids))
	for i, id := range ids {
		secret, err := g.lookupPSK(&id)
		if err != nil {
			return nil, err
		}
		psks[i] = PSK{ID: id, Secret: secret}
	}
	return g.suite.PSKSecret(psks)
}

func (g *Group) lookupPSK(id *PreSharedKeyID) ([]byte, error) {
	switch id.Type {
	case PSKExternal:
		if g.cfg.ExternalPSKs != nil {
			if secret, ok := g.cfg.ExternalPSKs(id.PSKID); ok {
				return secret, nil
			}
		}
		return nil, fmt.Errorf("mls: unknown external PSK %x", id.PSKID)
	case PSKResumption:
		if id.Usage != ResumptionApplication {
			return nil, fmt.Errorf("%w: resumption PSK usage %d", ErrUnsupported, id.Usage)
		}
		if !bytes.Equal(id.PSKGroupID, g.state.ctx.GroupID) {
			return nil, fmt.Errorf("mls: resumption PSK of another group is not available")
		}
		if id.PSKEpoch == g.state.ctx.Epoch && g.state.secrets != nil {
			return g.state.secrets.ResumptionPSK, nil
		}
		for _, r := range g.resumption {
			if r.epoch == id.PSKEpoch {
				return r.psk, nil
			}
		}
		return nil, fmt.Errorf("mls: resumption PSK of epoch %d is not available", id.PSKEpoch)
	}
	return nil, fmt.Errorf("mls: invalid PSK type %d", id.Type)
}
