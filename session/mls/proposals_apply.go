package mls

import (
	"bytes"
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// proposalSet is the outcome of validating and applying a commit's proposal
// list (RFC 9420 sections 12.2 and 12.3) to a copy of the group state.
type proposalSet struct {
	ctx          GroupContext // extensions replaced by a GroupContextExtensions proposal
	tree         RatchetTree  // the provisional tree
	added        []addedMember
	psks         []PreSharedKeyID
	removedSelf  bool
	reinit       *ReInit
	pathRequired bool
}

// addedLeaves lists the leaves the proposals add: they receive the Welcome,
// so the UpdatePath is not encrypted to them.
func (set *proposalSet) addedLeaves() []LeafIndex {
	leaves := make([]LeafIndex, len(set.added))
	for i, a := range set.added {
		leaves[i] = a.leaf
	}
	return leaves
}

type addedMember struct {
	leaf LeafIndex
	kp   *KeyPackage
}

func invalidProposal(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidProposal, fmt.Sprintf(format, args...))
}

// applyProposals checks the proposal list of a regular (member) commit from
// committer and applies it, in the order section 12.3 prescribes, to copies
// of the tree and context. The group itself is not modified.
func (g *Group) applyProposals(props []cachedProposal, committer LeafIndex) (*proposalSet, error) {
	s := g.suite
	old := &g.state
	set := &proposalSet{ctx: old.ctx, pathRequired: len(props) == 0}

	var gce *GroupContextExtensions
	var updates, removes, adds []cachedProposal
	touched := map[LeafIndex]bool{}
	pskIDs := map[string]bool{}
	for _, cp := range props {
		p := cp.proposal
		if cp.sender.SenderType != SenderTypeMember {
			return nil, invalidProposal("proposal from a non-member sender type %d", cp.sender.SenderType)
		}
		switch p.ProposalType {
		case ProposalAdd:
			if p.Add == nil {
				return nil, invalidProposal("empty Add")
			}
			adds = append(adds, cp)
		case ProposalUpdate:
			if p.Update == nil {
				return nil, invalidProposal("empty Update")
			}
			if cp.sender.LeafIndex == committer {
				return nil, invalidProposal("commit includes an Update from the committer")
			}
			if touched[cp.sender.LeafIndex] {
				return nil, invalidProposal("several Update/Remove proposals for leaf %d", cp.sender.LeafIndex)
			}
			touched[cp.sender.LeafIndex] = true
			updates = append(updates, cp)
			set.pathRequired = true
		case ProposalRemove:
			if p.Remove == nil {
				return nil, invalidProposal("empty Remove")
			}
			r := p.Remove.Removed
			if r == committer {
				return nil, invalidProposal("commit removes the committer")
			}
			if old.tree.Leaf(r) == nil {
				return nil, invalidProposal("Remove of blank or absent leaf %d", r)
			}
			if touched[r] {
				return nil, invalidProposal("several Update/Remove proposals for leaf %d", r)
			}
			touched[r] = true
			removes = append(removes, cp)
			set.pathRequired = true
		case ProposalPSK:
			if p.PreSharedKey == nil {
				return nil, invalidProposal("empty PreSharedKey")
			}
			id := p.PreSharedKey.PSK
			if len(id.Nonce) != s.Nh() {
				return nil, invalidProposal("PSK nonce of %d bytes, want %d", len(id.Nonce), s.Nh())
			}
			if id.Type == PSKResumption && id.Usage != ResumptionApplication {
				return nil, invalidProposal("resumption PSK with usage %d outside reinit/branch", id.Usage)
			}
			enc, err := wire.Marshal(&id)
			if err != nil {
				return nil, err
			}
			if pskIDs[string(enc)] {
				return nil, invalidProposal("PreSharedKeyID used twice")
			}
			pskIDs[string(enc)] = true
			set.psks = append(set.psks, id)
		case ProposalReInit:
			if p.ReInit == nil {
				return nil, invalidProposal("empty ReInit")
			}
			if p.ReInit.Version < old.ctx.Version {
				return nil, invalidProposal("ReInit to an older protocol version")
			}
			set.reinit = p.ReInit
		case ProposalExternalInit:
			return nil, invalidProposal("ExternalInit in a member commit")
		case ProposalGroupContextExtensions:
			if p.GroupContextExtensions == nil {
				return nil, invalidProposal("empty GroupContextExtensions")
			}
			if gce != nil {
				return nil, invalidProposal("several GroupContextExtensions proposals")
			}
			gce = p.GroupContextExtensions
			set.pathRequired = true
		default:
			return nil, invalidProposal("unsupported proposal type %#04x", uint16(p.ProposalType))
		}
	}
	if set.reinit != nil && len(props) != 1 {
		return nil, invalidProposal("ReInit together with other proposals")
	}

	tree := old.tree.Clone()
	if gce != nil {
		if err := gce.Extensions.CheckUnique(); err != nil {
			return nil, invalidProposal("%v", err)
		}
		set.ctx.Extensions = gce.Extensions
	}
	for _, cp := range updates {
		leaf := &cp.proposal.Update.LeafNode
		current := tree.Leaf(cp.sender.LeafIndex)
		if current == nil {
			return nil, invalidProposal("Update from blank leaf %d", cp.sender.LeafIndex)
		}
		if err := g.validateLeaf(leaf, LeafNodeSourceUpdate, cp.sender.LeafIndex, &set.ctx, tree); err != nil {
			return nil, invalidProposal("Update from leaf %d: %v", cp.sender.LeafIndex, err)
		}
		if bytes.Equal(leaf.EncryptionKey, current.EncryptionKey) {
			return nil, invalidProposal("Update from leaf %d keeps its encryption key", cp.sender.LeafIndex)
		}
		if err := tree.UpdateLeaf(cp.sender.LeafIndex, leaf); err != nil {
			return nil, invalidProposal("%v", err)
		}
	}
	for _, cp := range removes {
		r := cp.proposal.Remove.Removed
		if r == old.priv.Leaf {
			set.removedSelf = true
		}
		if err := tree.RemoveLeaf(r); err != nil {
			return nil, invalidProposal("%v", err)
		}
	}
	newSigKeys := map[string]bool{}
	for _, cp := range adds {
		kp := cp.proposal.Add.KeyPackage
		if kp.CipherSuite != s.ID {
			return nil, invalidProposal("Add of a KeyPackage for suite %#04x", uint16(kp.CipherSuite))
		}
		check, err := g.leafCheck(LeafNodeSourceKeyPackage, 0, &set.ctx, tree)
		if err != nil {
			return nil, err
		}
		check.Now, check.MaxLifetime = g.cfg.now(), g.cfg.MaxLeafLifetime
		if err := kp.validateWith(check, cp.checked); err != nil {
			return nil, invalidProposal("Add: %v", err)
		}
		sk := string(kp.LeafNode.SignatureKey)
		if newSigKeys[sk] {
			return nil, invalidProposal("two Adds for the same client")
		}
		newSigKeys[sk] = true
		if _, exists := tree.FindLeaf(func(l *LeafNode) bool { return bytes.Equal(l.SignatureKey, kp.LeafNode.SignatureKey) }); exists {
			return nil, invalidProposal("Add of a client already in the group")
		}
		if len(set.added)+len(g.Members()) >= MaxGroupSize {
			return nil, invalidProposal("group would exceed %d members", MaxGroupSize)
		}
		leaf := kp.LeafNode
		idx := tree.AddLeaf(&leaf)
		kpCopy := kp
		set.added = append(set.added, addedMember{leaf: idx, kp: &kpCopy})
	}
	if err := checkMembersCompatible(tree, &set.ctx); err != nil {
		return nil, invalidProposal("%v", err)
	}
	set.tree = tree
	return set, nil
}

