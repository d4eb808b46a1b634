package mls

import (
	"bytes"
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// groupStateMagic starts every persisted group state, so a file of another
// kind is recognised instead of misparsed; groupStateVersion changes with
// every incompatible layout change.
const (
	groupStateMagic   = "current-mls-group"
	groupStateVersion = 1
)

// MarshalBinary serialises the whole group state, secrets included, for
// resumption after a restart. The output is as sensitive as the keys: store
// it with 0600 permissions. A pending commit is not saved (it is discarded
// on restore: the peer either never saw it, or the session protocol resends
// its epoch confirmation), and neither is the GroupConfig.
func (g *Group) MarshalBinary() ([]byte, error) {
	if err := g.checkUsable(); err != nil {
		return nil, err
	}
	st := &g.state
	w := wire.NewWriter(nil)
	w.Opaque([]byte(groupStateMagic))
	w.U16(groupStateVersion)
	w.U16(uint16(g.suite.ID))
	w.Opaque(g.sigPriv)
	st.ctx.MarshalMLS(w)
	st.tree.Truncated().MarshalMLS(w)
	st.priv.MarshalMLS(w)
	for _, secret := range st.secrets.persisted() {
		w.Opaque(*secret)
	}
	st.keys.Tree.marshalState(w)
	w.Opaque(st.interim)
	w.Vector(func(w *wire.Writer) {
		for _, r := range g.resumption {
			w.U64(r.epoch)
			w.Opaque(r.psk)
		}
	})
	w.Vector(func(w *wire.Writer) {
		for _, cp := range g.proposals {
			w.Opaque(cp.ref)
			cp.proposal.MarshalMLS(w)
			cp.sender.MarshalMLS(w)
		}
	})
	return w.Bytes()
}

// persisted lists the epoch secrets a restored group needs. The encryption
// secret is not among them: the secret tree carries what is left of it.
func (e *EpochSecrets) persisted() []*[]byte {
	return []*[]byte{&e.SenderDataSecret, &e.ExporterSecret, &e.ExternalSecret, &e.ConfirmationKey,
		&e.MembershipKey, &e.ResumptionPSK, &e.EpochAuthenticator, &e.InitSecret}
}

// UnmarshalGroup restores a group saved by MarshalBinary, with cfg as its
// local policy. Every field is checked; a corrupted or truncated state is an
// error, never a panic.
func UnmarshalGroup(data []byte, cfg GroupConfig) (*Group, error) {
	r := wire.NewReader(data)
	if magic := r.Opaque(); r.Err() == nil && !bytes.Equal(magic, []byte(groupStateMagic)) {
		return nil, fmt.Errorf("mls: not a saved group state")
	}
	if v := r.U16(); r.Err() == nil && v != groupStateVersion {
		return nil, fmt.Errorf("mls: saved group state has format version %d, want %d", v, groupStateVersion)
	}
	suiteID := CipherSuiteID(r.U16())
	if r.Err() != nil {
		return nil, r.Err()
	}
	s, err := Suite(suiteID)
	if err != nil {
		return nil, err
	}
	g := &Group{cfg: cfg, suite: s}
	g.sigPriv = r.Opaque()
	var ctx GroupContext
	ctx.UnmarshalMLS(r)
	var wireTree RatchetTree
	wireTree.UnmarshalMLS(r)
	priv := new(TreePrivateKey)
	priv.UnmarshalMLS(r)
	secrets := &EpochSecrets{suite: s}
	for _, secret := range secrets.persisted() {
		*secret = r.Opaque()
		if r.Err() == nil && len(*secret) != s.Nh() {
			r.Fail(fmt.Errorf("mls: saved epoch secret of %d bytes", len(*secret)))
		}
	}
	secretTree := unmarshalSecretTree(r, s, cfg.SecretTree)
	interim := r.Opaque()
	r.Vector(func(r *wire.Reader) {
		g.resumption = append(g.resumption, resumptionPSK{epoch: r.U64(), psk: r.Opaque()})
	})
	r.Vector(func(r *wire.Reader) {
		cp := cachedProposal{ref: r.Opaque(), proposal: new(Proposal)}
		cp.proposal.UnmarshalMLS(r)
		cp.sender.UnmarshalMLS(r)
		g.proposals = append(g.proposals, cp)
	})
	fail := func(err error) (*Group, error) {
		secrets.Wipe()
		priv.Wipe()
		if secretTree != nil {
			secretTree.Wipe()
		}
		zero(g.sigPriv)
		return nil, err
	}
	if err := r.Finish(); err != nil {
		return fail(fmt.Errorf("mls: corrupt saved group state: %w", err))
	}
	if ctx.CipherSuite != s.ID {
		return fail(fmt.Errorf("mls: saved group context is for another suite"))
	}
	tree, err := NewRatchetTreeFromWire(wireTree)
	if err != nil {
		return fail(err)
	}
	if treeHash, err := tree.TreeHash(s); err != nil || !bytes.Equal(treeHash, ctx.TreeHash) {
		return fail(fmt.Errorf("mls: saved tree does not match the saved group context"))
	}
	if tree.Leaf(priv.Leaf) == nil {
		return fail(fmt.Errorf("mls: saved own leaf %d is blank", priv.Leaf))
	}
	// The keys themselves are checked against the tree when first used
	// (placedIn says why).
	if err := priv.placedIn(tree, nil); err != nil {
		return fail(err)
	}
	signer, err := s.newSigningKey(g.sigPriv)
	if err != nil || !bytes.Equal(signer.pub, tree.Leaf(priv.Leaf).SignatureKey) {
		signer.wipe()
		return fail(fmt.Errorf("mls: saved signature key does not match our leaf"))
	}
	g.signer = signer
	g.releaseSigningKey()
	if secretTree.leafCount != tree.LeafCount() {
		return fail(fmt.Errorf("mls: saved secret tree has %d leaves, ratchet tree %d", secretTree.leafCount, tree.LeafCount()))
	}
	ctxCopy := ctx
	keys := &MessageKeys{Suite: s, Context: &ctxCopy, MembershipKey: secrets.MembershipKey, SenderDataSecret: secrets.SenderDataSecret, Tree: secretTree}
	g.state = epochState{ctx: ctxCopy, tree: tree, priv: priv, secrets: secrets, keys: keys, interim: interim}
	keys.IsMember = func(l LeafIndex) bool { return g.state.tree.Leaf(l) != nil }
	return g, nil
}
