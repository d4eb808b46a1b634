package mls

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

// tkGroup drives the tree layer the way Commit processing will: every
// member keeps its own copy of the tree and its private state, the
// committer prepares and encrypts a path, and every other member applies the
// same proposals, merges and decrypts. After each step all copies must agree.
type tkGroup struct {
	t       testing.TB
	s       *CipherSuite
	groupID []byte
	epoch   uint64
	tree    RatchetTree
	members map[LeafIndex]*tkMember
	// lightChecks skips the costly per-epoch join validation and key
	// consistency checks, for long runs that check them now and then.
	lightChecks bool
}

type tkMember struct {
	sigPriv []byte
	priv    *TreePrivateKey
}

// tkNewLeaf returns a key_package leaf for a fresh client and its keys.
func tkNewLeaf(t testing.TB, s *CipherSuite, name string) (ln *LeafNode, sigPriv, encPriv []byte) {
	t.Helper()
	sigPriv, sigPub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	encPriv, encPub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ln = &LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  sigPub,
		Credential:    Credential{CredentialType: CredentialBasic, Identity: []byte(name)},
		Capabilities: Capabilities{
			Versions:     []ProtocolVersion{ProtocolMLS10},
			CipherSuites: []CipherSuiteID{s.ID},
			Credentials:  []CredentialType{CredentialBasic},
		},
		LeafNodeSource: LeafNodeSourceKeyPackage,
		Lifetime:       Lifetime{NotBefore: 0, NotAfter: 1 << 62},
	}
	if err := ln.Sign(s, sigPriv, nil, 0); err != nil {
		t.Fatal(err)
	}
	return ln, sigPriv, encPriv
}

// tkNewGroup creates a group whose creator then adds size-1 members in one
// full Commit.
func tkNewGroup(t testing.TB, s *CipherSuite, size int) *tkGroup {
	t.Helper()
	g := &tkGroup{t: t, s: s, groupID: []byte("tree test group"), members: make(map[LeafIndex]*tkMember)}
	ln, sigPriv, encPriv := tkNewLeaf(t, s, "member0")
	if l := g.tree.AddLeaf(ln); l != 0 {
		t.Fatalf("creator at leaf %d", l)
	}
	g.members[0] = &tkMember{sigPriv, &TreePrivateKey{Leaf: 0, EncryptionPriv: encPriv, PathPrivs: map[NodeIndex][]byte{}}}
	if size > 1 {
		g.commit(0, size-1, nil, true)
	}
	return g
}

