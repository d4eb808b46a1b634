package mls

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// MaxGroupSize bounds the trees we accept from a Welcome: a hostile tree of
// blanks would otherwise cost memory and hashing in proportion to its size.
// current's tunnels are two-member groups; hubs stay far below this.
const MaxGroupSize = 1 << 16

// GroupConfig is the local policy of a member. It is not part of the
// persisted group state: a restored group is given its config again.
type GroupConfig struct {
	// Credentials validates the credentials of members and joiners. Nil
	// accepts basic credentials only; current pins signature keys itself.
	Credentials CredentialValidator
	// Now is the clock used for KeyPackage and LeafNode lifetimes. Nil
	// means time.Now; the sans-IO session layer passes its own clock.
	Now func() time.Time
	// LeafCapabilities are the capabilities NewGroup gives the creator's
	// leaf; nil means DefaultCapabilities. A group whose context carries a
	// non-default extension needs it listed here (and in every joiner's
	// KeyPackage).
	LeafCapabilities *Capabilities
	// MaxLeafLifetime is the longest KeyPackage lifetime accepted for a
	// member being added: zero means MaxLeafNodeLifetime, negative means no
	// limit.
	MaxLeafLifetime time.Duration
	// HandshakeWireFormat is how proposals and commits are framed:
	// WireFormatPublicMessage (the default) or WireFormatPrivateMessage.
	HandshakeWireFormat WireFormat
	// PaddingBlock pads PrivateMessage plaintexts to a multiple of this
	// many bytes, hiding exact lengths. Zero disables padding.
	PaddingBlock int
	// SecretTree bounds out-of-order tolerance of message keys.
	SecretTree SecretTreeConfig
	// ExternalPSKs resolves external PSK identifiers to their secret.
	ExternalPSKs func(id []byte) ([]byte, bool)
	// ResumptionPSKs is how many past epochs' resumption PSKs are kept
	// (default 16), so commits may inject them.
	ResumptionPSKs int
}

func (c *GroupConfig) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *GroupConfig) credentials() CredentialValidator {
	if c.Credentials != nil {
		return c.Credentials
	}
	return BasicCredentials{}
}

func (c *GroupConfig) handshakeWireFormat() WireFormat {
	if c.HandshakeWireFormat == WireFormatPrivateMessage {
		return WireFormatPrivateMessage
	}
	return WireFormatPublicMessage
}

func (c *GroupConfig) resumptionPSKs() int {
	if c.ResumptionPSKs > 0 {
		return c.ResumptionPSKs
	}
	return 16
}

// Group is one member's view of an MLS group: the public ratchet tree and
// group context, the member's private keys, and the secrets of the current
// epoch. Past epochs' secrets are deleted when the epoch ends (section 9.2),
// except the resumption PSKs, which the application may need later.
//
// A Group is not safe for concurrent use; the session state machine that
// owns it serialises access.
type Group struct {
	cfg     GroupConfig
	suite   *CipherSuite
	sigPriv []byte
	// signer is sigPriv parsed, made on first use (signingKey).
	signer *signingKey

	state epochState

	// proposals received in this epoch, which a commit may reference.
	proposals []cachedProposal
	// resumption PSKs of recent epochs, newest last.
	resumption []resumptionPSK
	// pending is a commit this member created and has not merged yet.
	pending *pendingCommit
	// removed is set once a commit removed this member: the group is dead.
	removed bool
}

// epochState is everything that changes together at an epoch boundary.
type epochState struct {
	ctx     GroupContext
	tree    RatchetTree
	priv    *TreePrivateKey
	secrets *EpochSecrets
	keys    *MessageKeys
	interim []byte
}

type cachedProposal struct {
	ref      []byte
	proposal *Proposal
	sender   Sender
	// checked: an Add whose KeyPackage passed KeyPackage.Check in this
	// group's suite (AddCheckedMemberWithoutPath); never set for a
	// proposal that came from the wire.
	checked bool
}

type resumptionPSK struct {
	epoch uint64
	psk   []byte
}

// Errors of group operations, for callers that react to them.
var (
	ErrGroupRemoved         = errors.New("mls: this member was removed from the group")
	ErrPendingCommit        = errors.New("mls: a commit of ours is pending; merge or discard it first")
	ErrNoPendingCommit      = errors.New("mls: no pending commit")
	ErrPathRequired         = errors.New("mls: the proposals committed require an UpdatePath")
	ErrOwnCommit            = errors.New("mls: received a commit sent by this member")
	ErrInvalidCommit        = errors.New("mls: invalid commit")
	ErrInvalidProposal      = errors.New("mls: invalid proposal")
	ErrUnknownProposal      = errors.New("mls: commit references an unknown proposal")
	ErrNoMatchingKeyPackage = errors.New("mls: Welcome holds no secrets for our KeyPackage")
	ErrUnsupported          = errors.New("mls: unsupported")
)

func (g *Group) installEpoch(next epochState) { g.installEpochKeeping(next, false) }

// installEpochKeeping is installEpoch; keepLeaf keeps our leaf's parsed
// private key whatever its size (compactParsed).
func (g *Group) installEpochKeeping(next epochState, keepLeaf bool) {
	old := g.state
	if old.secrets != nil {
		g.rememberResumptionPSK(old.ctx.Epoch, old.secrets.ResumptionPSK)
		old.secrets.Wipe()
	}
	if old.keys != nil && old.keys.Tree != nil {
		old.keys.Tree.Wipe()
	}
	if old.priv != nil && old.priv != next.priv {
		old.priv.Wipe()
	}
	if next.priv != nil {
		next.priv.compactParsed(keepLeaf)
	}
	g.state = next
	g.proposals = nil
}

