package mls

import (
	"errors"
	"testing"
)

// A group made with its member in one step is the group NewGroup and an
// Add would make: the joiner joins from the Welcome, both agree on the
// epoch's secrets, and both can commit and follow each other afterwards.
func TestNewGroupWithMember(t *testing.T) {
	for _, id := range []CipherSuiteID{0x0001, 0xF001} {
		s, _ := Suite(id)
		t.Run(s.Name, func(t *testing.T) {
			sigPriv, _, err := s.GenerateSignatureKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			kp, secrets := newJoiner(t, s, "b")
			checked, err := kp.Check(&LeafNodeCheck{Suite: s})
			if err != nil {
				t.Fatal(err)
			}
			g, welcome, err := NewGroupWithMember(s, []byte("group-a"), sigPriv, newCredential("a"), nil, GroupConfig{}, checked)
			if err != nil {
				t.Fatal(err)
			}
			if g.Epoch() != 1 || len(g.Members()) != 2 || g.HasPendingCommit() {
				t.Fatalf("epoch %d, %d members, pending %v: want epoch 1, 2 members, merged", g.Epoch(), len(g.Members()), g.HasPendingCommit())
			}
			joined, err := JoinFromWelcome(roundTrip(t, welcome), checked.KeyPackage(), secrets, nil, GroupConfig{})
			if err != nil {
				t.Fatal(err)
			}
			a := &member{name: "a", g: g, sigPriv: sigPriv}
			b := &member{name: "b", g: joined, sigPriv: secrets.SignaturePriv}
			assertAgree(t, []*member{a, b})
			commitAndDeliver(t, a, []*member{b})
			commitAndDeliver(t, b, []*member{a})
			assertAgree(t, []*member{a, b})
		})
	}
}

// What NewGroupWithMember refuses, it refuses without a group: a
// KeyPackage checked for another suite, none, a group extension the
// creator does not support, or one the member's leaf does not.
func TestNewGroupWithMemberRefused(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	other, _ := Suite(MLS128MLKEM768X25519AES128GCMSHA256Ed25519)
	sigPriv, _, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	okp, _ := newJoiner(t, other, "c")
	ochecked, err := okp.Check(&LeafNodeCheck{Suite: other})
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := newJoiner(t, s, "b")
	checked, err := kp.Check(&LeafNodeCheck{Suite: s})
	if err != nil {
		t.Fatal(err)
	}
	const ext ExtensionType = 0xff0a
	caps := DefaultCapabilities()
	caps.Extensions = append(caps.Extensions, ext)
	for _, c := range []struct {
		name string
		kp   *CheckedKeyPackage
		ext  Extensions
		cfg  GroupConfig
	}{
		{"another suite", ochecked, nil, GroupConfig{}},
		{"no KeyPackage", nil, nil, GroupConfig{}},
		{"extension the creator lacks", checked, Extensions{{Type: ext}}, GroupConfig{}},
		{"extension the member lacks", checked, Extensions{{Type: ext}}, GroupConfig{LeafCapabilities: &caps}},
	} {
		g, w, err := NewGroupWithMember(s, []byte("group-a"), sigPriv, newCredential("a"), c.ext, c.cfg, c.kp)
		if err == nil || g != nil || w != nil {
			t.Errorf("%s: group %v, Welcome %v, error %v", c.name, g != nil, w != nil, err)
		}
	}
	if _, _, err := NewGroupWithMember(s, []byte("group-a"), sigPriv, newCredential("a"), Extensions{{Type: ext}}, GroupConfig{LeafCapabilities: &caps}, checked); !errors.Is(err, ErrInvalidProposal) {
		t.Errorf("a member without the group's extension: %v, want ErrInvalidProposal", err)
	}
}

// AddOnlyMemberWelcome is for a group of one: it answers a Welcome the
// member joins from, and refuses where the commit would have recipients.
func TestAddOnlyMemberWelcome(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	a := newCreator(t, s, "a")
	kp, secrets := newJoiner(t, s, "b")
	checked, err := kp.Check(&LeafNodeCheck{Suite: s})
	if err != nil {
		t.Fatal(err)
	}
	welcome, err := a.g.AddOnlyMemberWelcome(checked)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	g, err := JoinFromWelcome(roundTrip(t, welcome), checked.KeyPackage(), secrets, nil, GroupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	assertAgree(t, []*member{a, {name: "b", g: g, sigPriv: secrets.SignaturePriv}})

	ckp, _ := newJoiner(t, s, "c")
	cchecked, err := ckp.Check(&LeafNodeCheck{Suite: s})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.g.AddOnlyMemberWelcome(cchecked); err == nil {
		t.Fatal("a Welcome-only commit in a group of two")
	}
	if a.g.HasPendingCommit() || a.g.Epoch() != 1 {
		t.Fatal("a refused commit changed the group")
	}
}