func (g *tkGroup) groupContext(tree RatchetTree, epoch uint64) []byte {
	g.t.Helper()
	th, err := tree.TreeHash(g.s)
	if err != nil {
		g.t.Fatal(err)
	}
	gc := GroupContext{Version: ProtocolMLS10, CipherSuite: g.s.ID, GroupID: g.groupID, Epoch: epoch, TreeHash: th, ConfirmedTranscriptHash: []byte("cth")}
	b, err := wire.Marshal(&gc)
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

type tkJoiner struct {
	leaf    *LeafNode
	sigPriv []byte
	encPriv []byte
	index   LeafIndex
}

// applyProposals applies removes, then adds, to a copy of the current tree.
func (g *tkGroup) applyProposals(removes []LeafIndex, joiners []*tkJoiner) RatchetTree {
	g.t.Helper()
	tree := g.tree.Clone()
	for _, r := range removes {
		if err := tree.RemoveLeaf(r); err != nil {
			g.t.Fatalf("RemoveLeaf(%d): %v", r, err)
		}
	}
	for _, j := range joiners {
		j.index = tree.AddLeaf(j.leaf)
	}
	return tree
}

// commit has committer remove and add members, with an UpdatePath when
// withPath is set, and checks that everyone ends up in the same state.
func (g *tkGroup) commit(committer LeafIndex, adds int, removes []LeafIndex, withPath bool) {
	t, s := g.t, g.s
	t.Helper()
	joiners := make([]*tkJoiner, adds)
	for i := range joiners {
		ln, sigPriv, encPriv := tkNewLeaf(t, s, fmt.Sprintf("joiner%d-%d", g.epoch, i))
		joiners[i] = &tkJoiner{leaf: ln, sigPriv: sigPriv, encPriv: encPriv}
	}
	provisional := g.applyProposals(removes, joiners)
	var exclude []LeafIndex
	for _, j := range joiners {
		exclude = append(exclude, j.index)
	}

	var path *UpdatePath
	var pending *PendingPath
	commitSecret := make([]byte, s.Nh())
	if withPath {
		var err error
		pending, err = provisional.PrepareUpdatePath(s, committer, provisional.Leaf(committer), g.members[committer].sigPriv, g.groupID)
		if err != nil {
			t.Fatalf("PrepareUpdatePath: %v", err)
		}
		defer pending.Wipe()
		if path, err = pending.Encrypt(s, provisional, g.groupContext(provisional, g.epoch+1), exclude); err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		commitSecret = pending.CommitSecret()
	}
	gc := g.groupContext(provisional, g.epoch+1)
	want, err := wire.Marshal(&provisional)
	if err != nil {
		t.Fatal(err)
	}

	next := make(map[LeafIndex]*tkMember)
	for l, m := range g.members {
		if l == committer || slices.Contains(removes, l) {
			continue
		}
		tree := g.applyProposals(removes, joiners)
		var priv *TreePrivateKey
		if withPath {
			if err := tree.MergeUpdatePath(s, committer, path, g.groupID); err != nil {
				t.Fatalf("leaf %d: MergeUpdatePath: %v", l, err)
			}
			var cs []byte
			if priv, cs, err = DecryptUpdatePath(s, tree, m.priv, committer, path, gc, exclude); err != nil {
				t.Fatalf("leaf %d: DecryptUpdatePath: %v", l, err)
			}
			if !bytes.Equal(cs, commitSecret) {
				t.Fatalf("leaf %d derived another commit secret", l)
			}
		} else {
			priv = m.priv.Clone()
			priv.Prune(tree)
		}
		if got, _ := wire.Marshal(&tree); !bytes.Equal(got, want) {
			t.Fatalf("leaf %d holds another tree than the committer", l)
		}
		next[l] = &tkMember{m.sigPriv, priv}
	}
	cm := g.members[committer]
	if withPath {
		next[committer] = &tkMember{cm.sigPriv, pending.PrivateKey()}
	} else {
		priv := cm.priv.Clone()
		priv.Prune(provisional)
		next[committer] = &tkMember{cm.sigPriv, priv}
	}
	for _, j := range joiners {
		var secret []byte
		var ancestor NodeIndex
		if withPath {
			if secret, ancestor, err = pending.PathSecretForLeaf(j.index); err != nil {
				t.Fatalf("path secret for joiner at %d: %v", j.index, err)
			}
		}
		priv, err := NewTreePrivateKeyFromPathSecret(s, provisional, j.index, j.encPriv, ancestor, secret)
		if err != nil {
			t.Fatalf("joiner at %d: %v", j.index, err)
		}
		next[j.index] = &tkMember{j.sigPriv, priv}
	}
	if !g.lightChecks || g.epoch%250 == 0 {
		for l, m := range next {
			if err := m.priv.ConsistentWith(s, provisional); err != nil {
				t.Fatalf("leaf %d after commit by %d: %v", l, committer, err)
			}
		}
		if err := provisional.ValidateForJoin(s, g.groupID, nil); err != nil {
			t.Fatalf("tree after commit by %d fails join validation: %v", committer, err)
		}
	}
	for _, m := range g.members {
		m.priv.Wipe()
	}
	g.tree, g.members = provisional, next
	g.epoch++
}

func (g *tkGroup) memberList() []LeafIndex {
	var out []LeafIndex
	for l := range g.members {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// TestTreeKEMGroupLifecycle runs full and partial Commits with adds and
// removes through every suite, the post-quantum ones included (the interop
// vectors cover only RFC 9420's suites).
func TestTreeKEMGroupLifecycle(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(s.ID)))
			g := tkNewGroup(t, s, 5)
			for step := range 12 {
				members := g.memberList()
				committer := members[rng.IntN(len(members))]
				var removes []LeafIndex
				if step%3 == 1 && len(members) > 2 {
					for _, l := range members {
						if l != committer && len(removes) < 2 {
							removes = append(removes, l)
						}
					}
				}
				adds := rng.IntN(3)
				// Commits carrying only Adds may omit the path, which leaves
				// the new leaves unmerged on the committer's path too.
				withPath := len(removes) > 0 || adds == 0 || step%2 == 0
				g.commit(committer, adds, removes, withPath)
			}
		})
	}
}

