package mls

import (
	"bytes"
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// pendingCommit is a commit this member created: the next epoch's state,
// installed by MergePendingCommit once the peer has accepted the commit.
type pendingCommit struct {
	next epochState
	// epoch of the group the commit was created in, to detect staleness.
	fromEpoch uint64
}

// CommitResult is what creating a commit produces.
type CommitResult struct {
	// Commit is the framed commit to send to the other members.
	Commit *MLSMessage
	// Welcome is for the members the commit adds; nil if it adds none.
	Welcome *MLSMessage
}

// AddMember validates kp, and creates a commit adding its owner together
// with a fresh UpdatePath, and the Welcome for the new member.
func (g *Group) AddMember(kp *KeyPackage) (*CommitResult, error) {
	return g.Commit([]Proposal{{ProposalType: ProposalAdd, Add: &Add{KeyPackage: *kp}}})
}

// AddMemberWithoutPath is AddMember without an UpdatePath
// (CommitWithoutPath).
func (g *Group) AddMemberWithoutPath(kp *KeyPackage) (*CommitResult, error) {
	return g.CommitWithoutPath([]Proposal{{ProposalType: ProposalAdd, Add: &Add{KeyPackage: *kp}}})
}

// RemoveMember creates a commit removing the member at leaf.
func (g *Group) RemoveMember(leaf LeafIndex) (*CommitResult, error) {
	return g.Commit([]Proposal{{ProposalType: ProposalRemove, Remove: &Remove{Removed: leaf}}})
}

// SelfUpdate creates a commit with no proposals and a fresh UpdatePath: new
// keys on this member's whole direct path, for forward secrecy and
// post-compromise security.
func (g *Group) SelfUpdate() (*CommitResult, error) {
	return g.Commit(nil)
}

// Commit creates a commit covering the given proposals (by value) and every
// proposal received in this epoch (by reference), always with an
// UpdatePath. The group stays in its epoch until MergePendingCommit.
func (g *Group) Commit(byValue []Proposal) (*CommitResult, error) {
	return g.commit(byValue, true)
}

// CommitWithoutPath is Commit without an UpdatePath, which RFC 9420
// (section 12.4) allows only when every proposal covered is an Add, a
// PreSharedKey or a ReInit; otherwise it fails with ErrPathRequired and
// the group is unchanged. The new epoch's commit secret is then zero: its
// secrecy rests on the old epoch's init secret and, for the members added,
// on the Welcome. That costs the committer no key derivation and no leaf
// signature, which matters where the group was created a moment ago with
// fresh keys (the two-party handshake, docs/protocol.md 7.7), and it gives
// no forward secrecy or post-compromise security of its own.
func (g *Group) CommitWithoutPath(byValue []Proposal) (*CommitResult, error) {
	return g.commit(byValue, false)
}

func (g *Group) commit(byValue []Proposal, withPath bool) (res *CommitResult, err error) {
	return g.commitProposals(byValue, commitOptions{withPath: withPath})
}

// commitOptions are the variants of commit creation.
type commitOptions struct {
	withPath bool
	// checked: the Adds among the proposals carry KeyPackages that passed
	// KeyPackage.Check (AddCheckedMemberWithoutPath).
	checked bool
	// welcomeOnly: the commit is not framed (CommitResult.Commit is nil),
	// for a commit nobody receives (AddOnlyMemberWelcome).
	welcomeOnly bool
}

// commitProposals is commit with the options o.
func (g *Group) commitProposals(byValue []Proposal, o commitOptions) (res *CommitResult, err error) {
	if err := g.checkUsable(); err != nil {
		return nil, err
	}
	if g.pending != nil {
		return nil, ErrPendingCommit
	}
	defer g.releaseSigningKey()
	s := g.suite
	old := &g.state
	me := old.priv.Leaf

	var props []cachedProposal
	var refs []ProposalOrRef
	for _, cp := range g.proposals {
		props = append(props, cp)
		refs = append(refs, ProposalOrRef{Type: ProposalOrRefReference, Reference: bytes.Clone(cp.ref)})
	}
	for i := range byValue {
		p := byValue[i]
		props = append(props, cachedProposal{proposal: &p, sender: Sender{SenderType: SenderTypeMember, LeafIndex: me}, checked: o.checked})
		refs = append(refs, ProposalOrRef{Type: ProposalOrRefProposal, Proposal: &p})
	}
	set, err := g.applyProposals(props, me)
	if err != nil {
		return nil, err
	}
	if set.removedSelf {
		return nil, invalidProposal("commit removes the committer")
	}
	pskSecret, err := g.resolvePSKs(set.psks)
	if err != nil {
		return nil, err
	}
	defer zero(pskSecret)

	if !o.withPath && set.pathRequired {
		return nil, ErrPathRequired
	}
	signer, err := g.signingKey()
	if err != nil {
		return nil, err
	}
	tree := set.tree
	// The UpdatePath: fresh keys along our direct path, encrypted to
	// everyone but the members this commit adds (they get the Welcome).
	var path *PendingPath
	if o.withPath {
		template := *tree.Leaf(me)
		if path, err = tree.prepareUpdatePath(s, me, &template, signer, old.ctx.GroupID); err != nil {
			return nil, err
		}
		defer path.Wipe()
	}
	treeHash, err := tree.TreeHash(s)
	if err != nil {
		return nil, err
	}
	provisional := set.ctx
	provisional.Epoch = old.ctx.Epoch + 1
	provisional.TreeHash = treeHash
	provisional.ConfirmedTranscriptHash = old.ctx.ConfirmedTranscriptHash
	provBytes, err := wire.Marshal(&provisional)
	if err != nil {
		return nil, err
	}
	var updatePath *UpdatePath
	if path != nil {
		if updatePath, err = path.Encrypt(s, tree, provBytes, set.addedLeaves()); err != nil {
			return nil, err
		}
	}

	// Frame and sign the commit under the old epoch, then derive the new
	// epoch from its transcript.
	wf := g.cfg.handshakeWireFormat()
	content := &FramedContent{
		GroupID:     old.ctx.GroupID,
		Epoch:       old.ctx.Epoch,
		Sender:      Sender{SenderType: SenderTypeMember, LeafIndex: me},
		ContentType: ContentTypeCommit,
		Commit:      &Commit{Proposals: refs, Path: updatePath},
	}
	ac, err := signer.signContent(wf, content, &old.ctx)
	if err != nil {
		return nil, err
	}
	// Without a path our private keys stay those of the old epoch; the
	// new epoch gets its own copy, as the old one is wiped on merge.
	var priv *TreePrivateKey
	var commitSecret []byte
	if path != nil {
		priv, commitSecret = path.PrivateKey(), path.CommitSecret()
		defer zero(commitSecret)
	} else {
		priv = old.priv.Clone()
	}
	next, joiner, err := g.deriveNextEpoch(ac, provisional, tree, priv, commitSecret, pskSecret, len(set.added) > 0)
	if err != nil {
		priv.Wipe()
		return nil, err
	}
	defer zeroAll(joiner, next.welcomeSecret)
	ac.Auth.ConfirmationTag = next.confirmationTag

	res = &CommitResult{}
	if !o.welcomeOnly {
		msg := &MLSMessage{Version: ProtocolMLS10, WireFormat: wf}
		if wf == WireFormatPublicMessage {
			msg.PublicMessage, err = old.keys.ProtectPublic(ac)
		} else {
			msg.PrivateMessage, err = old.keys.ProtectPrivate(ac, g.padding(ac))
		}
		if err != nil {
			next.state.wipe()
			return nil, err
		}
		res.Commit = msg
	}
	if len(set.added) > 0 {
		res.Welcome, err = g.createWelcome(next.state, next.confirmationTag, joiner, next.welcomeSecret, set, path)
		if err != nil {
			next.state.wipe()
			return nil, err
		}
	}
	g.pending = &pendingCommit{next: next.state, fromEpoch: old.ctx.Epoch}
	return res, nil
}

// padding chooses how many zero bytes to append to a PrivateMessage so its
// plaintext length is a multiple of the configured block.
func (g *Group) padding(ac *AuthenticatedContent) int {
	block := g.cfg.PaddingBlock
	if block <= 1 {
		return 0
	}
	w := wire.NewWriter(nil)
	(&PrivateMessageContent{ContentType: ac.Content.ContentType, ApplicationData: ac.Content.ApplicationData,
		Proposal: ac.Content.Proposal, Commit: ac.Content.Commit, Auth: ac.Auth}).MarshalMLS(w)
	b, _ := w.Bytes()
	return (block - len(b)%block) % block
}

// nextEpoch is the outcome of deriving an epoch from a commit.
type nextEpoch struct {
	state           epochState
	confirmationTag []byte
	// welcomeSecret, if asked for, is the caller's to zero.
	welcomeSecret []byte
}

// deriveNextEpoch runs the part of commit creation and processing that both
// sides share: the transcript hashes, the key schedule and the confirmation
// tag (section 12.4.2). provisional is the new context with the old
// confirmed transcript hash. With welcome (a committer adding members) the
// welcome secret is derived too.
func (g *Group) deriveNextEpoch(ac *AuthenticatedContent, provisional GroupContext, tree RatchetTree, priv *TreePrivateKey, commitSecret, pskSecret []byte, welcome bool) (*nextEpoch, []byte, error) {
	s := g.suite
	old := &g.state
	confirmed, err := s.ConfirmedTranscriptHash(old.interim, ac)
	if err != nil {
		return nil, nil, err
	}
	ctx := provisional
	ctx.ConfirmedTranscriptHash = confirmed
	secrets, joiner, welcomeSecret, err := s.nextEpochSecrets(old.secrets.InitSecret, commitSecret, pskSecret, &ctx, welcome)
	if err != nil {
		return nil, nil, err
	}
	tag := s.ConfirmationTag(secrets.ConfirmationKey, confirmed)
	interim, err := s.InterimTranscriptHash(confirmed, tag)
	if err != nil {
		secrets.Wipe()
		zeroAll(joiner, welcomeSecret)
		return nil, nil, err
	}
	st, err := g.newEpochState(ctx, tree, priv, secrets, interim)
	if err != nil {
		secrets.Wipe()
		zeroAll(joiner, welcomeSecret)
		return nil, nil, err
	}
	return &nextEpoch{state: st, confirmationTag: tag, welcomeSecret: welcomeSecret}, joiner, nil
}

func (e *epochState) wipe() {
	if e.secrets != nil {
		e.secrets.Wipe()
	}
	if e.keys != nil && e.keys.Tree != nil {
		e.keys.Tree.Wipe()
	}
	if e.priv != nil {
		e.priv.Wipe()
	}
}

// createWelcome builds the Welcome for the members a commit adds: the new
// epoch's GroupInfo (with the ratchet tree) encrypted under the welcome
// secret, and for each new member the joiner secret and (if the commit has
// a path) the path secret of the lowest node our path shares with its
// leaf, encrypted to its init key. welcomeSecret is the epoch's, from
// deriveNextEpoch.
func (g *Group) createWelcome(next epochState, tag, joiner, welcomeSecret []byte, set *proposalSet, path *PendingPath) (*MLSMessage, error) {
	s := g.suite
	treeBytes, err := wire.Marshal(next.tree.Truncated())
	if err != nil {
		return nil, err
	}
	gi := &GroupInfo{
		GroupContext:    next.ctx,
		Extensions:      Extensions{{Type: ExtRatchetTree, Data: treeBytes}},
		ConfirmationTag: tag,
		Signer:          next.priv.Leaf,
	}
	signer, err := g.signingKey()
	if err != nil {
		return nil, err
	}
	if err := gi.signWith(signer); err != nil {
		return nil, err
	}
	encGI, err := EncryptGroupInfo(s, welcomeSecret, gi)
	if err != nil {
		return nil, err
	}
	w := &Welcome{CipherSuite: s.ID, EncryptedGroupInfo: encGI}
	width := next.tree.LeafCount()
	me, _ := leafNode(next.priv.Leaf, width)
	for _, a := range set.added {
		gs := &GroupSecrets{JoinerSecret: joiner, PSKs: set.psks}
		them, _ := leafNode(a.leaf, width)
		if ancestor, ok := commonAncestor(me, them, width); ok && path != nil {
			if ps := path.PathSecretFor(ancestor); ps != nil {
				gs.PathSecret = &PathSecret{PathSecret: ps}
			}
		}
		ct, err := EncryptGroupSecrets(s, a.kp.InitKey, gs, encGI)
		if err != nil {
			return nil, err
		}
		ref, err := a.kp.Ref(s)
		if err != nil {
			return nil, err
		}
		w.Secrets = append(w.Secrets, EncryptedGroupSecrets{NewMember: ref, EncryptedGroupSecrets: ct})
	}
	return &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatWelcome, Welcome: w}, nil
}

