package mls

import "github.com/current-vpn/current/session/mls/wire"

// PathSecret is the path secret a Welcome gives a joiner for the lowest node
// it shares with the committer's direct path (RFC 9420 section 12.4.3.1).
type PathSecret struct {
	PathSecret []byte
}

func (p *PathSecret) MarshalMLS(w *wire.Writer)   { w.Opaque(p.PathSecret) }
func (p *PathSecret) UnmarshalMLS(r *wire.Reader) { p.PathSecret = r.Opaque() }

// GroupSecrets is what a Welcome encrypts to each joiner's init key (RFC 9420
// section 12.4.3.1). PathSecret is nil when the commit had no UpdatePath.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   *PathSecret
	PSKs         []PreSharedKeyID
}

func (g *GroupSecrets) MarshalMLS(w *wire.Writer) {
	w.Opaque(g.JoinerSecret)
	w.Bool(g.PathSecret != nil)
	if g.PathSecret != nil {
		g.PathSecret.MarshalMLS(w)
	}
	w.Vector(func(w *wire.Writer) {
		for i := range g.PSKs {
			g.PSKs[i].MarshalMLS(w)
		}
	})
}

func (g *GroupSecrets) UnmarshalMLS(r *wire.Reader) {
	*g = GroupSecrets{JoinerSecret: r.Opaque()}
	if r.Bool() {
		g.PathSecret = new(PathSecret)
		g.PathSecret.UnmarshalMLS(r)
	}
	r.Vector(func(r *wire.Reader) {
		var p PreSharedKeyID
		p.UnmarshalMLS(r)
		g.PSKs = append(g.PSKs, p)
	})
}

// EncryptedGroupSecrets is the GroupSecrets for one joiner, found by the
// KeyPackageRef (RFC 9420 section 5.2) of the KeyPackage it was encrypted to
// (section 12.4.3.1).
type EncryptedGroupSecrets struct {
	NewMember             []byte
	EncryptedGroupSecrets HPKECiphertext
}

func (e *EncryptedGroupSecrets) MarshalMLS(w *wire.Writer) {
	w.Opaque(e.NewMember)
	e.EncryptedGroupSecrets.MarshalMLS(w)
}

func (e *EncryptedGroupSecrets) UnmarshalMLS(r *wire.Reader) {
	e.NewMember = r.Opaque()
	e.EncryptedGroupSecrets.UnmarshalMLS(r)
}

// Welcome brings new members into a group (RFC 9420 section 12.4.3.1): one
// GroupInfo encrypted under the welcome key, whose secret is HPKE-encrypted
// to each joiner separately.
type Welcome struct {
	CipherSuite        CipherSuiteID
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

func (m *Welcome) MarshalMLS(w *wire.Writer) {
	w.U16(uint16(m.CipherSuite))
	w.Vector(func(w *wire.Writer) {
		for i := range m.Secrets {
			m.Secrets[i].MarshalMLS(w)
		}
	})
	w.Opaque(m.EncryptedGroupInfo)
}

func (m *Welcome) UnmarshalMLS(r *wire.Reader) {
	*m = Welcome{CipherSuite: CipherSuiteID(r.U16())}
	r.Vector(func(r *wire.Reader) {
		var s EncryptedGroupSecrets
		s.UnmarshalMLS(r)
		m.Secrets = append(m.Secrets, s)
	})
	m.EncryptedGroupInfo = r.Opaque()
}
