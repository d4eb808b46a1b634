package mls

import (
	"bytes"
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// MessageKind says what a processed message was.
type MessageKind uint8

const (
	KindApplication MessageKind = iota + 1
	KindProposal
	KindCommit
)

// Received is the outcome of Process.
type Received struct {
	Kind   MessageKind
	Sender LeafIndex
	// ApplicationData holds the plaintext of an application message.
	ApplicationData []byte
	// AuthenticatedData is the sender's unencrypted, authenticated data.
	AuthenticatedData []byte
	// For commits: the epoch the group moved into, and whether the commit
	// removed this member (the group is then unusable).
	NewEpoch uint64
	Removed  bool
}

// Process handles a message received from another member: it verifies and
// decrypts it; a proposal is kept for a later commit, a commit moves the
// group to the next epoch, application data is returned. On any error the
// group state is unchanged.
func (g *Group) Process(msg *MLSMessage) (*Received, error) {
	if err := g.checkUsable(); err != nil {
		return nil, err
	}
	if msg == nil || msg.Version != ProtocolMLS10 {
		return nil, fmt.Errorf("mls: not an MLS 1.0 message")
	}
	var ac *AuthenticatedContent
	var err error
	// A PrivateMessage's key is consumed only once the message is
	// accepted, so a rejected message leaves the state unchanged.
	consume := func() error { return nil }
	switch msg.WireFormat {
	case WireFormatPublicMessage:
		if msg.PublicMessage == nil {
			return nil, fmt.Errorf("mls: empty PublicMessage")
		}
		ac, err = g.state.keys.UnprotectPublic(msg.PublicMessage)
	case WireFormatPrivateMessage:
		if msg.PrivateMessage == nil {
			return nil, fmt.Errorf("mls: empty PrivateMessage")
		}
		ac, consume, err = g.state.keys.UnprotectPrivateDeferred(msg.PrivateMessage)
	default:
		return nil, fmt.Errorf("mls: cannot process wire format %d in a group", msg.WireFormat)
	}
	if err != nil {
		return nil, err
	}
	if ac.Content.Sender.SenderType != SenderTypeMember {
		return nil, fmt.Errorf("%w: messages from non-members (sender type %d)", ErrUnsupported, ac.Content.Sender.SenderType)
	}
	sender := ac.Content.Sender.LeafIndex
	leaf := g.state.tree.Leaf(sender)
	if leaf == nil {
		return nil, ErrUnknownSender
	}
	if err := g.suite.VerifyContent(leaf.SignatureKey, ac, &g.state.ctx); err != nil {
		return nil, err
	}

	switch ac.Content.ContentType {
	case ContentTypeApplication:
		if err := consume(); err != nil {
			return nil, err
		}
		return &Received{Kind: KindApplication, Sender: sender, ApplicationData: ac.Content.ApplicationData,
			AuthenticatedData: ac.Content.AuthenticatedData}, nil
	case ContentTypeProposal:
		ref, err := g.suite.ProposalRef(ac)
		if err != nil {
			return nil, err
		}
		if err := consume(); err != nil {
			return nil, err
		}
		g.proposals = append(g.proposals, cachedProposal{ref: ref, proposal: ac.Content.Proposal, sender: ac.Content.Sender})
		return &Received{Kind: KindProposal, Sender: sender, AuthenticatedData: ac.Content.AuthenticatedData}, nil
	case ContentTypeCommit:
		return g.processCommit(ac, consume)
	}
	return nil, fmt.Errorf("mls: invalid content type %d", ac.Content.ContentType)
}

func invalidCommit(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidCommit, fmt.Sprintf(format, args...))
}

