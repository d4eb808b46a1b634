package mls

import "github.com/current-vpn/current/session/mls/wire"

// Commit moves the group to a new epoch by applying Proposals (RFC 9420
// section 12.4). Path is nil when the commit carries no UpdatePath, which is
// allowed only when no covered proposal requires one.
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

func (c *Commit) MarshalMLS(w *wire.Writer) {
	w.Vector(func(w *wire.Writer) {
		for i := range c.Proposals {
			c.Proposals[i].MarshalMLS(w)
		}
	})
	w.Bool(c.Path != nil)
	if c.Path != nil {
		c.Path.MarshalMLS(w)
	}
}

func (c *Commit) UnmarshalMLS(r *wire.Reader) {
	*c = Commit{}
	r.Vector(func(r *wire.Reader) {
		var p ProposalOrRef
		p.UnmarshalMLS(r)
		c.Proposals = append(c.Proposals, p)
	})
	if r.Bool() {
		c.Path = new(UpdatePath)
		c.Path.UnmarshalMLS(r)
	}
}