// TestTreeKEMTwoMemberEpochs is the steady state of a VPN session: two
// members alternating full Commits. It must stay cheap per epoch.
func TestTreeKEMTwoMemberEpochs(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := tkNewGroup(t, s, 2)
	g.lightChecks = true
	epochs := 1000
	if testing.Short() {
		epochs = 100
	}
	for i := range epochs {
		g.commit(LeafIndex(i%2), 0, nil, true)
	}
	if g.tree.LeafCount() != 2 || len(g.members[0].priv.PathPrivs) != 1 || len(g.members[1].priv.PathPrivs) != 1 {
		t.Fatalf("state grew: %d leaves, %d and %d path keys", g.tree.LeafCount(), len(g.members[0].priv.PathPrivs), len(g.members[1].priv.PathPrivs))
	}
}

func BenchmarkTreeKEMTwoMemberEpoch(b *testing.B) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := tkNewGroup(b, s, 2)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		committer, receiver := LeafIndex(i%2), LeafIndex(1-i%2)
		tree := g.tree.Clone()
		pending, err := tree.PrepareUpdatePath(s, committer, tree.Leaf(committer), g.members[committer].sigPriv, g.groupID)
		if err != nil {
			b.Fatal(err)
		}
		gc := g.groupContext(tree, uint64(i))
		path, err := pending.Encrypt(s, tree, gc, nil)
		if err != nil {
			b.Fatal(err)
		}
		recv := g.tree.Clone()
		if err := recv.MergeUpdatePath(s, committer, path, g.groupID); err != nil {
			b.Fatal(err)
		}
		priv, _, err := DecryptUpdatePath(s, recv, g.members[receiver].priv, committer, path, gc, nil)
		if err != nil {
			b.Fatal(err)
		}
		g.members[committer].priv = pending.PrivateKey()
		g.members[receiver].priv = priv
		g.tree = tree
		pending.Wipe()
	}
}

// tkPathFixture is a four-member group and a fresh UpdatePath from leaf 1,
// not yet merged by the receivers.
func tkPathFixture(t *testing.T) (*tkGroup, *UpdatePath, []byte) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := tkNewGroup(t, s, 4)
	tree := g.tree.Clone()
	pending, err := tree.PrepareUpdatePath(s, 1, tree.Leaf(1), g.members[1].sigPriv, g.groupID)
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Wipe()
	gc := g.groupContext(tree, g.epoch+1)
	path, err := pending.Encrypt(s, tree, gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g, path, gc
}

