package mls

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

// rtLeaf and rtParent make placeholder nodes for structural tests; their
// keys are distinct labels, not real keys.
func rtLeaf(i int) *Node {
	return &Node{NodeType: NodeTypeLeaf, Leaf: &LeafNode{
		EncryptionKey:  []byte{'l', byte(i)},
		SignatureKey:   []byte{'s', byte(i)},
		Credential:     Credential{CredentialType: CredentialBasic, Identity: []byte{byte(i)}},
		LeafNodeSource: LeafNodeSourceKeyPackage,
	}}
}

func rtParent(i int, unmerged ...LeafIndex) *Node {
	return &Node{NodeType: NodeTypeParent, Parent: &ParentNode{EncryptionKey: []byte{'p', byte(i)}, UnmergedLeaves: unmerged}}
}

// rtTree builds a padded tree from node index to node.
func rtTree(width int, nodes map[int]*Node) RatchetTree {
	t := make(RatchetTree, width)
	for i, n := range nodes {
		t[i] = n
	}
	return t
}

func rtSuite() *CipherSuite {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	return s
}

// TestResolution uses the tree of RFC 9420 figure 10: X[B] at node 3, Y at
// node 9, leaves 2 and 6 blank.
func TestResolution(t *testing.T) {
	tr := rtTree(15, map[int]*Node{
		0: rtLeaf(0), 2: rtLeaf(1), 6: rtLeaf(3), 8: rtLeaf(4), 10: rtLeaf(5), 14: rtLeaf(7),
		3: rtParent(3, 1), 9: rtParent(9),
	})
	for _, tc := range []struct {
		node NodeIndex
		want []NodeIndex
	}{
		{3, []NodeIndex{3, 2}},
		{4, nil},
		{12, nil},
		{5, []NodeIndex{6}},
		{13, []NodeIndex{14}},
		{11, []NodeIndex{9, 14}},
		{7, []NodeIndex{3, 2, 9, 14}},
		{15, nil},
		{1 << 31, nil},
	} {
		if got := tr.Resolution(tc.node); !slices.Equal(got, tc.want) {
			t.Errorf("Resolution(%d) = %v, want %v", tc.node, got, tc.want)
		}
	}
}

// TestFilteredDirectPath uses the tree of RFC 9420 figure 11 and its table.
func TestFilteredDirectPath(t *testing.T) {
	tr := rtTree(15, map[int]*Node{
		0: rtLeaf(0), 2: rtLeaf(1), 8: rtLeaf(4), 10: rtLeaf(5), 12: rtLeaf(6),
		1: rtParent(1), 7: rtParent(7), 9: rtParent(9), 11: rtParent(11),
	})
	for leaf, want := range map[LeafIndex][]NodeIndex{
		0: {1, 7}, 1: {1, 7}, 4: {9, 11, 7}, 5: {9, 11, 7}, 6: {11, 7},
	} {
		if got := tr.FilteredDirectPath(leaf); !slices.Equal(got, want) {
			t.Errorf("FilteredDirectPath(%d) = %v, want %v", leaf, got, want)
		}
	}
	if got := tr.FilteredDirectPath(8); got != nil {
		t.Errorf("FilteredDirectPath outside the tree = %v", got)
	}
	alone := RatchetTree{rtLeaf(0)}
	if got := alone.FilteredDirectPath(0); got == nil || len(got) != 0 {
		t.Errorf("lone leaf's filtered direct path = %#v, want empty", got)
	}
}