// processCommit applies a verified commit from another member (section
// 12.4.2). Everything is computed on copies; the group changes only when
// every check passed.
func (g *Group) processCommit(ac *AuthenticatedContent, consume func() error) (*Received, error) {
	s := g.suite
	old := &g.state
	committer := ac.Content.Sender.LeafIndex
	if committer == old.priv.Leaf {
		return nil, ErrOwnCommit
	}
	commit := ac.Content.Commit
	if commit == nil {
		return nil, invalidCommit("no commit body")
	}
	if len(ac.Auth.ConfirmationTag) != s.Nh() {
		return nil, invalidCommit("confirmation tag of %d bytes", len(ac.Auth.ConfirmationTag))
	}

	props := make([]cachedProposal, 0, len(commit.Proposals))
	for _, por := range commit.Proposals {
		switch por.Type {
		case ProposalOrRefProposal:
			if por.Proposal == nil {
				return nil, invalidCommit("empty proposal")
			}
			props = append(props, cachedProposal{proposal: por.Proposal, sender: ac.Content.Sender})
		case ProposalOrRefReference:
			cp, ok := g.findProposal(por.Reference)
			if !ok {
				return nil, fmt.Errorf("%w %x", ErrUnknownProposal, por.Reference)
			}
			props = append(props, cp)
		default:
			return nil, invalidCommit("bad ProposalOrRef type %d", por.Type)
		}
	}
	set, err := g.applyProposals(props, committer)
	if err != nil {
		return nil, err
	}
	if set.pathRequired && commit.Path == nil {
		return nil, invalidCommit("path required but absent")
	}
	pskSecret, err := g.resolvePSKs(set.psks)
	if err != nil {
		return nil, err
	}
	defer zero(pskSecret)

	provisional := set.ctx
	provisional.Epoch = old.ctx.Epoch + 1
	provisional.ConfirmedTranscriptHash = old.ctx.ConfirmedTranscriptHash
	tree := set.tree
	var priv *TreePrivateKey
	var commitSecret []byte
	if commit.Path != nil {
		// The committer's new leaf must be valid for a commit, with a
		// fresh encryption key.
		if err := g.validateLeaf(&commit.Path.LeafNode, LeafNodeSourceCommit, committer, &set.ctx, tree); err != nil {
			return nil, invalidCommit("committer leaf: %v", err)
		}
		if cur := tree.Leaf(committer); cur != nil && bytes.Equal(cur.EncryptionKey, commit.Path.LeafNode.EncryptionKey) {
			return nil, invalidCommit("committer reuses its encryption key")
		}
		if err := tree.MergeUpdatePath(s, committer, commit.Path, old.ctx.GroupID); err != nil {
			return nil, invalidCommit("%v", err)
		}
		if provisional.TreeHash, err = tree.TreeHash(s); err != nil {
			return nil, err
		}
		provBytes, err := wire.Marshal(&provisional)
		if err != nil {
			return nil, err
		}
		exclude := set.addedLeaves()
		if !set.removedSelf {
			priv, commitSecret, err = DecryptUpdatePath(s, tree, old.priv, committer, commit.Path, provBytes, exclude)
			if err != nil {
				return nil, invalidCommit("%v", err)
			}
			defer zero(commitSecret)
		}
	} else {
		if provisional.TreeHash, err = tree.TreeHash(s); err != nil {
			return nil, err
		}
		// Keys of nodes that Update or Remove proposals blanked go.
		priv = old.priv.Clone()
		priv.Prune(tree)
	}
	if set.removedSelf {
		// We cannot follow the group further; report and stop.
		if err := consume(); err != nil {
			return nil, err
		}
		g.removed = true
		g.DiscardPendingCommit()
		return &Received{Kind: KindCommit, Sender: committer, NewEpoch: provisional.Epoch, Removed: true}, nil
	}

	next, joiner, err := g.deriveNextEpoch(ac, provisional, tree, priv, commitSecret, pskSecret, false)
	if err != nil {
		priv.Wipe()
		return nil, err
	}
	zero(joiner)
	if err := s.VerifyConfirmationTag(next.state.secrets.ConfirmationKey, next.state.ctx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag); err != nil {
		next.state.wipe()
		return nil, err
	}
	if err := consume(); err != nil {
		next.state.wipe()
		return nil, err
	}
	// A commit from the peer supersedes any commit we had pending for the
	// same epoch (the session protocol decides who wins before this).
	g.DiscardPendingCommit()
	g.installEpoch(next.state)
	return &Received{Kind: KindCommit, Sender: committer, NewEpoch: g.state.ctx.Epoch, AuthenticatedData: ac.Content.AuthenticatedData}, nil
}

func (g *Group) findProposal(ref []byte) (cachedProposal, bool) {
	for _, cp := range g.proposals {
		if bytes.Equal(cp.ref, ref) {
			return cp, true
		}
	}
	return cachedProposal{}, false
}
