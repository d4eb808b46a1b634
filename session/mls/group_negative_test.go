package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

// Negative tests of the Group API: every forged, replayed or malformed
// message a peer (or an attacker on the path) can send must be rejected by
// Process with the typed error the session layer classifies, and must leave
// the receiver exactly as it was, so that the genuine message that follows
// is still accepted.
//
// The forgeries start from genuine messages: they are decoded, mutated and
// re-encoded. Where a check behind the membership tag is the target, the
// forger plays an insider: it re-signs what it changed with the committer's
// signature key and recomputes the membership tag with the epoch's
// membership key (both reachable from the committer's Group in this package).

// negSuites are the suites every negative table runs for: the RFC's
// mandatory suite and current's default post-quantum one.
var negSuites = []CipherSuiteID{MLS128DHKEMX25519AES128GCMSHA256Ed25519, MLS128MLKEM768X25519AES128GCMSHA256Ed25519}

// negFixture is a two-member group: a (leaf 0) commits, b (leaf 1) receives.
type negFixture struct {
	s    *CipherSuite
	a, b *member
	// kpB is the KeyPackage b joined with (its leaf is in the tree).
	kpB *KeyPackage
	// prev is a's commit of the previous epoch, which b already processed.
	prev []byte
}

func newNegFixture(t testing.TB, id CipherSuiteID) *negFixture {
	t.Helper()
	s, err := Suite(id)
	if err != nil {
		t.Fatal(err)
	}
	a := newCreator(t, s, "a")
	kp, secrets := newJoiner(t, s, "b")
	res, err := a.g.AddMember(kp)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	gb, err := JoinFromWelcome(roundTrip(t, res.Welcome), kp, secrets, nil, GroupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b := &member{name: "b", g: gb, sigPriv: secrets.SignaturePriv}
	// One more epoch, so that there is an old commit to replay.
	up, err := a.g.SelfUpdate()
	if err != nil {
		t.Fatal(err)
	}
	prev := negEncode(t, up.Commit)
	if _, err := b.g.Process(negDecode(t, prev)); err != nil {
		t.Fatal(err)
	}
	if err := a.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	assertAgree(t, []*member{a, b})
	return &negFixture{s: s, a: a, b: b, kpB: kp, prev: prev}
}

func negEncode(t testing.TB, m *MLSMessage) []byte {
	t.Helper()
	b, err := marshalMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func negDecode(t testing.TB, b []byte) *MLSMessage { return decodeMessageTB(t, b) }

// negPublic decodes a fresh copy of an encoded PublicMessage.
func negPublic(t testing.TB, b []byte) *PublicMessage {
	t.Helper()
	m := negDecode(t, b)
	if m.WireFormat != WireFormatPublicMessage || m.PublicMessage == nil {
		t.Fatalf("not a PublicMessage (wire format %d)", m.WireFormat)
	}
	return m.PublicMessage
}

func negWrap(pm *PublicMessage) *MLSMessage {
	return &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}
}

// negResign re-signs pm's content as sender, in sender's current epoch.
func negResign(t testing.TB, sender *member, pm *PublicMessage) {
	t.Helper()
	ac, err := sender.g.suite.SignContent(sender.sigPriv, WireFormatPublicMessage, &pm.Content, &sender.g.state.ctx)
	if err != nil {
		t.Fatal(err)
	}
	pm.Auth.Signature = ac.Auth.Signature
}

// negRetag recomputes pm's membership tag with the epoch's membership key,
// which every member (here: the sender) holds.
func negRetag(t testing.TB, sender *member, pm *PublicMessage) {
	t.Helper()
	tag, err := sender.g.state.keys.membershipTag(&pm.Content, &pm.Auth)
	if err != nil {
		t.Fatal(err)
	}
	pm.MembershipTag = tag
}

// negResignLeaf re-signs the commit's UpdatePath leaf as sender.
func negResignLeaf(t testing.TB, sender *member, pm *PublicMessage) {
	t.Helper()
	if err := pm.Content.Commit.Path.LeafNode.Sign(sender.g.suite, sender.sigPriv, sender.g.state.ctx.GroupID, sender.g.OwnLeaf()); err != nil {
		t.Fatal(err)
	}
}

// negReframe re-signs the content and recomputes the membership tag: only
// what the test changed is wrong with the message.
func negReframe(t testing.TB, sender *member, pm *PublicMessage) *MLSMessage {
	t.Helper()
	negResign(t, sender, pm)
	negRetag(t, sender, pm)
	return negWrap(pm)
}

// negSnapshot is what must not change when a message is rejected.
type negSnapshot struct {
	state, auth []byte
	epoch       uint64
}

func negSnap(t testing.TB, g *Group) negSnapshot {
	t.Helper()
	st, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return negSnapshot{state: st, auth: g.EpochAuthenticator(), epoch: g.Epoch()}
}

func (n negSnapshot) check(t testing.TB, g *Group, what string) {
	t.Helper()
	after := negSnap(t, g)
	if after.epoch != n.epoch {
		t.Errorf("%s: epoch moved from %d to %d", what, n.epoch, after.epoch)
	}
	if !bytes.Equal(after.auth, n.auth) {
		t.Errorf("%s: epoch authenticator changed", what)
	}
	if !bytes.Equal(after.state, n.state) {
		t.Errorf("%s: persisted group state changed (%d -> %d bytes)", what, len(n.state), len(after.state))
	}
}

// negCommitCase forges a bad commit from the genuine self-update commit of
// a (encoded in genuine), in the epoch both members are in.
type negCommitCase struct {
	name string
	want error
	// why, if set, must appear in the error: several checks share
	// ErrInvalidCommit and ErrInvalidProposal, and the case must fail the
	// one it targets.
	why   string
	forge func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage
}

var negCommitCases = []negCommitCase{
	{
		// The membership tag covers the signature, so a flipped signature
		// byte is caught by the tag before the signature is even checked.
		name: "signature corrupted",
		want: ErrBadMembershipTag,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Auth.Signature[len(pm.Auth.Signature)/2] ^= 0x01
			return negWrap(pm)
		},
	},
	{
		name: "signature corrupted, membership tag recomputed",
		want: ErrBadSignature,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Auth.Signature[0] ^= 0x80
			negRetag(t, f.a, pm)
			return negWrap(pm)
		},
	},
	{
		name: "content changed, membership tag recomputed, not re-signed",
		want: ErrBadSignature,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Content.AuthenticatedData = []byte("smuggled")
			negRetag(t, f.a, pm)
			return negWrap(pm)
		},
	},
	{
		name: "membership tag corrupted",
		want: ErrBadMembershipTag,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.MembershipTag[0] ^= 0x01
			return negWrap(pm)
		},
	},
	{
		name: "membership tag truncated",
		want: ErrBadMembershipTag,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.MembershipTag = pm.MembershipTag[:len(pm.MembershipTag)-1]
			return negWrap(pm)
		},
	},
	{
		name: "replay of the previous epoch's commit",
		want: ErrWrongEpoch,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			return negDecode(t, f.prev)
		},
	},
	{
		name: "commit for a future epoch, re-signed",
		want: ErrWrongEpoch,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Content.Epoch++
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "commit for another group",
		want: ErrWrongGroup,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Content.GroupID = append(bytes.Clone(pm.Content.GroupID), 'x')
			return negWrap(pm)
		},
	},
	{
		name: "sender is not a member",
		want: ErrUnknownSender,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Content.Sender.LeafIndex = 7
			return negWrap(pm)
		},
	},
	{
		name: "bad confirmation tag, membership tag recomputed",
		want: ErrBadConfirmationTag,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Auth.ConfirmationTag[3] ^= 0x10
			negRetag(t, f.a, pm)
			return negWrap(pm)
		},
	},
	{
		name: "confirmation tag of the wrong length",
		want: ErrInvalidCommit,
		why:  "confirmation tag",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Auth.ConfirmationTag = pm.Auth.ConfirmationTag[:8]
			negRetag(t, f.a, pm)
			return negWrap(pm)
		},
	},
	{
		name: "UpdatePath leaf reuses the committer's encryption key",
		want: ErrInvalidCommit,
		why:  "reuses its encryption key",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			old := f.a.g.Member(f.a.g.OwnLeaf()).EncryptionKey
			pm.Content.Commit.Path.LeafNode.EncryptionKey = bytes.Clone(old)
			negResignLeaf(t, f.a, pm)
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "UpdatePath node reuses the receiver's leaf key",
		want: ErrInvalidCommit,
		why:  "reuses an encryption key",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Content.Commit.Path.Nodes[0].EncryptionKey = bytes.Clone(f.b.g.Member(f.b.g.OwnLeaf()).EncryptionKey)
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "UpdatePath leaf with a bad parent hash",
		want: ErrInvalidCommit,
		why:  "parent_hash",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Content.Commit.Path.LeafNode.ParentHash[0] ^= 0x01
			negResignLeaf(t, f.a, pm)
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "UpdatePath leaf signature broken",
		want: ErrInvalidCommit,
		why:  "signature",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Content.Commit.Path.LeafNode.Signature[1] ^= 0x01
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "UpdatePath leaf with update source",
		want: ErrInvalidCommit,
		why:  "source",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			leaf := &pm.Content.Commit.Path.LeafNode
			leaf.LeafNodeSource = LeafNodeSourceUpdate
			leaf.ParentHash = nil
			negResignLeaf(t, f.a, pm)
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "UpdatePath with an extra node",
		want: ErrInvalidCommit,
		why:  "filtered direct path",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			path := pm.Content.Commit.Path
			path.Nodes = append(path.Nodes, path.Nodes[0])
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "self-update without a path",
		want: ErrInvalidCommit,
		why:  "path required",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			pm.Content.Commit.Path = nil
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "commit references an unknown proposal",
		want: ErrUnknownProposal,
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			ref := make([]byte, f.s.Nh())
			rand.Read(ref)
			c := pm.Content.Commit
			c.Proposals = append(c.Proposals, ProposalOrRef{Type: ProposalOrRefReference, Reference: ref})
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "commit removes the committer",
		want: ErrInvalidProposal,
		why:  "removes the committer",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			c := pm.Content.Commit
			c.Proposals = append(c.Proposals, ProposalOrRef{Type: ProposalOrRefProposal,
				Proposal: &Proposal{ProposalType: ProposalRemove, Remove: &Remove{Removed: f.a.g.OwnLeaf()}}})
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "commit removes a blank leaf",
		want: ErrInvalidProposal,
		why:  "blank or absent",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			c := pm.Content.Commit
			c.Proposals = append(c.Proposals, ProposalOrRef{Type: ProposalOrRefProposal,
				Proposal: &Proposal{ProposalType: ProposalRemove, Remove: &Remove{Removed: 5}}})
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "commit adds an existing member (its own KeyPackage)",
		want: ErrInvalidProposal,
		why:  "already in the group",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			c := pm.Content.Commit
			c.Proposals = append(c.Proposals, ProposalOrRef{Type: ProposalOrRefProposal,
				Proposal: &Proposal{ProposalType: ProposalAdd, Add: &Add{KeyPackage: *f.kpB}}})
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "commit adds an existing member (fresh KeyPackage, same signature key)",
		want: ErrInvalidProposal,
		why:  "already in the group",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			kp, _, _, err := NewKeyPackage(f.s, f.a.sigPriv, newCredential("a"), KeyPackageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pm := negPublic(t, genuine)
			c := pm.Content.Commit
			c.Proposals = append(c.Proposals, ProposalOrRef{Type: ProposalOrRefProposal,
				Proposal: &Proposal{ProposalType: ProposalAdd, Add: &Add{KeyPackage: *kp}}})
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "commit includes an Update by the committer",
		want: ErrInvalidProposal,
		why:  "Update from the committer",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			c := pm.Content.Commit
			leaf := *f.a.g.Member(f.a.g.OwnLeaf())
			c.Proposals = append(c.Proposals, ProposalOrRef{Type: ProposalOrRefProposal,
				Proposal: &Proposal{ProposalType: ProposalUpdate, Update: &Update{LeafNode: leaf}}})
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "commit includes an ExternalInit",
		want: ErrInvalidProposal,
		why:  "ExternalInit",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			c := pm.Content.Commit
			c.Proposals = append(c.Proposals, ProposalOrRef{Type: ProposalOrRefProposal,
				Proposal: &Proposal{ProposalType: ProposalExternalInit, ExternalInit: &ExternalInit{KEMOutput: []byte{1}}}})
			return negReframe(t, f.a, pm)
		},
	},
	{
		name: "commit includes two GroupContextExtensions",
		want: ErrInvalidProposal,
		why:  "several GroupContextExtensions",
		forge: func(t *testing.T, f *negFixture, genuine []byte) *MLSMessage {
			pm := negPublic(t, genuine)
			c := pm.Content.Commit
			gce := ProposalOrRef{Type: ProposalOrRefProposal,
				Proposal: &Proposal{ProposalType: ProposalGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{}}}
			c.Proposals = append(c.Proposals, gce, gce)
			return negReframe(t, f.a, pm)
		},
	},
}

