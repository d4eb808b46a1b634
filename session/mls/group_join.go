package mls

import (
	"bytes"
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// KeyPackageSecrets are the private keys behind a KeyPackage, kept by its
// owner until a Welcome consumes it.
type KeyPackageSecrets struct {
	InitPriv       []byte
	EncryptionPriv []byte
	SignaturePriv  []byte
}

// Wipe zeroes the private keys.
func (k *KeyPackageSecrets) Wipe() { zeroAll(k.InitPriv, k.EncryptionPriv, k.SignaturePriv) }

// JoinFromWelcome joins a group from a Welcome addressed to kp (RFC 9420
// section 12.4.3.1), with every check the RFC makes mandatory. tree is the
// group's ratchet tree when the Welcome does not carry it (nil otherwise).
func JoinFromWelcome(msg *MLSMessage, kp *KeyPackage, keys *KeyPackageSecrets, tree RatchetTree, cfg GroupConfig) (*Group, error) {
	if msg == nil || msg.WireFormat != WireFormatWelcome || msg.Welcome == nil {
		return nil, fmt.Errorf("mls: not a Welcome message")
	}
	w := msg.Welcome
	if w.CipherSuite != kp.CipherSuite {
		return nil, fmt.Errorf("mls: Welcome for suite %#04x, KeyPackage of %#04x", uint16(w.CipherSuite), uint16(kp.CipherSuite))
	}
	s, err := Suite(w.CipherSuite)
	if err != nil {
		return nil, err
	}
	ref, err := kp.Ref(s)
	if err != nil {
		return nil, err
	}
	egs, ok := w.FindSecrets(ref)
	if !ok {
		return nil, ErrNoMatchingKeyPackage
	}
	gs, err := DecryptGroupSecrets(s, keys.InitPriv, &egs.EncryptedGroupSecrets, w.EncryptedGroupInfo)
	if err != nil {
		return nil, err
	}
	defer zero(gs.JoinerSecret)
	if gs.PathSecret != nil {
		defer zero(gs.PathSecret.PathSecret)
	}
	if len(gs.JoinerSecret) != s.Nh() {
		return nil, fmt.Errorf("mls: joiner secret of %d bytes", len(gs.JoinerSecret))
	}

	g := &Group{cfg: cfg, suite: s, sigPriv: bytes.Clone(keys.SignaturePriv)}
	for _, id := range gs.PSKs {
		if id.Type == PSKResumption {
			return nil, fmt.Errorf("%w: joining with a resumption PSK", ErrUnsupported)
		}
	}
	pskSecret, err := g.resolvePSKs(gs.PSKs)
	if err != nil {
		return nil, err
	}
	defer zero(pskSecret)
	welcomeSecret, err := s.WelcomeSecret(gs.JoinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	gi, err := DecryptGroupInfo(s, welcomeSecret, w.EncryptedGroupInfo)
	zero(welcomeSecret)
	if err != nil {
		return nil, err
	}
	ctx := gi.GroupContext
	if ctx.CipherSuite != s.ID || ctx.Version != ProtocolMLS10 {
		return nil, fmt.Errorf("mls: GroupInfo for suite %#04x version %d", uint16(ctx.CipherSuite), ctx.Version)
	}
	if err := gi.Extensions.CheckUnique(); err != nil {
		return nil, err
	}
	if err := ctx.Extensions.CheckUnique(); err != nil {
		return nil, err
	}

	if data, ok := gi.Extensions.Find(ExtRatchetTree); ok {
		var wireTree RatchetTree
		if err := wire.Unmarshal(data, &wireTree); err != nil {
			return nil, fmt.Errorf("mls: malformed ratchet_tree extension: %w", err)
		}
		tree = wireTree
	}
	if tree == nil {
		return nil, fmt.Errorf("mls: Welcome carries no ratchet tree and none was given")
	}
	if len(tree) > 2*MaxGroupSize {
		return nil, fmt.Errorf("mls: ratchet tree of %d nodes exceeds %d members", len(tree), MaxGroupSize)
	}
	if tree, err = NewRatchetTreeFromWire(tree); err != nil {
		return nil, err
	}
	signer := tree.Leaf(gi.Signer)
	if signer == nil {
		return nil, fmt.Errorf("mls: GroupInfo signer %d is not a member", gi.Signer)
	}
	if err := gi.VerifySignature(s, signer.SignatureKey); err != nil {
		return nil, err
	}
	treeHash, err := tree.TreeHash(s)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(treeHash, ctx.TreeHash) {
		return nil, fmt.Errorf("mls: ratchet tree does not match the GroupInfo's tree hash")
	}
	err = tree.ValidateForJoin(s, ctx.GroupID, func(i LeafIndex, l *LeafNode) error {
		// Other members' leaves from KeyPackages may have outlived their
		// lifetime by now; the RFC checks lifetime when a leaf enters.
		return g.validateExistingLeaf(l, i, &ctx, tree)
	})
	if err != nil {
		return nil, err
	}
	if err := checkMembersCompatible(tree, &ctx); err != nil {
		return nil, fmt.Errorf("mls: %v", err)
	}

	kpLeaf, err := wire.Marshal(&kp.LeafNode)
	if err != nil {
		return nil, err
	}
	me, found := tree.FindLeaf(func(l *LeafNode) bool {
		enc, err := wire.Marshal(l)
		return err == nil && bytes.Equal(enc, kpLeaf)
	})
	if !found {
		return nil, fmt.Errorf("mls: our KeyPackage's leaf is not in the tree")
	}
	var priv *TreePrivateKey
	if gs.PathSecret != nil {
		width := tree.LeafCount()
		myNode, _ := leafNode(me, width)
		signerNode, _ := leafNode(gi.Signer, width)
		ancestor, ok := commonAncestor(myNode, signerNode, width)
		if !ok || me == gi.Signer {
			return nil, fmt.Errorf("mls: no common ancestor for the Welcome's path secret")
		}
		priv, err = NewTreePrivateKeyFromPathSecret(s, tree, me, keys.EncryptionPriv, ancestor, gs.PathSecret.PathSecret)
		if err != nil {
			return nil, err
		}
	} else {
		priv = &TreePrivateKey{Leaf: me, EncryptionPriv: bytes.Clone(keys.EncryptionPriv), PathPrivs: map[NodeIndex][]byte{}}
	}
	if err := priv.ConsistentWith(s, tree); err != nil {
		priv.Wipe()
		return nil, err
	}

	secrets, err := s.NewEpochSecrets(gs.JoinerSecret, pskSecret, &ctx)
	if err != nil {
		priv.Wipe()
		return nil, err
	}
	if err := s.VerifyConfirmationTag(secrets.ConfirmationKey, ctx.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		secrets.Wipe()
		priv.Wipe()
		return nil, err
	}
	interim, err := s.InterimTranscriptHash(ctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		secrets.Wipe()
		priv.Wipe()
		return nil, err
	}
	st, err := g.newEpochState(ctx, tree, priv, secrets, interim)
	if err != nil {
		secrets.Wipe()
		priv.Wipe()
		return nil, err
	}
	g.state = st
	return g, nil
}

// validateExistingLeaf checks a leaf found in a tree we join: the leaf-node
// rules of section 7.3 for its own source, without the lifetime (it was
// checked when the leaf entered the group).
func (g *Group) validateExistingLeaf(l *LeafNode, i LeafIndex, ctx *GroupContext, tree RatchetTree) error {
	check, err := g.leafCheck(l.LeafNodeSource, i, ctx, tree)
	if err != nil {
		return err
	}
	return l.Validate(check)
}