func TestAddLeaf(t *testing.T) {
	var tr RatchetTree
	for i := range 3 {
		if got := tr.AddLeaf(rtLeaf(i).Leaf); got != LeafIndex(i) {
			t.Fatalf("AddLeaf #%d = %d", i, got)
		}
	}
	if tr.LeafCount() != 4 || len(tr) != 7 || tr.Leaf(3) != nil {
		t.Fatalf("3 leaves: %d leaves, %d nodes", tr.LeafCount(), len(tr))
	}
	tr.AddLeaf(rtLeaf(3).Leaf)
	if got := tr.AddLeaf(rtLeaf(4).Leaf); got != 4 || tr.LeafCount() != 8 || len(tr) != 15 {
		t.Fatalf("fifth leaf at %d in %d leaves", got, tr.LeafCount())
	}
	if err := tr.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if got := tr.AddLeaf(rtLeaf(9).Leaf); got != 1 {
		t.Fatalf("AddLeaf after removing leaf 1 = %d, want the leftmost blank", got)
	}

	// The added leaf copies the caller's node.
	ln := rtLeaf(7).Leaf
	l := tr.AddLeaf(ln)
	ln.EncryptionKey[0] = 'x'
	if tr.Leaf(l).EncryptionKey[0] != 'l' {
		t.Fatal("tree aliases the added leaf node")
	}
}

func TestAddLeafMarksUnmerged(t *testing.T) {
	// Leaves 0, 1 and 3 occupied; nodes 1 and the root set, the root with
	// leaf 3 unmerged; node 5 blank.
	tr := rtTree(7, map[int]*Node{0: rtLeaf(0), 2: rtLeaf(1), 6: rtLeaf(3), 1: rtParent(1), 3: rtParent(3, 3)})
	view := tr.Truncated()
	if got := tr.AddLeaf(rtLeaf(2).Leaf); got != 2 {
		t.Fatalf("AddLeaf = %d", got)
	}
	if got := tr.Parent(3).UnmergedLeaves; !slices.Equal(got, []LeafIndex{2, 3}) {
		t.Fatalf("root unmerged = %v, want [2 3] (sorted)", got)
	}
	if tr.Parent(5) != nil || len(tr.Parent(1).UnmergedLeaves) != 0 {
		t.Fatal("AddLeaf touched nodes off its direct path or set a blank node")
	}
	if got := view[3].Parent.UnmergedLeaves; !slices.Equal(got, []LeafIndex{3}) {
		t.Fatalf("AddLeaf modified a node shared with another view: %v", got)
	}
}

func TestRemoveLeafTruncates(t *testing.T) {
	var tr RatchetTree
	for i := range 5 {
		tr.AddLeaf(rtLeaf(i).Leaf)
	}
	tr[1], tr[3], tr[7], tr[9] = rtParent(1), rtParent(3), rtParent(7), rtParent(9)
	if err := tr.RemoveLeaf(4); err != nil {
		t.Fatal(err)
	}
	if tr.LeafCount() != 4 || len(tr) != 7 {
		t.Fatalf("after removing leaf 4: %d leaves", tr.LeafCount())
	}
	if err := tr.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if tr.LeafCount() != 4 || tr[1] != nil || tr[3] != nil || tr.Leaf(1) != nil {
		t.Fatal("removing leaf 1 must blank it and its direct path, keeping the size")
	}
	if err := tr.RemoveLeaf(3); err != nil || tr.LeafCount() != 4 {
		t.Fatalf("leaf 2 still holds the right half: %v, %d leaves", err, tr.LeafCount())
	}
	if err := tr.RemoveLeaf(2); err != nil {
		t.Fatal(err)
	}
	// Leaves 1..3 are now blank: halve twice.
	if tr.LeafCount() != 1 || len(tr) != 1 || tr.Leaf(0) == nil {
		t.Fatalf("after removing leaves 1-3: %d nodes", len(tr))
	}
	if err := tr.RemoveLeaf(0); err != nil || len(tr) != 1 || tr[0] != nil {
		t.Fatalf("removing the last member: %v, %v", err, tr)
	}

	var left RatchetTree
	for i := range 3 {
		left.AddLeaf(rtLeaf(i).Leaf)
	}
	if err := left.RemoveLeaf(0); err != nil || left.LeafCount() != 4 {
		t.Fatal("removing on the left must not truncate")
	}
	for _, l := range []LeafIndex{0, 3, 4, 1 << 31} {
		if err := left.RemoveLeaf(l); err == nil || !strings.HasPrefix(err.Error(), "mls: ") {
			t.Errorf("RemoveLeaf(%d) of a blank or absent leaf: %v", l, err)
		}
		if err := left.UpdateLeaf(l, rtLeaf(9).Leaf); err == nil {
			t.Errorf("UpdateLeaf(%d) of a blank or absent leaf accepted", l)
		}
	}
}