// tkClonePath deep-copies an UpdatePath through its encoding.
func tkClonePath(t *testing.T, p *UpdatePath) *UpdatePath {
	t.Helper()
	b, err := wire.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var c UpdatePath
	if err := wire.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestMergeUpdatePathRejects(t *testing.T) {
	g, path, _ := tkPathFixture(t)
	s := g.s
	resign := func(p *UpdatePath) {
		if err := p.LeafNode.Sign(s, g.members[1].sigPriv, g.groupID, 1); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		sender LeafIndex
		tamper func(p *UpdatePath)
		want   string
	}{
		{"path too short", 1, func(p *UpdatePath) { p.Nodes = p.Nodes[:len(p.Nodes)-1] }, "filtered direct path"},
		{"path too long", 1, func(p *UpdatePath) { p.Nodes = append(p.Nodes, p.Nodes[0]) }, "filtered direct path"},
		{"bad parent hash", 1, func(p *UpdatePath) {
			p.LeafNode.ParentHash = bytes.Repeat([]byte{7}, s.Nh())
			resign(p)
		}, "parent_hash"},
		{"node key swapped", 1, func(p *UpdatePath) {
			_, pub, _ := s.GenerateHPKEKeyPair()
			p.Nodes[0].EncryptionKey = pub
		}, "parent_hash"},
		{"bad leaf signature", 1, func(p *UpdatePath) { p.LeafNode.Signature[3] ^= 1 }, "signature"},
		{"signed for another leaf", 1, func(p *UpdatePath) {
			if err := p.LeafNode.Sign(s, g.members[1].sigPriv, g.groupID, 2); err != nil {
				t.Fatal(err)
			}
		}, "signature"},
		{"signed for another group", 1, func(p *UpdatePath) {
			if err := p.LeafNode.Sign(s, g.members[1].sigPriv, []byte("other"), 1); err != nil {
				t.Fatal(err)
			}
		}, "signature"},
		{"wrong sender", 2, func(p *UpdatePath) {}, ""},
		{"sender outside tree", 9, func(p *UpdatePath) {}, "outside"},
		{"reused leaf key", 1, func(p *UpdatePath) {
			p.LeafNode.EncryptionKey = bytes.Clone(g.tree.Leaf(1).EncryptionKey)
			resign(p)
		}, "reuses an encryption key"},
		{"reused other leaf's key", 1, func(p *UpdatePath) { p.Nodes[0].EncryptionKey = bytes.Clone(g.tree.Leaf(3).EncryptionKey) }, "reuses an encryption key"},
		{"reused parent key", 1, func(p *UpdatePath) {
			p.Nodes[len(p.Nodes)-1].EncryptionKey = bytes.Clone(g.tree.Parent(3).EncryptionKey)
		}, "reuses an encryption key"},
		{"key twice in path", 1, func(p *UpdatePath) { p.Nodes[1].EncryptionKey = bytes.Clone(p.Nodes[0].EncryptionKey) }, "reuses an encryption key"},
		{"other member's signature key", 1, func(p *UpdatePath) {
			p.LeafNode.SignatureKey = bytes.Clone(g.tree.Leaf(0).SignatureKey)
		}, "signature key"},
		{"source update", 1, func(p *UpdatePath) {
			p.LeafNode.LeafNodeSource = LeafNodeSourceUpdate
			resign(p)
		}, "leaf_node_source"},
	}
	before, _ := wire.Marshal(&g.tree)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tkClonePath(t, path)
			tc.tamper(p)
			tree := g.tree.Clone()
			err := tree.MergeUpdatePath(s, tc.sender, p, g.groupID)
			if err == nil || !strings.HasPrefix(err.Error(), "mls: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
			if after, _ := wire.Marshal(&tree); !bytes.Equal(after, before) {
				t.Fatal("rejected path changed the tree")
			}
		})
	}
	tree := g.tree.Clone()
	if err := tree.MergeUpdatePath(s, 1, tkClonePath(t, path), g.groupID); err != nil {
		t.Fatalf("untampered path: %v", err)
	}
	if err := tree.MergeUpdatePath(s, 1, nil, g.groupID); err == nil {
		t.Fatal("nil path accepted")
	}
}

func TestDecryptUpdatePathRejects(t *testing.T) {
	g, path, gc := tkPathFixture(t)
	s := g.s
	tree := g.tree.Clone()
	if err := tree.MergeUpdatePath(s, 1, path, g.groupID); err != nil {
		t.Fatal(err)
	}
	priv := g.members[3].priv
	if _, _, err := DecryptUpdatePath(s, tree, priv, 1, path, gc, nil); err != nil {
		t.Fatalf("untampered path: %v", err)
	}
	otherGC := bytes.Clone(gc)
	otherGC[len(otherGC)-2] ^= 1
	flipped := tkClonePath(t, path)
	for i := range flipped.Nodes {
		for _, ct := range flipped.Nodes[i].EncryptedPathSecret {
			ct.Ciphertext[0] ^= 1
		}
	}
	// A path whose ciphertext is sound but whose public key does not come
	// from the path secret: the receiver must notice.
	wrongKey := tkClonePath(t, path)
	_, pub, _ := s.GenerateHPKEKeyPair()
	wrongKey.Nodes[len(wrongKey.Nodes)-1].EncryptionKey = pub
	cases := []struct {
		name    string
		tree    RatchetTree
		priv    *TreePrivateKey
		sender  LeafIndex
		path    *UpdatePath
		gc      []byte
		exclude []LeafIndex
		want    string
	}{
		{"other group context", tree, priv, 1, path, otherGC, nil, "decrypt"},
		{"tampered ciphertext", tree, priv, 1, flipped, gc, nil, "decrypt"},
		{"key not from secret", tree, priv, 1, wrongKey, gc, nil, "public key"},
		{"own path", tree, g.members[1].priv, 1, path, gc, nil, "cannot decrypt"},
		{"excluded receiver", tree, priv, 1, path, gc, []LeafIndex{3}, "ciphertexts"},
		{"short path", tree, priv, 1, &UpdatePath{LeafNode: path.LeafNode}, gc, nil, "filtered direct path"},
		{"sender outside tree", tree, priv, 7, path, gc, nil, "cannot decrypt"},
		{"unpadded tree", tree[:5], priv, 1, path, gc, nil, "full width"},
		{"no key for resolution", tree, &TreePrivateKey{Leaf: 3, PathPrivs: map[NodeIndex][]byte{}}, 1, path, gc, nil, "no private key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keep := tc.priv.Clone()
			_, cs, err := DecryptUpdatePath(s, tc.tree, tc.priv, tc.sender, tc.path, tc.gc, tc.exclude)
			if err == nil || cs != nil || !strings.HasPrefix(err.Error(), "mls: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
			if a, b := tkEncodePriv(t, keep), tkEncodePriv(t, tc.priv); !bytes.Equal(a, b) {
				t.Fatal("failed decryption modified the private state")
			}
		})
	}
}