func (g *Group) rememberResumptionPSK(epoch uint64, psk []byte) {
	g.resumption = append(g.resumption, resumptionPSK{epoch: epoch, psk: bytes.Clone(psk)})
	if extra := len(g.resumption) - g.cfg.resumptionPSKs(); extra > 0 {
		for _, r := range g.resumption[:extra] {
			zero(r.psk)
		}
		g.resumption = append(g.resumption[:0], g.resumption[extra:]...)
	}
}

// newEpochState assembles the state of an epoch from its context, tree,
// private keys, secrets and interim transcript hash, creating the message
// keys (secret tree) for it.
func (g *Group) newEpochState(ctx GroupContext, tree RatchetTree, priv *TreePrivateKey, secrets *EpochSecrets, interim []byte) (epochState, error) {
	st, err := NewSecretTree(g.suite, secrets.EncryptionSecret, tree.LeafCount(), g.cfg.SecretTree)
	if err != nil {
		return epochState{}, err
	}
	// The secret tree keeps its own copy; ours has no further use.
	zero(secrets.EncryptionSecret)
	ctxCopy := ctx
	keys := &MessageKeys{
		Suite:            g.suite,
		Context:          &ctxCopy,
		MembershipKey:    secrets.MembershipKey,
		SenderDataSecret: secrets.SenderDataSecret,
		Tree:             st,
	}
	es := epochState{ctx: ctxCopy, tree: tree, priv: priv, secrets: secrets, keys: keys, interim: interim}
	keys.IsMember = func(l LeafIndex) bool { return es.tree.Leaf(l) != nil }
	return es, nil
}

// Suite returns the group's cipher suite.
func (g *Group) Suite() *CipherSuite { return g.suite }

// GroupID returns the group identifier.
func (g *Group) GroupID() []byte { return bytes.Clone(g.state.ctx.GroupID) }

// Epoch returns the current epoch number.
func (g *Group) Epoch() uint64 { return g.state.ctx.Epoch }

// Context returns a copy of the current group context.
func (g *Group) Context() GroupContext {
	c := g.state.ctx
	c.GroupID = bytes.Clone(c.GroupID)
	c.TreeHash = bytes.Clone(c.TreeHash)
	c.ConfirmedTranscriptHash = bytes.Clone(c.ConfirmedTranscriptHash)
	return c
}

// OwnLeaf returns this member's leaf index.
func (g *Group) OwnLeaf() LeafIndex { return g.state.priv.Leaf }

// Member returns the leaf node at index i, or nil if the leaf is blank.
func (g *Group) Member(i LeafIndex) *LeafNode { return g.state.tree.Leaf(i) }

// Members returns the indices of all non-blank leaves.
func (g *Group) Members() []LeafIndex {
	var out []LeafIndex
	for i := LeafIndex(0); uint32(i) < g.state.tree.LeafCount(); i++ {
		if g.state.tree.Leaf(i) != nil {
			out = append(out, i)
		}
	}
	return out
}

// Removed reports whether a processed commit removed this member.
func (g *Group) Removed() bool { return g.removed }

// Export is MLS-Exporter(label, context, length) for the current epoch.
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	if g.removed {
		return nil, ErrGroupRemoved
	}
	return g.state.secrets.Export(label, context, length)
}

// EpochAuthenticator returns the current epoch's authenticator, which both
// members compute identically only if they agree on the whole group state.
func (g *Group) EpochAuthenticator() []byte { return bytes.Clone(g.state.secrets.EpochAuthenticator) }

// EpochSecrets exposes the current epoch's secrets to the record layer (as an
// exporter). The group owns them and wipes them when the epoch ends.
func (g *Group) EpochSecrets() *EpochSecrets { return g.state.secrets }

// Close wipes every secret the group holds.
func (g *Group) Close() {
	g.DiscardPendingCommit()
	g.installEpoch(epochState{})
	for _, r := range g.resumption {
		zero(r.psk)
	}
	g.resumption = nil
	zero(g.sigPriv)
	g.signer.wipe()
	g.signer = nil
}

// signingKey returns the member's parsed signature key, parsing it once
// per operation: callers release it (releaseSigningKey) when done. Ed25519
// and ML-DSA keys are dropped then: an Ed25519 key is rebuilt from the seed
// and the cached public key (signaturePubs) for the price of an HMAC, and
// an expanded ML-DSA key is tens of kilobytes, too much to keep for every
// session. ECDSA and Ed448 keys, small and dear to parse, stay for the
// group's life.
func (g *Group) signingKey() (*signingKey, error) {
	if g.signer == nil {
		k, err := g.suite.newSigningKey(g.sigPriv)
		if err != nil {
			return nil, err
		}
		g.signer = k
	}
	return g.signer, nil
}

// releaseSigningKey drops the parsed signature key unless it is one to keep
// between operations (signingKey).
func (g *Group) releaseSigningKey() {
	if g.signer != nil && (g.signer.mldsa != nil || g.signer.ed != nil) {
		g.signer.wipe()
		g.signer = nil
	}
}

func (g *Group) checkUsable() error {
	if g.removed {
		return ErrGroupRemoved
	}
	if g.state.secrets == nil {
		return fmt.Errorf("mls: group is closed")
	}
	return nil
}
