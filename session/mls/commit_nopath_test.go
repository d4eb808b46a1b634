package mls

import (
	"errors"
	"testing"
)

// addWithoutPath is add with a path-less Add commit.
func addWithoutPath(t testing.TB, s *CipherSuite, committer *member, others []*member, name string) (*member, *CommitResult) {
	t.Helper()
	return addBy(t, s, committer, others, name, committer.g.AddMemberWithoutPath)
}

// The two-party handshake's commit: no UpdatePath, no path secret in the
// Welcome, the root stays blank, and both members can then update in turn
// (the first update encrypts to the creator's original leaf key).
func TestCommitWithoutPathTwoParty(t *testing.T) {
	for _, id := range []CipherSuiteID{0x0001, 0xF001, 0xF00A} {
		s, _ := Suite(id)
		t.Run(s.Name, func(t *testing.T) {
			a := newCreator(t, s, "a")
			leafKey := append([]byte(nil), a.g.state.tree.Leaf(0).EncryptionKey...)
			b, res := addWithoutPath(t, s, a, nil, "b")
			// GroupConfig{} frames handshakes as PublicMessages.
			if pm := res.Commit.PublicMessage; pm == nil || pm.Content.Commit.Path != nil {
				t.Fatal("commit is not a PublicMessage without an UpdatePath")
			}
			assertAgree(t, []*member{a, b})
			if a.g.Epoch() != 1 {
				t.Fatalf("epoch %d, want 1", a.g.Epoch())
			}
			root, _ := rootNode(2)
			if a.g.state.tree.Parent(root) != nil || b.g.state.tree.Parent(root) != nil {
				t.Fatal("root is not blank after a path-less commit")
			}
			if string(a.g.state.tree.Leaf(0).EncryptionKey) != string(leafKey) {
				t.Fatal("creator's leaf key changed without a path")
			}
			// b first: its path is encrypted to a's original leaf key.
			for _, c := range []*member{b, a, b, a} {
				other := a
				if c == a {
					other = b
				}
				commitAndDeliver(t, c, []*member{other})
				assertAgree(t, []*member{a, b})
			}
		})
	}
}

// A path-less Add into a larger group: the existing members process it,
// the new leaf becomes unmerged at its non-blank ancestors, and the next
// full commit works for everyone.
func TestCommitWithoutPathGroupOfFour(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	a := newCreator(t, s, "a")
	b := add(t, s, a, nil, "b")
	c := add(t, s, b, []*member{a}, "c")
	members := []*member{a, b, c}
	commitAndDeliver(t, c, []*member{a, b})
	d, _ := addWithoutPath(t, s, a, []*member{b, c}, "d")
	members = append(members, d)
	assertAgree(t, members)
	for i, m := range members {
		others := append(append([]*member(nil), members[:i]...), members[i+1:]...)
		commitAndDeliver(t, m, others)
		assertAgree(t, members)
	}
}

// A commit whose proposals need a path (none: a self-update; an Update or
// Remove) is refused without one, and the group is left as it was.
func TestCommitWithoutPathRefused(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	a := newCreator(t, s, "a")
	b := add(t, s, a, nil, "b")
	before := a.g.EpochAuthenticator()
	for name, props := range map[string][]Proposal{
		"empty":  nil,
		"remove": {{ProposalType: ProposalRemove, Remove: &Remove{Removed: b.g.OwnLeaf()}}},
	} {
		if _, err := a.g.CommitWithoutPath(props); !errors.Is(err, ErrPathRequired) {
			t.Fatalf("%s: got %v, want ErrPathRequired", name, err)
		}
		if a.g.HasPendingCommit() || string(a.g.EpochAuthenticator()) != string(before) {
			t.Fatalf("%s: the refused commit changed the group", name)
		}
	}
	commitAndDeliver(t, a, []*member{b})
	assertAgree(t, []*member{a, b})
}
