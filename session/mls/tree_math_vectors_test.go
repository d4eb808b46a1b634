package mls

import (
	"fmt"
	"testing"
)

func init() { registerVectorChecker("tree-math", checkTreeMathVectors) }

type treeMathVector struct {
	NLeaves uint32    `json:"n_leaves"`
	NNodes  uint32    `json:"n_nodes"`
	Root    uint32    `json:"root"`
	Left    []*uint32 `json:"left"`
	Right   []*uint32 `json:"right"`
	Parent  []*uint32 `json:"parent"`
	Sibling []*uint32 `json:"sibling"`
}

func checkTreeMathVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[treeMathVector](t, data) {
		t.Run(fmt.Sprintf("case%d_leaves%d", i, tc.NLeaves), func(t *testing.T) {
			n := tc.NLeaves
			if w, ok := nodeWidth(n); !ok || w != tc.NNodes {
				t.Errorf("nodeWidth(%d) = %d, %v; want %d", n, w, ok, tc.NNodes)
			}
			if r, ok := rootNode(n); !ok || uint32(r) != tc.Root {
				t.Errorf("rootNode(%d) = %d, %v; want %d", n, r, ok, tc.Root)
			}
			relations := []struct {
				name string
				want []*uint32
				f    func(NodeIndex) (NodeIndex, bool)
			}{
				{"left", tc.Left, func(x NodeIndex) (NodeIndex, bool) { return x.left(n) }},
				{"right", tc.Right, func(x NodeIndex) (NodeIndex, bool) { return x.right(n) }},
				{"parent", tc.Parent, func(x NodeIndex) (NodeIndex, bool) { return x.parent(n) }},
				{"sibling", tc.Sibling, func(x NodeIndex) (NodeIndex, bool) { return x.sibling(n) }},
			}
			for _, rel := range relations {
				if uint32(len(rel.want)) != tc.NNodes {
					t.Fatalf("%s has %d entries, want n_nodes = %d", rel.name, len(rel.want), tc.NNodes)
				}
				for x, want := range rel.want {
					got, ok := rel.f(NodeIndex(x))
					switch {
					case want == nil && ok:
						t.Errorf("%s(%d) = %d, want none", rel.name, x, got)
					case want != nil && !ok:
						t.Errorf("%s(%d) = none, want %d", rel.name, x, *want)
					case want != nil && uint32(got) != *want:
						t.Errorf("%s(%d) = %d, want %d", rel.name, x, got, *want)
					}
				}
				// The first index past the tree must be rejected, not computed.
				if got, ok := rel.f(NodeIndex(tc.NNodes)); ok {
					t.Errorf("%s(%d) outside the tree = %d, want none", rel.name, tc.NNodes, got)
				}
			}
		})
	}
}