func TestNegativeCommits(t *testing.T) {
	for _, id := range negSuites {
		s, _ := Suite(id)
		t.Run(s.Name, func(t *testing.T) {
			for _, tc := range negCommitCases {
				t.Run(tc.name, func(t *testing.T) {
					f := newNegFixture(t, id)
					res, err := f.a.g.SelfUpdate()
					if err != nil {
						t.Fatal(err)
					}
					genuine := negEncode(t, res.Commit)
					bad := tc.forge(t, f, genuine)
					// What b receives went over the wire.
					badBytes := negEncode(t, bad)
					if bytes.Equal(badBytes, genuine) {
						t.Fatal("the forgery is the genuine commit")
					}

					before := negSnap(t, f.b.g)
					got, err := f.b.g.Process(negDecode(t, badBytes))
					if err == nil {
						t.Errorf("forged commit accepted: %+v", got)
					} else if !errors.Is(err, tc.want) {
						t.Errorf("got error %q, want %q", err, tc.want)
					} else if !strings.Contains(err.Error(), tc.why) {
						t.Errorf("got error %q, want one about %q", err, tc.why)
					}
					if f.b.g.Removed() {
						t.Fatal("receiver marked itself removed")
					}
					if err != nil {
						before.check(t, f.b.g, "rejected commit")
					}
					if t.Failed() {
						return
					}

					// The genuine commit still goes through.
					if _, err := f.b.g.Process(negDecode(t, genuine)); err != nil {
						t.Fatalf("genuine commit after the forgery: %v", err)
					}
					if err := f.a.g.MergePendingCommit(); err != nil {
						t.Fatal(err)
					}
					assertAgree(t, []*member{f.a, f.b})
				})
			}
		})
	}
}