// MergePendingCommit moves the group into the epoch its pending commit
// creates, once the other members have accepted the commit.
func (g *Group) MergePendingCommit() error { return g.mergePending(false) }

func (g *Group) mergePending(keepLeaf bool) error {
	if g.pending == nil {
		return ErrNoPendingCommit
	}
	if g.pending.fromEpoch != g.state.ctx.Epoch {
		g.DiscardPendingCommit()
		return fmt.Errorf("mls: pending commit is stale")
	}
	next := g.pending.next
	g.pending = nil
	g.installEpochKeeping(next, keepLeaf)
	return nil
}

// MergeAndProcess merges our pending commit and processes msg, the other
// member's commit in the epoch ours creates, as a resumption's initiator
// does with the response. Our new leaf's private key, which msg's path
// secret is encrypted to, stays parsed from our commit's creation until
// msg is processed: parsing an X-Wing or ML-KEM key again is a key
// generation. Whatever msg does, the parsed key is then dropped as after
// MergePendingCommit. A merge that fails leaves msg unprocessed.
func (g *Group) MergeAndProcess(msg *MLSMessage) (*Received, error) {
	if err := g.mergePending(true); err != nil {
		return nil, err
	}
	rec, err := g.Process(msg)
	if priv := g.state.priv; priv != nil {
		// Process installed a new epoch (compacting), or failed.
		priv.compactParsed(false)
	}
	return rec, err
}

// DiscardPendingCommit drops a pending commit (for example because the peer
// committed first) and wipes the secrets it prepared.
func (g *Group) DiscardPendingCommit() {
	if g.pending != nil {
		g.pending.next.wipe()
		g.pending = nil
	}
}

// HasPendingCommit reports whether a created commit awaits merging.
func (g *Group) HasPendingCommit() bool { return g.pending != nil }