// validateLeaf runs the per-leaf checks of section 7.3 for a leaf entering
// tree under group context ctx.
func (g *Group) validateLeaf(leaf *LeafNode, source LeafNodeSource, index LeafIndex, ctx *GroupContext, tree RatchetTree) error {
	check, err := g.leafCheck(source, index, ctx, tree)
	if err != nil {
		return err
	}
	check.Now = g.cfg.now()
	check.MaxLifetime = g.cfg.MaxLeafLifetime
	return leaf.Validate(check)
}

// leafCheck assembles the group-dependent inputs of leaf validation. Now is
// left zero (no lifetime check); callers validating a leaf that enters the
// group set it.
func (g *Group) leafCheck(source LeafNodeSource, index LeafIndex, ctx *GroupContext, tree RatchetTree) (*LeafNodeCheck, error) {
	check := &LeafNodeCheck{
		Suite:                 g.suite,
		GroupID:               ctx.GroupID,
		Leaf:                  index,
		Source:                source,
		GroupExtensions:       ctx.Extensions,
		MemberCredentialTypes: memberCredentialTypes(tree),
		Credentials:           g.cfg.credentials(),
	}
	rc, err := ParseRequiredCapabilities(ctx.Extensions)
	if err != nil {
		return nil, err
	}
	check.Required = rc
	return check, nil
}

func memberCredentialTypes(tree RatchetTree) []CredentialType {
	var types []CredentialType
	for i := LeafIndex(0); uint32(i) < tree.LeafCount(); i++ {
		if l := tree.Leaf(i); l != nil && !containsValue(types, l.Credential.CredentialType) {
			types = append(types, l.Credential.CredentialType)
		}
	}
	return types
}

// checkMembersCompatible enforces that every member supports the group's
// required capabilities, its non-default context extensions, and every
// credential type in use (sections 7.3, 11.1, 12.1.7).
func checkMembersCompatible(tree RatchetTree, ctx *GroupContext) error {
	rc, err := ParseRequiredCapabilities(ctx.Extensions)
	if err != nil {
		return err
	}
	creds := memberCredentialTypes(tree)
	for i := LeafIndex(0); uint32(i) < tree.LeafCount(); i++ {
		l := tree.Leaf(i)
		if l == nil {
			continue
		}
		if rc != nil && !l.Capabilities.Supports(rc) {
			return fmt.Errorf("leaf %d lacks the required capabilities", i)
		}
		for _, e := range ctx.Extensions {
			if !isDefaultExtension(e.Type) && !containsValue(l.Capabilities.Extensions, e.Type) {
				return fmt.Errorf("leaf %d does not support group extension %#04x", i, uint16(e.Type))
			}
		}
		for _, ct := range creds {
			if !containsValue(l.Capabilities.Credentials, ct) {
				return fmt.Errorf("leaf %d does not support credential type %d in use", i, ct)
			}
		}
	}
	return nil
}
