package mls

import (
	"bytes"
	"errors"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

// A checked KeyPackage adds its client as AddMemberWithoutPath does, and
// what the commit carries is the KeyPackage as it was checked, whatever
// happens to the caller's copy afterwards.
func TestCheckedKeyPackageAdd(t *testing.T) {
	for _, id := range []CipherSuiteID{0x0001, 0xF001} {
		s, _ := Suite(id)
		t.Run(s.Name, func(t *testing.T) {
			a := newCreator(t, s, "a")
			kp, secrets := newJoiner(t, s, "b")
			want, err := wire.Marshal(kp)
			if err != nil {
				t.Fatal(err)
			}
			checked, err := kp.Check(&LeafNodeCheck{Suite: s})
			if err != nil {
				t.Fatal(err)
			}
			// The caller's copy is spoiled after the check.
			kp.Signature[0] ^= 1
			kp.LeafNode.EncryptionKey[0] ^= 1
			kp.InitKey[0] ^= 1
			res, err := a.g.AddCheckedMemberWithoutPath(checked)
			if err != nil {
				t.Fatal(err)
			}
			pm := res.Commit.PublicMessage
			if pm == nil || pm.Content.Commit.Path != nil || len(pm.Content.Commit.Proposals) != 1 {
				t.Fatal("not a path-less commit of one proposal")
			}
			got, err := wire.Marshal(&pm.Content.Commit.Proposals[0].Proposal.Add.KeyPackage)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("the commit adds another KeyPackage than the one checked (%v)", err)
			}
			if err := a.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			g, err := JoinFromWelcome(roundTrip(t, res.Welcome), checked.KeyPackage(), secrets, nil, GroupConfig{})
			if err != nil {
				t.Fatal(err)
			}
			b := &member{name: "b", g: g, sigPriv: secrets.SignaturePriv}
			assertAgree(t, []*member{a, b})
			commitAndDeliver(t, b, []*member{a})
			assertAgree(t, []*member{a, b})
			// Neither the commit nor the epochs after it wrote into
			// the checked KeyPackage.
			if after, err := wire.Marshal(checked.KeyPackage()); err != nil || !bytes.Equal(after, want) {
				t.Fatalf("the checked KeyPackage changed (%v)", err)
			}
		})
	}
}

// What the group adds to a KeyPackage's check still runs for a checked
// one: a group extension its leaf does not support refuses the Add and
// leaves the group as it was; so do a KeyPackage checked for another suite
// and one that fails its check.
func TestCheckedKeyPackageGroupChecks(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	const ext ExtensionType = 0xff0a
	caps := DefaultCapabilities()
	caps.Extensions = append(caps.Extensions, ext)
	sigPriv, _, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup(s, []byte("group-x"), sigPriv, newCredential("a"), Extensions{{Type: ext}}, GroupConfig{LeafCapabilities: &caps})
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := newJoiner(t, s, "b")
	checked, err := kp.Check(&LeafNodeCheck{Suite: s})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.AddCheckedMemberWithoutPath(checked); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("Add of a leaf without the group's extension: %v", err)
	}
	if g.pending != nil || g.Epoch() != 0 {
		t.Fatal("a refused Add changed the group")
	}

	other, _ := Suite(MLS128MLKEM768X25519AES128GCMSHA256Ed25519)
	okp, _ := newJoiner(t, other, "c")
	ochecked, err := okp.Check(&LeafNodeCheck{Suite: other})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.AddCheckedMemberWithoutPath(ochecked); err == nil {
		t.Fatal("a KeyPackage checked for another suite was added")
	}
	if _, err := g.AddCheckedMemberWithoutPath(nil); err == nil {
		t.Fatal("nil accepted")
	}
	kp.Signature[0] ^= 1
	if c, err := kp.Check(&LeafNodeCheck{Suite: s}); err == nil || c != nil {
		t.Fatal("a KeyPackage with a broken signature passed its check")
	}
}