// TestNegativeOwnCommit: a member never processes its own commit (it merges
// it instead).
func TestNegativeOwnCommit(t *testing.T) {
	for _, id := range negSuites {
		s, _ := Suite(id)
		t.Run(s.Name, func(t *testing.T) {
			f := newNegFixture(t, id)
			res, err := f.a.g.SelfUpdate()
			if err != nil {
				t.Fatal(err)
			}
			before := negSnap(t, f.a.g)
			if _, err := f.a.g.Process(roundTrip(t, res.Commit)); !errors.Is(err, ErrOwnCommit) {
				t.Fatalf("own commit: got %v, want %v", err, ErrOwnCommit)
			}
			before.check(t, f.a.g, "own commit")
			if _, err := f.b.g.Process(roundTrip(t, res.Commit)); err != nil {
				t.Fatal(err)
			}
			if err := f.a.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			assertAgree(t, []*member{f.a, f.b})
		})
	}
}

func TestNegativeWelcome(t *testing.T) {
	for _, id := range negSuites {
		s, _ := Suite(id)
		t.Run(s.Name, func(t *testing.T) {
			a := newCreator(t, s, "a")
			kp, secrets := newJoiner(t, s, "b")
			otherKP, otherSecrets := newJoiner(t, s, "c")
			res, err := a.g.AddMember(kp)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			welcome := negEncode(t, res.Welcome)

			// A KeyPackage the Welcome does not address.
			if g, err := JoinFromWelcome(negDecode(t, welcome), otherKP, otherSecrets, nil, GroupConfig{}); !errors.Is(err, ErrNoMatchingKeyPackage) {
				t.Errorf("unknown KeyPackage: got %v (group %v), want %v", err, g != nil, ErrNoMatchingKeyPackage)
			}
			// The right KeyPackage with the wrong init key.
			wrongKeys := *secrets
			wrongKeys.InitPriv = otherSecrets.InitPriv
			if g, err := JoinFromWelcome(negDecode(t, welcome), kp, &wrongKeys, nil, GroupConfig{}); err == nil {
				t.Errorf("Welcome opened with another init key (group %v)", g != nil)
			}
			// A Welcome whose GroupInfo ciphertext was tampered with.
			m := negDecode(t, welcome)
			m.Welcome.EncryptedGroupInfo[len(m.Welcome.EncryptedGroupInfo)-1] ^= 0x01
			if _, err := JoinFromWelcome(roundTrip(t, m), kp, secrets, nil, GroupConfig{}); err == nil {
				t.Error("Welcome with a tampered GroupInfo accepted")
			}
			// A Welcome for another suite than the KeyPackage's.
			m = negDecode(t, welcome)
			m.Welcome.CipherSuite = MLS128DHKEMP256AES128GCMSHA256P256
			if _, err := JoinFromWelcome(roundTrip(t, m), kp, secrets, nil, GroupConfig{}); err == nil {
				t.Error("Welcome for another suite accepted")
			}

			// None of that spoiled the genuine join.
			g, err := JoinFromWelcome(negDecode(t, welcome), kp, secrets, nil, GroupConfig{})
			if err != nil {
				t.Fatalf("genuine Welcome after the forgeries: %v", err)
			}
			assertAgree(t, []*member{a, {name: "b", g: g, sigPriv: secrets.SignaturePriv}})
		})
	}
}

