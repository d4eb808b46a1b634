package mls

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// member is one test participant: its group state and keys.
type member struct {
	name    string
	g       *Group
	sigPriv []byte
}

func newCredential(name string) Credential {
	return Credential{CredentialType: CredentialBasic, Identity: []byte(name)}
}

// newJoiner makes a KeyPackage for a future member.
func newJoiner(t testing.TB, s *CipherSuite, name string) (*KeyPackage, *KeyPackageSecrets) {
	t.Helper()
	sigPriv, _, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	kp, initPriv, encPriv, err := NewKeyPackage(s, sigPriv, newCredential(name), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return kp, &KeyPackageSecrets{InitPriv: initPriv, EncryptionPriv: encPriv, SignaturePriv: sigPriv}
}

func newCreator(t testing.TB, s *CipherSuite, name string) *member {
	t.Helper()
	sigPriv, _, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup(s, []byte("group-"+name), sigPriv, newCredential(name), nil, GroupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &member{name: name, g: g, sigPriv: sigPriv}
}

// add has committer add a new member; every other existing member processes
// the commit and the new member joins from the Welcome.
func add(t testing.TB, s *CipherSuite, committer *member, others []*member, name string) *member {
	t.Helper()
	m, _ := addBy(t, s, committer, others, name, committer.g.AddMember)
	return m
}

// addBy is add with the commit made by commit, also returning it.
func addBy(t testing.TB, s *CipherSuite, committer *member, others []*member, name string, commit func(*KeyPackage) (*CommitResult, error)) (*member, *CommitResult) {
	t.Helper()
	kp, secrets := newJoiner(t, s, name)
	res, err := commit(kp)
	if err != nil {
		t.Fatalf("%s adds %s: %v", committer.name, name, err)
	}
	for _, o := range others {
		if _, err := o.g.Process(roundTrip(t, res.Commit)); err != nil {
			t.Fatalf("%s processes the Add commit: %v", o.name, err)
		}
	}
	if err := committer.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	g, err := JoinFromWelcome(roundTrip(t, res.Welcome), kp, secrets, nil, GroupConfig{})
	if err != nil {
		t.Fatalf("%s joins: %v", name, err)
	}
	return &member{name: name, g: g, sigPriv: secrets.SignaturePriv}, res
}

// roundTrip encodes and decodes a message, as the network would.
func roundTrip(t testing.TB, m *MLSMessage) *MLSMessage {
	t.Helper()
	b, err := marshalMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return decodeMessageTB(t, b)
}

// commitAndDeliver has committer self-update and every other member process.
func commitAndDeliver(t testing.TB, committer *member, others []*member) {
	t.Helper()
	res, err := committer.g.SelfUpdate()
	if err != nil {
		t.Fatalf("%s commits: %v", committer.name, err)
	}
	for _, o := range others {
		if _, err := o.g.Process(roundTrip(t, res.Commit)); err != nil {
			t.Fatalf("%s processes %s's commit in epoch %d: %v", o.name, committer.name, o.g.Epoch(), err)
		}
	}
	if err := committer.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
}

func assertAgree(t testing.TB, members []*member) {
	t.Helper()
	ref := members[0]
	want, err := ref.g.Export("MLS-TLS c ap traffic", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members[1:] {
		got, err := m.g.Export("MLS-TLS c ap traffic", nil, 32)
		if err != nil {
			t.Fatal(err)
		}
		if m.g.Epoch() != ref.g.Epoch() || !bytes.Equal(got, want) ||
			!bytes.Equal(m.g.EpochAuthenticator(), ref.g.EpochAuthenticator()) {
			t.Fatalf("%s and %s disagree in epoch %d/%d", ref.name, m.name, ref.g.Epoch(), m.g.Epoch())
		}
	}
}

func TestTwoPartyManyEpochs(t *testing.T) {
	epochs := 10000
	if testing.Short() {
		epochs = 200
	}
	for _, id := range []CipherSuiteID{0x0001, 0x0003, 0xF001} {
		s, _ := Suite(id)
		t.Run(s.Name, func(t *testing.T) {
			a := newCreator(t, s, "a")
			b := add(t, s, a, nil, "b")
			assertAgree(t, []*member{a, b})
			rng := rand.New(rand.NewPCG(uint64(id), 1))
			last := 0
			for e := 0; e < epochs; e++ {
				// Alternate, but sometimes let the same member commit twice.
				next := 1 - last
				if rng.IntN(4) == 0 {
					next = last
				}
				pair := []*member{a, b}
				commitAndDeliver(t, pair[next], []*member{pair[1-next]})
				last = next
				assertAgree(t, pair)
			}
			if got := a.g.Epoch(); got != uint64(epochs)+1 {
				t.Fatalf("ended in epoch %d, want %d", got, epochs+1)
			}
		})
	}
}

func TestGroupOfFiveAddsUpdatesRemoves(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	a := newCreator(t, s, "a")
	members := []*member{a}
	for _, name := range []string{"b", "c", "d", "e"} {
		committer := members[len(members)-1]
		var others []*member
		for _, m := range members {
			if m != committer {
				others = append(others, m)
			}
		}
		members = append(members, add(t, s, committer, others, name))
		assertAgree(t, members)
	}
	for round := 0; round < 10; round++ {
		committer := members[round%len(members)]
		var others []*member
		for _, m := range members {
			if m != committer {
				others = append(others, m)
			}
		}
		commitAndDeliver(t, committer, others)
		assertAgree(t, members)
	}
	// b removes c; c learns it was removed, the others carry on.
	b, c := members[1], members[2]
	res, err := b.g.RemoveMember(c.g.OwnLeaf())
	if err != nil {
		t.Fatal(err)
	}
	var rest []*member
	for _, m := range members {
		if m == b || m == c {
			continue
		}
		if _, err := m.g.Process(roundTrip(t, res.Commit)); err != nil {
			t.Fatalf("%s processes the Remove: %v", m.name, err)
		}
		rest = append(rest, m)
	}
	got, err := c.g.Process(roundTrip(t, res.Commit))
	if err != nil || !got.Removed || !c.g.Removed() {
		t.Fatalf("removed member: %+v, %v", got, err)
	}
	if _, err := c.g.Export("x", nil, 16); err == nil {
		t.Fatal("removed member can still export")
	}
	if err := b.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	rest = append(rest, b)
	assertAgree(t, rest)
	if len(b.g.Members()) != 4 {
		t.Fatalf("group has %d members after the removal, want 4", len(b.g.Members()))
	}
	// Application messages still flow among the remaining members.
	msg, err := rest[0].g.SealApplication([]byte("ping"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rest[1:] {
		r, err := m.g.Process(roundTrip(t, msg))
		if err != nil || string(r.ApplicationData) != "ping" || r.Kind != KindApplication {
			t.Fatalf("%s receives application data: %+v %v", m.name, r, err)
		}
	}
}

func TestGroupStateSurvivesRestart(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			a := newCreator(t, s, "a")
			b := add(t, s, a, nil, "b")
			commitAndDeliver(t, b, []*member{a})
			// a sends an application message, then saves and restarts.
			m1, err := a.g.SealApplication([]byte("before"), nil)
			if err != nil {
				t.Fatal(err)
			}
			saved, err := a.g.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			restored, err := UnmarshalGroup(saved, GroupConfig{})
			if err != nil {
				t.Fatal(err)
			}
			again, err := restored.MarshalBinary()
			if err != nil || !bytes.Equal(again, saved) {
				t.Fatalf("state does not re-encode identically (%v)", err)
			}
			a.g.Close()
			a.g = restored
			// The restored sender continues its ratchet: b reads both
			// messages, and keys are never reused.
			m2, err := a.g.SealApplication([]byte("after"), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []*MLSMessage{m1, m2} {
				if _, err := b.g.Process(roundTrip(t, m)); err != nil {
					t.Fatal(err)
				}
			}
			commitAndDeliver(t, a, []*member{b})
			commitAndDeliver(t, b, []*member{a})
			assertAgree(t, []*member{a, b})
		})
	}
}

func TestUnmarshalGroupRejectsCorruption(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	a := newCreator(t, s, "a")
	add(t, s, a, nil, "b")
	saved, err := a.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(saved); n += 7 {
		if _, err := UnmarshalGroup(saved[:n], GroupConfig{}); err == nil {
			t.Fatalf("truncated state of %d bytes accepted", n)
		}
	}
	bad := bytes.Clone(saved)
	bad[1] ^= 0xff
	if _, err := UnmarshalGroup(bad, GroupConfig{}); err == nil {
		t.Fatal("state with a bad magic accepted")
	}
}

// TestRestoredKeyCheckedAtUse: a restored group does not compare its
// private keys with the tree at the load (treekem_private.go, placedIn),
// so a saved leaf key that does not match the tree must be refused where
// it is used, decrypting the next commit's path secret, with an error and
// without changing the group; the same state with the right key resumes.
func TestRestoredKeyCheckedAtUse(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			a := newCreator(t, s, "a")
			b := add(t, s, a, nil, "b")
			commitAndDeliver(t, b, []*member{a})
			good, err := b.g.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			other, _, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			priv := b.g.state.priv
			saved := priv.EncryptionPriv
			priv.EncryptionPriv = other
			bad, err := b.g.MarshalBinary()
			priv.EncryptionPriv = saved
			if err != nil {
				t.Fatal(err)
			}
			res, err := a.g.SelfUpdate()
			if err != nil {
				t.Fatal(err)
			}
			restored, err := UnmarshalGroup(bad, GroupConfig{})
			if err != nil {
				t.Fatalf("placement is right, the load must pass: %v", err)
			}
			epoch := restored.Epoch()
			if _, err := restored.Process(roundTrip(t, res.Commit)); err == nil || !strings.Contains(err.Error(), "does not match") {
				t.Fatalf("commit to a restored group with a wrong leaf key: %v", err)
			}
			if restored.Epoch() != epoch {
				t.Fatal("a refused commit changed the epoch")
			}
			fine, err := UnmarshalGroup(good, GroupConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fine.Process(roundTrip(t, res.Commit)); err != nil {
				t.Fatalf("the right state refused the commit: %v", err)
			}
		})
	}
}

// TestMergeAndProcess: a resuming initiator's merge of its own commit and
// processing of the peer's in one step agrees with the peer, keeps no
// large parsed key afterwards, and after a commit that fails to process
// is merged and still takes the right one.
func TestMergeAndProcess(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			a := newCreator(t, s, "a")
			b := add(t, s, a, nil, "b")
			ours, err := b.g.SelfUpdate()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.g.Process(roundTrip(t, ours.Commit)); err != nil {
				t.Fatal(err)
			}
			theirs, err := a.g.SelfUpdate()
			if err != nil {
				t.Fatal(err)
			}
			if err := a.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			epoch := b.g.Epoch()
			forged := roundTrip(t, theirs.Commit)
			forged.PublicMessage.Auth.Signature = bytes.Clone(forged.PublicMessage.Auth.Signature)
			forged.PublicMessage.Auth.Signature[0] ^= 1
			if _, err := b.g.MergeAndProcess(forged); err == nil {
				t.Fatal("a commit with a bad signature was processed")
			}
			if b.g.Epoch() != epoch+1 {
				t.Fatalf("epoch %d after the merge, want %d", b.g.Epoch(), epoch+1)
			}
			if _, err := b.g.Process(roundTrip(t, theirs.Commit)); err != nil {
				t.Fatal(err)
			}
			assertAgree(t, []*member{a, b})
			noLargeParsed(t, b.g)

			// Straight through, as a resumption's response goes.
			ours, err = b.g.SelfUpdate()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.g.Process(roundTrip(t, ours.Commit)); err != nil {
				t.Fatal(err)
			}
			if theirs, err = a.g.SelfUpdate(); err != nil {
				t.Fatal(err)
			}
			if err := a.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			if _, err := b.g.MergeAndProcess(roundTrip(t, theirs.Commit)); err != nil {
				t.Fatal(err)
			}
			assertAgree(t, []*member{a, b})
			noLargeParsed(t, b.g)
			if _, err := b.g.MergeAndProcess(roundTrip(t, theirs.Commit)); !errors.Is(err, ErrNoPendingCommit) {
				t.Fatalf("without a pending commit: %v", err)
			}
		})
	}
}

// noLargeParsed fails if g's private state keeps a parsed key that is not
// a DHKEM key (treekem_private.go: only those are kept in an epoch).
func noLargeParsed(t *testing.T, g *Group) {
	t.Helper()
	for _, p := range g.state.priv.parsed {
		if p.sk != nil && !smallParsedKey(p.sk) {
			t.Fatalf("node %d keeps a parsed %#04x key", p.node, p.sk.KEM().ID())
		}
	}
}
