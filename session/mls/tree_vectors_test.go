package mls

import (
	"fmt"
	"slices"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func init() {
	registerVectorChecker("tree-validation", checkTreeValidationVectors)
	registerVectorChecker("tree-operations", checkTreeOperationsVectors)
}

type treeValidationVector struct {
	CipherSuite uint16        `json:"cipher_suite"`
	Tree        hexBytes      `json:"tree"`
	GroupID     hexBytes      `json:"group_id"`
	Resolutions [][]NodeIndex `json:"resolutions"`
	TreeHashes  []hexBytes    `json:"tree_hashes"`
}

// decodeTree decodes a ratchet_tree and pads it as a joiner would.
func decodeTree(t *testing.T, data []byte) RatchetTree {
	t.Helper()
	var wt RatchetTree
	if err := wire.Unmarshal(data, &wt); err != nil {
		t.Fatalf("decoding ratchet tree: %v", err)
	}
	tree, err := NewRatchetTreeFromWire(wt)
	if err != nil {
		t.Fatalf("NewRatchetTreeFromWire: %v", err)
	}
	return tree
}

func checkTreeValidationVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[treeValidationVector](t, data) {
		t.Run(fmt.Sprintf("case%d_suite%d", i, tc.CipherSuite), func(t *testing.T) {
			s := mustSuite(t, tc.CipherSuite)
			tree := decodeTree(t, tc.Tree)
			if len(tc.Resolutions) != len(tree) || len(tc.TreeHashes) != len(tree) {
				t.Fatalf("vector lists %d resolutions and %d tree hashes for a tree of %d nodes",
					len(tc.Resolutions), len(tc.TreeHashes), len(tree))
			}
			for x := range tree {
				got := tree.Resolution(NodeIndex(x))
				if want := tc.Resolutions[x]; !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
					t.Errorf("resolution(%d) = %v, want %v", x, got, want)
				}
				th, err := tree.NodeTreeHash(s, NodeIndex(x))
				if err != nil {
					t.Fatalf("tree hash of node %d: %v", x, err)
				}
				expectEqual(t, fmt.Sprintf("tree hash of node %d", x), th, tc.TreeHashes[x])
			}
			root, err := tree.TreeHash(s)
			if err != nil {
				t.Fatal(err)
			}
			expectEqual(t, "root tree hash", root, tc.TreeHashes[len(tree)/2])
			if err := tree.VerifyParentHashes(s); err != nil {
				t.Errorf("VerifyParentHashes: %v", err)
			}
			signed := 0
			for l := range tree.LeafCount() {
				if ln := tree.Leaf(LeafIndex(l)); ln != nil {
					if err := ln.VerifySignature(s, tc.GroupID, LeafIndex(l)); err != nil {
						t.Errorf("leaf %d signature: %v", l, err)
					}
					signed++
				}
			}
			if signed == 0 {
				t.Error("tree has no leaf to verify")
			}
			// The full join-time validation must accept every vector tree.
			if err := tree.ValidateForJoin(s, tc.GroupID, nil); err != nil {
				t.Errorf("ValidateForJoin: %v", err)
			}
		})
	}
}

type treeOperationsVector struct {
	CipherSuite    uint16   `json:"cipher_suite"`
	TreeBefore     hexBytes `json:"tree_before"`
	Proposal       hexBytes `json:"proposal"`
	ProposalSender uint32   `json:"proposal_sender"`
	TreeHashBefore hexBytes `json:"tree_hash_before"`
	TreeAfter      hexBytes `json:"tree_after"`
	TreeHashAfter  hexBytes `json:"tree_hash_after"`
}

func checkTreeOperationsVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[treeOperationsVector](t, data) {
		t.Run(fmt.Sprintf("case%d_suite%d", i, tc.CipherSuite), func(t *testing.T) {
			s := mustSuite(t, tc.CipherSuite)
			tree := decodeTree(t, tc.TreeBefore)
			before, err := tree.TreeHash(s)
			if err != nil {
				t.Fatal(err)
			}
			expectEqual(t, "tree_hash_before", before, tc.TreeHashBefore)

			var p Proposal
			if err := wire.Unmarshal(tc.Proposal, &p); err != nil {
				t.Fatalf("decoding proposal: %v", err)
			}
			sender := LeafIndex(tc.ProposalSender)
			switch p.ProposalType {
			case ProposalAdd:
				tree.AddLeaf(&p.Add.KeyPackage.LeafNode)
			case ProposalUpdate:
				err = tree.UpdateLeaf(sender, &p.Update.LeafNode)
			case ProposalRemove:
				err = tree.RemoveLeaf(p.Remove.Removed)
			default:
				t.Fatalf("unexpected proposal type %d", p.ProposalType)
			}
			if err != nil {
				t.Fatalf("applying proposal type %d: %v", p.ProposalType, err)
			}
			after, err := wire.Marshal(&tree)
			if err != nil {
				t.Fatal(err)
			}
			expectEqual(t, fmt.Sprintf("tree_after (proposal type %d)", p.ProposalType), after, tc.TreeAfter)
			truncated, err := wire.Marshal(new(tree.Truncated()))
			if err != nil {
				t.Fatal(err)
			}
			expectEqual(t, "Truncated tree_after", truncated, tc.TreeAfter)
			hash, err := tree.TreeHash(s)
			if err != nil {
				t.Fatal(err)
			}
			expectEqual(t, "tree_hash_after", hash, tc.TreeHashAfter)
		})
	}
}