func TestNegativeApplicationMessages(t *testing.T) {
	for _, id := range negSuites {
		s, _ := Suite(id)
		t.Run(s.Name, func(t *testing.T) {
			t.Run("replay", func(t *testing.T) {
				f := newNegFixture(t, id)
				msg, err := f.a.g.SealApplication([]byte("once"), nil)
				if err != nil {
					t.Fatal(err)
				}
				enc := negEncode(t, msg)
				if r, err := f.b.g.Process(negDecode(t, enc)); err != nil || string(r.ApplicationData) != "once" {
					t.Fatalf("first delivery: %+v, %v", r, err)
				}
				before := negSnap(t, f.b.g)
				r, err := f.b.g.Process(negDecode(t, enc))
				if err == nil {
					t.Fatalf("replayed application message accepted: %q", r.ApplicationData)
				}
				if !errors.Is(err, ErrGenerationConsumed) {
					t.Errorf("replay: got %v, want %v", err, ErrGenerationConsumed)
				}
				before.check(t, f.b.g, "replay")
				negCheckStillWorks(t, f)
			})
			t.Run("previous epoch", func(t *testing.T) {
				f := newNegFixture(t, id)
				msg, err := f.a.g.SealApplication([]byte("late"), nil)
				if err != nil {
					t.Fatal(err)
				}
				enc := negEncode(t, msg)
				commitAndDeliver(t, f.a, []*member{f.b})
				before := negSnap(t, f.b.g)
				if _, err := f.b.g.Process(negDecode(t, enc)); !errors.Is(err, ErrWrongEpoch) {
					t.Errorf("message of the previous epoch: got %v, want %v", err, ErrWrongEpoch)
				}
				before.check(t, f.b.g, "old-epoch message")
				negCheckStillWorks(t, f)
			})
			t.Run("future epoch", func(t *testing.T) {
				f := newNegFixture(t, id)
				// b is left behind: a and a third party's view moved on.
				res, err := f.a.g.SelfUpdate()
				if err != nil {
					t.Fatal(err)
				}
				if err := f.a.g.MergePendingCommit(); err != nil {
					t.Fatal(err)
				}
				msg, err := f.a.g.SealApplication([]byte("early"), nil)
				if err != nil {
					t.Fatal(err)
				}
				before := negSnap(t, f.b.g)
				if _, err := f.b.g.Process(roundTrip(t, msg)); !errors.Is(err, ErrWrongEpoch) {
					t.Errorf("message of the next epoch: got %v, want %v", err, ErrWrongEpoch)
				}
				before.check(t, f.b.g, "next-epoch message")
				if _, err := f.b.g.Process(roundTrip(t, res.Commit)); err != nil {
					t.Fatal(err)
				}
				if r, err := f.b.g.Process(roundTrip(t, msg)); err != nil || string(r.ApplicationData) != "early" {
					t.Fatalf("message once in its epoch: %+v, %v", r, err)
				}
			})
			t.Run("tampered ciphertext", func(t *testing.T) {
				f := newNegFixture(t, id)
				msg, err := f.a.g.SealApplication([]byte("data"), []byte("ad"))
				if err != nil {
					t.Fatal(err)
				}
				enc := negEncode(t, msg)
				saved := negSnap(t, f.b.g)
				// Nobody needs a key for these: an attacker on the path
				// can inject them ahead of the genuine message. Each runs
				// against a fresh copy of b.
				for _, mut := range []struct {
					name   string
					mutate func(pm *PrivateMessage)
				}{
					{"sender data sample", func(pm *PrivateMessage) { pm.Ciphertext[0] ^= 1 }},
					{"content ciphertext tail", func(pm *PrivateMessage) { pm.Ciphertext[len(pm.Ciphertext)-1] ^= 1 }},
					{"encrypted sender data", func(pm *PrivateMessage) { pm.EncryptedSenderData[0] ^= 1 }},
					{"authenticated data", func(pm *PrivateMessage) { pm.AuthenticatedData = []byte("AD") }},
				} {
					t.Run(mut.name, func(t *testing.T) {
						b := negRestore(t, saved.state)
						m := negDecode(t, enc)
						mut.mutate(m.PrivateMessage)
						if _, err := b.Process(roundTrip(t, m)); !errors.Is(err, ErrDecrypt) {
							t.Errorf("got %v, want %v", err, ErrDecrypt)
						}
						saved.check(t, b, "tampered message")
						if r, err := b.Process(negDecode(t, enc)); err != nil || string(r.ApplicationData) != "data" {
							t.Errorf("genuine message after the forgery: %+v, %v", r, err)
						}
					})
				}
			})
			t.Run("application data in a PublicMessage", func(t *testing.T) {
				f := newNegFixture(t, id)
				content := &FramedContent{GroupID: f.a.g.GroupID(), Epoch: f.a.g.Epoch(),
					Sender:      Sender{SenderType: SenderTypeMember, LeafIndex: f.a.g.OwnLeaf()},
					ContentType: ContentTypeApplication, ApplicationData: []byte("clear")}
				ac, err := f.s.SignContent(f.a.sigPriv, WireFormatPublicMessage, content, &f.a.g.state.ctx)
				if err != nil {
					t.Fatal(err)
				}
				pm := &PublicMessage{Content: ac.Content, Auth: ac.Auth}
				negRetag(t, f.a, pm)
				before := negSnap(t, f.b.g)
				if _, err := f.b.g.Process(roundTrip(t, negWrap(pm))); !errors.Is(err, errApplicationInPublic) {
					t.Errorf("got %v, want %v", err, errApplicationInPublic)
				}
				before.check(t, f.b.g, "public application message")
				negCheckStillWorks(t, f)
			})
		})
	}
}