func tkEncodePriv(t *testing.T, k *TreePrivateKey) []byte {
	t.Helper()
	b, err := wire.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPendingPath(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := tkNewGroup(t, s, 3)
	tree := g.tree.Clone()
	pending, err := tree.PrepareUpdatePath(s, 0, tree.Leaf(0), g.members[0].sigPriv, g.groupID)
	if err != nil {
		t.Fatal(err)
	}
	leaf := tree.Leaf(0)
	if leaf.LeafNodeSource != LeafNodeSourceCommit || bytes.Equal(leaf.EncryptionKey, g.tree.Leaf(0).EncryptionKey) {
		t.Fatal("committer leaf not refreshed")
	}
	if !bytes.Equal(leaf.SignatureKey, g.tree.Leaf(0).SignatureKey) || !bytes.Equal(leaf.Credential.Identity, []byte("member0")) {
		t.Fatal("committer leaf lost its identity")
	}
	if err := leaf.VerifySignature(s, g.groupID, 0); err != nil {
		t.Fatal(err)
	}
	// Leaves 0..2 of four: the root's copath child holds leaf 2, so the
	// filtered direct path is nodes 1 and 3.
	if fdp := tree.FilteredDirectPath(0); !slices.Equal(fdp, []NodeIndex{1, 3}) {
		t.Fatalf("filtered direct path %v", fdp)
	}
	if p := pending.PathSecretFor(5); p != nil {
		t.Fatal("path secret for a node off the path")
	}
	if _, _, err := pending.PathSecretForLeaf(0); err == nil {
		t.Fatal("path secret for the committer itself")
	}
	ps, anc, err := pending.PathSecretForLeaf(2)
	if err != nil || anc != 3 || len(ps) != s.Nh() {
		t.Fatalf("PathSecretForLeaf(2) = %x, %d, %v", ps, anc, err)
	}
	// Encrypting against a tree that does not hold the pending path would
	// send the secrets to the wrong nodes.
	if _, err := pending.Encrypt(s, g.tree, nil, nil); err == nil {
		t.Fatal("Encrypt accepted a tree without the pending path")
	}
	cs := pending.CommitSecret()
	pending.Wipe()
	if !slices.ContainsFunc(cs, func(b byte) bool { return b != 0 }) {
		t.Fatal("Wipe cleared the caller's copy of the commit secret")
	}
	if pending.CommitSecret() != nil || pending.PathSecretFor(1) != nil {
		t.Fatal("Wipe left secrets behind")
	}
	if _, err := pending.Encrypt(s, tree, nil, nil); err == nil {
		t.Fatal("Encrypt after Wipe")
	}
	if _, err := tree.PrepareUpdatePath(s, 9, tree.Leaf(0), g.members[0].sigPriv, g.groupID); err == nil {
		t.Fatal("PrepareUpdatePath outside the tree")
	}
	if _, err := tree.PrepareUpdatePath(s, 0, nil, g.members[0].sigPriv, g.groupID); err == nil {
		t.Fatal("PrepareUpdatePath with a nil leaf")
	}
}

// TestPrepareUpdatePathAlone covers a lone member and an external joiner:
// an empty filtered direct path still yields a commit secret, and the leaf's
// parent hash is empty.
func TestPrepareUpdatePathAlone(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := tkNewGroup(t, s, 1)
	pending, err := g.tree.PrepareUpdatePath(s, 0, g.tree.Leaf(0), g.members[0].sigPriv, g.groupID)
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Wipe()
	if len(pending.CommitSecret()) != s.Nh() || len(g.tree.Leaf(0).ParentHash) != 0 {
		t.Fatal("lone commit")
	}
	path, err := pending.Encrypt(s, g.tree, nil, nil)
	if err != nil || len(path.Nodes) != 0 {
		t.Fatalf("lone path: %v, %d nodes", err, len(path.Nodes))
	}

	// External join: the joiner takes a free leaf, then commits from it.
	g = tkNewGroup(t, s, 2)
	tree := g.tree.Clone()
	l, err := tree.FreeLeaf()
	if err != nil || l != 2 || tree.LeafCount() != 4 {
		t.Fatalf("FreeLeaf = %d, %v; %d leaves", l, err, tree.LeafCount())
	}
	ln, sigPriv, _ := tkNewLeaf(t, s, "external")
	pending, err = tree.PrepareUpdatePath(s, l, ln, sigPriv, g.groupID)
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Wipe()
	gc := g.groupContext(tree, 1)
	if path, err = pending.Encrypt(s, tree, gc, nil); err != nil {
		t.Fatal(err)
	}
	recv := g.tree.Clone()
	if l2, _ := recv.FreeLeaf(); l2 != l {
		t.Fatal("receiver picked another leaf")
	}
	if err := recv.MergeUpdatePath(s, l, path, g.groupID); err != nil {
		t.Fatal(err)
	}
	for _, m := range []LeafIndex{0, 1} {
		_, cs, err := DecryptUpdatePath(s, recv, g.members[m].priv, l, path, gc, nil)
		if err != nil || !bytes.Equal(cs, pending.CommitSecret()) {
			t.Fatalf("member %d: %v", m, err)
		}
	}
	if err := recv.ValidateForJoin(s, g.groupID, nil); err != nil {
		t.Fatal(err)
	}
}

func TestTreePrivateKeyEncoding(t *testing.T) {
	k := &TreePrivateKey{Leaf: 5, EncryptionPriv: []byte{1, 2, 3}, PathPrivs: map[NodeIndex][]byte{11: {4}, 7: {5, 6}, 15: {}}}
	b := tkEncodePriv(t, k)
	var d TreePrivateKey
	if err := wire.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tkEncodePriv(t, &d), b) || d.Leaf != 5 || len(d.PathPrivs) != 3 {
		t.Fatal("round trip changed the key")
	}
	// Node order on the wire is fixed, so equal states encode equally.
	if !bytes.Equal(tkEncodePriv(t, k.Clone()), b) {
		t.Fatal("encoding is not deterministic")
	}
	dup := append(bytes.Clone(b[:len(b)-0]), 0)
	if err := wire.Unmarshal(dup, &d); err == nil {
		t.Fatal("trailing byte accepted")
	}
	for _, bad := range []*TreePrivateKey{
		{Leaf: 1, PathPrivs: map[NodeIndex][]byte{4: {1}}}, // a leaf position
	} {
		if err := wire.Unmarshal(tkEncodePriv(t, bad), &d); err == nil {
			t.Fatal("path key at a leaf position accepted")
		}
	}
	w := wire.NewWriter(nil)
	w.U32(0)
	w.Opaque(nil)
	w.Vector(func(w *wire.Writer) {
		w.U32(3)
		w.Opaque([]byte{1})
		w.U32(3)
		w.Opaque([]byte{2})
	})
	twice, _ := w.Bytes()
	if err := wire.Unmarshal(twice, &d); err == nil {
		t.Fatal("node listed twice accepted")
	}

	c := k.Clone()
	c.Wipe()
	if c.EncryptionPriv != nil || len(c.PathPrivs) != 0 || k.PathPrivs[11][0] != 4 || k.EncryptionPriv[0] != 1 {
		t.Fatal("Wipe of a clone touched the original, or left keys")
	}
	priv := k.PathPrivs[7]
	k.Wipe()
	if priv[0] != 0 || priv[1] != 0 {
		t.Fatal("Wipe did not zero the key bytes")
	}
}