func TestUpdateLeafBlanksPath(t *testing.T) {
	tr := rtTree(7, map[int]*Node{0: rtLeaf(0), 2: rtLeaf(1), 4: rtLeaf(2), 1: rtParent(1), 3: rtParent(3), 5: rtParent(5)})
	ln := rtLeaf(8).Leaf
	if err := tr.UpdateLeaf(0, ln); err != nil {
		t.Fatal(err)
	}
	if tr[1] != nil || tr[3] != nil || tr[5] == nil {
		t.Fatal("UpdateLeaf must blank exactly the direct path")
	}
	ln.EncryptionKey[0] = 'x'
	if tr.Leaf(0).EncryptionKey[0] != 'l' || tr.Leaf(0).EncryptionKey[1] != 8 {
		t.Fatal("UpdateLeaf must store a copy of the new leaf")
	}
	if err := tr.UpdateLeaf(1, nil); err == nil {
		t.Fatal("nil leaf accepted")
	}
}

func TestNewRatchetTreeFromWire(t *testing.T) {
	for _, tc := range []struct {
		nodes RatchetTree
		width int
	}{
		{RatchetTree{rtLeaf(0)}, 1},
		{RatchetTree{rtLeaf(0), rtParent(1)}, 3},
		{RatchetTree{rtLeaf(0), nil, rtLeaf(1)}, 3},
		{RatchetTree{rtLeaf(0), nil, nil, nil, rtLeaf(2)}, 7},
		{RatchetTree{rtLeaf(0), nil, nil, nil, nil, nil, nil, nil, rtLeaf(4)}, 15},
	} {
		tr, err := NewRatchetTreeFromWire(tc.nodes)
		if err != nil || len(tr) != tc.width || tr.LeafCount() != uint32(tc.width+1)/2 {
			t.Fatalf("%d nodes: width %d, %v; want %d", len(tc.nodes), len(tr), err, tc.width)
		}
		a, _ := wire.Marshal(&tc.nodes)
		b, _ := wire.Marshal(new(tr.Truncated()))
		if !bytes.Equal(a, b) || len(tr.Truncated()) != len(tc.nodes) {
			t.Fatal("Truncated does not give back the wire form")
		}
	}
	for name, nodes := range map[string]RatchetTree{
		"empty":              nil,
		"trailing blank":     {rtLeaf(0), nil, nil},
		"parent at leaf":     {rtParent(0)},
		"leaf at parent":     {rtLeaf(0), rtLeaf(1), rtLeaf(2)},
		"leaf without body":  {{NodeType: NodeTypeLeaf}},
		"parent no body":     {rtLeaf(0), {NodeType: NodeTypeParent}},
		"unknown node type":  {{NodeType: 9, Leaf: rtLeaf(0).Leaf}},
		"parent body on pos": {{NodeType: NodeTypeLeaf, Parent: &ParentNode{}}},
	} {
		if _, err := NewRatchetTreeFromWire(nodes); err == nil || !strings.HasPrefix(err.Error(), "mls: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRatchetTreeClone(t *testing.T) {
	tr := rtTree(3, map[int]*Node{0: rtLeaf(0), 1: rtParent(1, 1), 2: rtLeaf(1)})
	tr[0].Leaf.Credential.Certificates = []Certificate{{CertData: []byte{1}}}
	tr[0].Leaf.Extensions = Extensions{{Type: 9, Data: []byte{2}}}
	c := tr.Clone()
	c[0].Leaf.EncryptionKey[0] = 'x'
	c[0].Leaf.Credential.Certificates[0].CertData[0] = 9
	c[0].Leaf.Extensions[0].Data[0] = 9
	c[1].Parent.UnmergedLeaves[0] = 7
	c[1].Parent.EncryptionKey[0] = 'x'
	if tr[0].Leaf.EncryptionKey[0] != 'l' || tr[0].Leaf.Credential.Certificates[0].CertData[0] != 1 ||
		tr[0].Leaf.Extensions[0].Data[0] != 2 || tr[1].Parent.UnmergedLeaves[0] != 1 || tr[1].Parent.EncryptionKey[0] != 'p' {
		t.Fatal("Clone shares memory with the original")
	}
	a, _ := wire.Marshal(&tr)
	b, _ := wire.Marshal(new(tr.Clone()))
	if !bytes.Equal(a, b) {
		t.Fatal("Clone changed the tree")
	}
	if RatchetTree(nil).Clone() != nil {
		t.Fatal("Clone of nil")
	}
}

func TestFindLeaf(t *testing.T) {
	tr := rtTree(7, map[int]*Node{0: rtLeaf(0), 4: rtLeaf(2), 6: rtLeaf(3)})
	l, ok := tr.FindLeaf(func(n *LeafNode) bool { return n.Credential.Identity[0] >= 2 })
	if !ok || l != 2 {
		t.Fatalf("FindLeaf = %d, %v", l, ok)
	}
	if _, ok := tr.FindLeaf(func(*LeafNode) bool { return false }); ok {
		t.Fatal("FindLeaf matched nothing but reported a leaf")
	}
}

// TestRatchetTreeMalformed hands every entry point trees that are not
// padded or hold mistyped nodes: each must fail cleanly.
func TestRatchetTreeMalformed(t *testing.T) {
	s := rtSuite()
	for name, tr := range map[string]RatchetTree{
		"empty":          {},
		"two nodes":      {rtLeaf(0), rtParent(1)},
		"four nodes":     {rtLeaf(0), nil, rtLeaf(1), nil},
		"parent at leaf": {rtParent(0), nil, rtLeaf(1)},
		"nil leaf body":  {rtLeaf(0), nil, {NodeType: NodeTypeLeaf}},
	} {
		t.Run(name, func(t *testing.T) {
			padded := len(tr) == 3
			if !padded && (tr.LeafCount() != 0 || tr.Leaf(0) != nil || tr.Resolution(0) != nil || tr.FilteredDirectPath(0) != nil) {
				t.Error("accessors answered for an unpadded tree")
			}
			mustFail := func(what string, err error) {
				t.Helper()
				if err == nil || !strings.HasPrefix(err.Error(), "mls: ") {
					t.Errorf("%s: %v", what, err)
				}
			}
			_, err := tr.TreeHash(s)
			mustFail("TreeHash", err)
			_, err = tr.NodeTreeHash(s, 0)
			mustFail("NodeTreeHash", err)
			mustFail("VerifyParentHashes", tr.VerifyParentHashes(s))
			mustFail("ValidateForJoin", tr.ValidateForJoin(s, nil, nil))
			c := slices.Clone(tr)
			mustFail("UpdateLeaf", c.UpdateLeaf(0, rtLeaf(5).Leaf))
			mustFail("RemoveLeaf", c.RemoveLeaf(0))
			_, err = c.PrepareUpdatePath(s, 0, rtLeaf(5).Leaf, nil, nil)
			mustFail("PrepareUpdatePath", err)
			mustFail("MergeUpdatePath", c.MergeUpdatePath(s, 0, &UpdatePath{}, nil))
			if len(tr) > 0 {
				_, err = c.FreeLeaf()
				mustFail("FreeLeaf", err)
			}
			k := &TreePrivateKey{}
			mustFail("ConsistentWith", k.ConsistentWith(s, tr))
		})
	}
	tr := RatchetTree{rtLeaf(0)}
	if _, err := tr.NodeTreeHash(rtSuite(), 1); err == nil {
		t.Error("NodeTreeHash outside the tree")
	}
	// AddLeaf repairs the width rather than fail: it has no error result.
	odd := RatchetTree{rtLeaf(0), nil, rtLeaf(1), nil, rtLeaf(2)}
	if l := odd.AddLeaf(rtLeaf(3).Leaf); l != 3 || len(odd) != 7 {
		t.Fatalf("AddLeaf on an unpadded tree: leaf %d, %d nodes", l, len(odd))
	}
}

// TestRatchetTreeHostile feeds random trees, with unmerged lists naming
// leaves anywhere (outside the node, outside the tree, blank, repeated, each
// other's subtrees), to everything that reads a tree. Nothing may panic,
// and validation must refuse them.
func TestRatchetTreeHostile(t *testing.T) {
	s := rtSuite()
	rng := rand.New(rand.NewPCG(7, 9))
	for iter := range 300 {
		width := []int{1, 3, 7, 15, 31}[rng.IntN(5)]
		tr := make(RatchetTree, width)
		for i := range tr {
			if rng.IntN(3) == 0 {
				continue
			}
			if i%2 == 0 {
				tr[i] = rtLeaf(i)
				continue
			}
			var unmerged []LeafIndex
			for range rng.IntN(4) {
				unmerged = append(unmerged, []LeafIndex{LeafIndex(rng.IntN(width)), LeafIndex(rng.Uint32()), 1<<31 - 1, 1 << 31}[rng.IntN(4)])
			}
			tr[i] = rtParent(i, unmerged...)
		}
		for x := range tr {
			tr.Resolution(NodeIndex(x))
			tr.Parent(NodeIndex(x))
		}
		for l := range tr.LeafCount() + 1 {
			tr.FilteredDirectPath(LeafIndex(l))
			tr.Leaf(LeafIndex(l))
		}
		if _, err := tr.TreeHash(s); err != nil {
			t.Fatalf("iteration %d: TreeHash: %v", iter, err)
		}
		_ = tr.VerifyParentHashes(s)
		if err := tr.ValidateForJoin(s, nil, nil); err == nil && slices.ContainsFunc(tr, func(n *Node) bool { return n != nil }) {
			t.Fatalf("iteration %d: a random tree passed join validation", iter)
		}
		c := tr.Clone()
		c.AddLeaf(rtLeaf(99).Leaf)
		c.RemoveLeaf(0)
		c.UpdateLeaf(1, rtLeaf(98).Leaf)
	}
}

// rtValidTree is a real group's tree with unmerged leaves: five members, a
// full Commit by leaf 0 setting the root, then two members added without a
// path, unmerged at the root.
func rtValidTree(t *testing.T) (*tkGroup, RatchetTree) {
	t.Helper()
	g := tkNewGroup(t, rtSuite(), 5)
	g.commit(0, 2, nil, false)
	tr := g.tree
	if got := tr.Parent(7).UnmergedLeaves; !slices.Equal(got, []LeafIndex{5, 6}) {
		t.Fatalf("fixture: root unmerged leaves %v", got)
	}
	if err := tr.ValidateForJoin(g.s, g.groupID, nil); err != nil {
		t.Fatal(err)
	}
	return g, tr
}

func TestValidateForJoinRejects(t *testing.T) {
	g, valid := rtValidTree(t)
	s := g.s
	errPolicy := errors.New("mls: policy says no")
	cases := []struct {
		name      string
		tamper    func(tr RatchetTree)
		checkLeaf func(LeafIndex, *LeafNode) error
		want      string
	}{
		{"unmerged not sorted", func(tr RatchetTree) { tr[7].Parent.UnmergedLeaves = []LeafIndex{6, 5} }, nil, "strictly increasing"},
		{"unmerged repeated", func(tr RatchetTree) { tr[7].Parent.UnmergedLeaves = []LeafIndex{5, 5, 6} }, nil, "strictly increasing"},
		{"unmerged not below", func(tr RatchetTree) { tr[1].Parent.UnmergedLeaves = []LeafIndex{5} }, nil, "not below"},
		{"unmerged outside tree", func(tr RatchetTree) { tr[7].Parent.UnmergedLeaves = []LeafIndex{5, 6, 1 << 31} }, nil, "not below"},
		{"unmerged blank leaf", func(tr RatchetTree) { tr[7].Parent.UnmergedLeaves = []LeafIndex{5, 6, 7} }, nil, "blank leaf"},
		{"unmerged skips a node", func(tr RatchetTree) {
			tr[9] = &Node{NodeType: NodeTypeParent, Parent: &ParentNode{EncryptionKey: []byte("fresh")}}
		}, nil, "not at node 9"},
		{"encryption key repeated", func(tr RatchetTree) {
			tr[2].Leaf.EncryptionKey = bytes.Clone(tr[3].Parent.EncryptionKey)
		}, nil, "same encryption key"},
		{"signature key repeated", func(tr RatchetTree) { tr[4].Leaf.SignatureKey = bytes.Clone(tr[2].Leaf.SignatureKey) }, nil, "same signature key"},
		{"parent hash broken", func(tr RatchetTree) { tr[1].Parent.ParentHash[0] ^= 1 }, nil, "parent-hash valid"},
		{"parent key replaced", func(tr RatchetTree) { tr[3].Parent.EncryptionKey = []byte("other key") }, nil, "parent-hash valid"},
		{"unmerged leaf dropped", func(tr RatchetTree) { tr[7].Parent.UnmergedLeaves = []LeafIndex{5} }, nil, "parent-hash valid"},
		// Leaf 0 set every parent hash, so no parent hash covers its own
		// node: only its signature protects it.
		{"leaf signature", func(tr RatchetTree) { tr[0].Leaf.Signature[0] ^= 1 }, nil, "leaf 0"},
		{"sibling leaf changed", func(tr RatchetTree) { tr[6].Leaf.Signature[0] ^= 1 }, nil, "parent-hash valid"},
		{"leaf policy", func(tr RatchetTree) {}, func(l LeafIndex, _ *LeafNode) error {
			if l == 6 {
				return errPolicy
			}
			return nil
		}, "policy says no"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := valid.Clone()
			tc.tamper(tr)
			err := tr.ValidateForJoin(s, g.groupID, tc.checkLeaf)
			if err == nil || !strings.HasPrefix(err.Error(), "mls: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
	if err := valid.ValidateForJoin(s, []byte("another group"), nil); err == nil {
		t.Fatal("leaves signed for another group accepted")
	}
}

// BenchmarkLargeTree times the whole-tree operations on a 300-member group
// in which several members have committed, so that hashing and parent-hash
// checks meet real parent nodes, blanks and unmerged leaves.
func BenchmarkLargeTree(b *testing.B) {
	g := tkNewGroup(b, rtSuite(), 300)
	g.lightChecks = true
	g.commit(77, 0, []LeafIndex{5, 150}, true)
	g.commit(200, 3, nil, false)
	g.commit(3, 0, nil, true)
	tr := g.tree
	b.Run("TreeHash", func(b *testing.B) {
		for b.Loop() {
			if _, err := tr.TreeHash(g.s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("VerifyParentHashes", func(b *testing.B) {
		for b.Loop() {
			if err := tr.VerifyParentHashes(g.s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ValidateForJoin", func(b *testing.B) {
		for b.Loop() {
			if err := tr.ValidateForJoin(g.s, g.groupID, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Clone", func(b *testing.B) {
		for b.Loop() {
			tr.Clone()
		}
	})
}