// negRestore restores a saved group state.
func negRestore(t testing.TB, state []byte) *Group {
	t.Helper()
	g, err := UnmarshalGroup(state, GroupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// negCheckStillWorks checks that the fixture's members still talk: an
// application message each way, and a commit.
func negCheckStillWorks(t *testing.T, f *negFixture) {
	t.Helper()
	for _, p := range [][2]*member{{f.a, f.b}, {f.b, f.a}} {
		msg, err := p[0].g.SealApplication([]byte("still here"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := p[1].g.Process(roundTrip(t, msg)); err != nil || string(r.ApplicationData) != "still here" {
			t.Fatalf("%s -> %s after the rejection: %+v, %v", p[0].name, p[1].name, r, err)
		}
	}
	commitAndDeliver(t, f.b, []*member{f.a})
	assertAgree(t, []*member{f.a, f.b})
}

// TestNegativePrivateCommits frames commits as PrivateMessages (the
// GroupConfig.HandshakeWireFormat option) and checks that a rejected commit
// leaves the receiver unchanged there too: a copy tampered with on the path
// must not stop the genuine commit, and a commit rejected for a local reason
// (here: an external PSK not provisioned yet) must be accepted when retried
// once the reason is gone. The PublicMessage framing runs as the control.
func TestNegativePrivateCommits(t *testing.T) {
	for _, id := range negSuites {
		s, _ := Suite(id)
		for _, wf := range []WireFormat{WireFormatPublicMessage, WireFormatPrivateMessage} {
			name := s.Name + "/public"
			if wf == WireFormatPrivateMessage {
				name = s.Name + "/private"
			}
			t.Run(name+"/tampered on the path", func(t *testing.T) {
				f := newNegFixture(t, id)
				f.a.g.cfg.HandshakeWireFormat = wf
				res, err := f.a.g.SelfUpdate()
				if err != nil {
					t.Fatal(err)
				}
				genuine := negEncode(t, res.Commit)
				m := negDecode(t, genuine)
				if wf == WireFormatPrivateMessage {
					m.PrivateMessage.AuthenticatedData = []byte("x")
				} else {
					m.PublicMessage.Content.AuthenticatedData = []byte("x")
				}
				before := negSnap(t, f.b.g)
				if _, err := f.b.g.Process(roundTrip(t, m)); err == nil {
					t.Fatal("tampered commit accepted")
				}
				before.check(t, f.b.g, "tampered commit")
				if _, err := f.b.g.Process(negDecode(t, genuine)); err != nil {
					t.Fatalf("genuine commit after the tampered copy: %v", err)
				}
				if err := f.a.g.MergePendingCommit(); err != nil {
					t.Fatal(err)
				}
				assertAgree(t, []*member{f.a, f.b})
			})
			t.Run(name+"/retried after a local failure", func(t *testing.T) {
				f := newNegFixture(t, id)
				f.a.g.cfg.HandshakeWireFormat = wf
				pskID, psk := []byte("operator-psk"), bytes.Repeat([]byte{7}, s.Nh())
				f.a.g.cfg.ExternalPSKs = func(id []byte) ([]byte, bool) { return psk, bytes.Equal(id, pskID) }
				provisioned := false
				f.b.g.cfg.ExternalPSKs = func(id []byte) ([]byte, bool) { return psk, provisioned && bytes.Equal(id, pskID) }
				nonce := make([]byte, s.Nh())
				rand.Read(nonce)
				res, err := f.a.g.Commit([]Proposal{{ProposalType: ProposalPSK,
					PreSharedKey: &PreSharedKey{PSK: PreSharedKeyID{Type: PSKExternal, PSKID: pskID, Nonce: nonce}}}})
				if err != nil {
					t.Fatal(err)
				}
				genuine := negEncode(t, res.Commit)
				before := negSnap(t, f.b.g)
				if _, err := f.b.g.Process(negDecode(t, genuine)); err == nil {
					t.Fatal("commit with an unknown PSK accepted")
				}
				before.check(t, f.b.g, "commit with an unknown PSK")
				provisioned = true
				if _, err := f.b.g.Process(negDecode(t, genuine)); err != nil {
					t.Fatalf("commit retried once the PSK is known: %v", err)
				}
				if err := f.a.g.MergePendingCommit(); err != nil {
					t.Fatal(err)
				}
				assertAgree(t, []*member{f.a, f.b})
			})
		}
	}
}