func TestTreePrivateKeyConsistentWith(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := tkNewGroup(t, s, 4)
	k := g.members[2].priv
	if err := k.ConsistentWith(s, g.tree); err != nil {
		t.Fatal(err)
	}
	other := g.members[0].priv
	cases := map[string]*TreePrivateKey{
		"wrong leaf key":     {Leaf: 2, EncryptionPriv: other.EncryptionPriv, PathPrivs: map[NodeIndex][]byte{}},
		"blank leaf":         {Leaf: 5, EncryptionPriv: k.EncryptionPriv},
		"not an ancestor":    {Leaf: 2, EncryptionPriv: k.EncryptionPriv, PathPrivs: map[NodeIndex][]byte{1: k.PathPrivs[3]}},
		"wrong node key":     {Leaf: 2, EncryptionPriv: k.EncryptionPriv, PathPrivs: map[NodeIndex][]byte{5: k.PathPrivs[3]}},
		"leaf position":      {Leaf: 2, EncryptionPriv: k.EncryptionPriv, PathPrivs: map[NodeIndex][]byte{4: k.PathPrivs[3]}},
		"outside the tree":   {Leaf: 2, EncryptionPriv: k.EncryptionPriv, PathPrivs: map[NodeIndex][]byte{31: k.PathPrivs[3]}},
		"malformed priv key": {Leaf: 2, EncryptionPriv: []byte{1}},
	}
	for name, bad := range cases {
		if err := bad.ConsistentWith(s, g.tree); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// After leaf 3 leaves, node 5 above it is blank: Prune must drop its key.
	tree := g.tree.Clone()
	if err := tree.RemoveLeaf(3); err != nil {
		t.Fatal(err)
	}
	p := k.Clone()
	p.Prune(tree)
	if _, ok := p.PathPrivs[5]; ok || len(p.PathPrivs) != 0 {
		t.Fatalf("Prune kept %v", slices.Collect(func(yield func(NodeIndex) bool) {
			for x := range p.PathPrivs {
				yield(x)
			}
		}))
	}
	if err := p.ConsistentWith(s, tree); err != nil {
		t.Fatal(err)
	}
}

func TestNewTreePrivateKeyFromPathSecretRejects(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := tkNewGroup(t, s, 4)
	tree := g.tree.Clone()
	pending, err := tree.PrepareUpdatePath(s, 0, tree.Leaf(0), g.members[0].sigPriv, g.groupID)
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Wipe()
	enc := g.members[3].priv.EncryptionPriv
	ps, anc, _ := pending.PathSecretForLeaf(3)
	if _, err := NewTreePrivateKeyFromPathSecret(s, tree, 3, enc, anc, ps); err != nil {
		t.Fatal(err)
	}
	wrong := bytes.Clone(ps)
	wrong[0] ^= 1
	for name, f := range map[string]func() error{
		"wrong secret":     func() error { _, err := NewTreePrivateKeyFromPathSecret(s, tree, 3, enc, anc, wrong); return err },
		"not an ancestor":  func() error { _, err := NewTreePrivateKeyFromPathSecret(s, tree, 3, enc, 1, ps); return err },
		"leaf as ancestor": func() error { _, err := NewTreePrivateKeyFromPathSecret(s, tree, 3, enc, 6, ps); return err },
		"wrong leaf key": func() error {
			_, err := NewTreePrivateKeyFromPathSecret(s, tree, 3, g.members[2].priv.EncryptionPriv, anc, ps)
			return err
		},
		"blank leaf": func() error { _, err := NewTreePrivateKeyFromPathSecret(s, tree, 9, enc, anc, ps); return err },
	} {
		if err := f(); err == nil || !strings.HasPrefix(err.Error(), "mls: ") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}
