package mls

import (
	"bytes"
	"encoding/base64"
	"os"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

// Fuzz targets for the two entry points of the Group API that take bytes
// from the network: Process (for commits) and JoinFromWelcome.
//
// Each target builds a small fixture of genuine messages and the receiver's
// state before each of them, then checks for every input that nothing
// panics and that only the genuine messages are accepted.
//
// The fixture cannot be rebuilt identically: Go 1.26's crypto draws from
// crypto/rand whatever reader it is handed, testing/cryptotest's
// SetGlobalRandom needs a *testing.T (a fuzz setup only has the *testing.F),
// and a fuzz setup cannot fix the GREASE values NewKeyPackage draws from
// crypto/rand either. But the fuzzing
// engine runs the setup in the coordinator and again in every worker
// process, and seeds the coordinator adds are only useful if the workers
// hold the same group. So the coordinator builds the fixture once and hands
// it to its workers in an environment variable (workers inherit the
// coordinator's environment as it is when f.Fuzz starts).

// fzShared returns the fixture published under env by the coordinating
// process, or builds it with build and publishes it for the workers.
func fzShared(f *testing.F, env string, build func() []byte) []byte {
	f.Helper()
	if enc := os.Getenv(env); enc != "" {
		if b, err := base64.StdEncoding.DecodeString(enc); err == nil {
			return b
		}
	}
	b := build()
	f.Setenv(env, base64.StdEncoding.EncodeToString(b))
	return b
}

// fzCommitFixture is a two-member group (three for one epoch) in which a
// (leaf 0) commits and b (leaf 1) receives.
type fzCommitFixture struct {
	committerSigPriv []byte
	steps            []fzCommitStep
}

// fzCommitStep is one epoch: b's state before the commit, the commit, and
// the epoch authenticator b must reach by processing it.
type fzCommitStep struct {
	epoch     uint64
	state     []byte
	commit    []byte
	afterAuth []byte
}

const fzCommitEnv = "CURRENT_MLS_FUZZ_PROCESS_COMMIT_FIXTURE"

func buildFzCommitFixture(tb testing.TB) []byte {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	a := newCreator(tb, s, "a")
	b := add(tb, s, a, nil, "b")
	fx := &fzCommitFixture{committerSigPriv: a.sigPriv}
	step := func(commit func() (*CommitResult, error)) *CommitResult {
		state, err := b.g.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		epoch := b.g.Epoch()
		res, err := commit()
		if err != nil {
			tb.Fatal(err)
		}
		enc, err := marshalMessage(res.Commit)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := b.g.Process(decodeMessageTB(tb, enc)); err != nil {
			tb.Fatal(err)
		}
		if err := a.g.MergePendingCommit(); err != nil {
			tb.Fatal(err)
		}
		assertAgree(tb, []*member{a, b})
		fx.steps = append(fx.steps, fzCommitStep{epoch: epoch, state: state, commit: enc, afterAuth: b.g.EpochAuthenticator()})
		return res
	}
	// A self-update, a GroupContextExtensions proposal, an Add, a
	// self-update framed as a PrivateMessage and a Remove.
	step(a.g.SelfUpdate)
	step(func() (*CommitResult, error) {
		return a.g.Commit([]Proposal{{ProposalType: ProposalGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{}}})
	})
	kp, _ := newJoiner(tb, s, "c")
	step(func() (*CommitResult, error) { return a.g.AddMember(kp) })
	a.g.cfg.HandshakeWireFormat = WireFormatPrivateMessage
	step(a.g.SelfUpdate)
	a.g.cfg.HandshakeWireFormat = WireFormatPublicMessage
	step(func() (*CommitResult, error) { return a.g.RemoveMember(2) })

	w := wire.NewWriter(nil)
	w.Opaque(fx.committerSigPriv)
	w.Vector(func(w *wire.Writer) {
		for _, st := range fx.steps {
			w.U64(st.epoch)
			w.Opaque(st.state)
			w.Opaque(st.commit)
			w.Opaque(st.afterAuth)
		}
	})
	enc, err := w.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

func parseFzCommitFixture(tb testing.TB, data []byte) *fzCommitFixture {
	fx := new(fzCommitFixture)
	r := wire.NewReader(data)
	fx.committerSigPriv = r.Opaque()
	r.Vector(func(r *wire.Reader) {
		fx.steps = append(fx.steps, fzCommitStep{epoch: r.U64(), state: r.Opaque(), commit: r.Opaque(), afterAuth: r.Opaque()})
	})
	if err := r.Finish(); err != nil || len(fx.steps) == 0 {
		tb.Fatalf("bad commit fixture (%d steps): %v", len(fx.steps), err)
	}
	return fx
}

// fzAuthenticatedContent encodes what a commit's confirmation tag covers
// (with the tag itself): the content, signed for a PublicMessage.
func fzAuthenticatedContent(pm *PublicMessage) ([]byte, error) {
	return wire.Marshal(&AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth})
}

// FuzzProcessCommit feeds arbitrary MLSMessages to a receiver restored from
// the state it had before one of the genuine commits (the one of the
// message's epoch, else the first). Properties:
//   - Process never panics;
//   - it succeeds only on the exact encoding of that epoch's genuine commit,
//     and then reaches the same epoch as the genuine processing did;
//   - a rejected PublicMessage leaves the receiver's state unchanged.
//
// A mutated commit almost never gets past the membership tag, so each
// PublicMessage commit from the committer is then also re-signed (content
// and UpdatePath leaf) with the committer's key and re-tagged with the
// epoch's membership key: that drives the mutation into proposal
// validation, UpdatePath merging and decryption and the key schedule. Such
// a message may only succeed if its content and signature are exactly the
// genuine commit's (the confirmation tag covers both).
func FuzzProcessCommit(f *testing.F) {
	fx := parseFzCommitFixture(f, fzShared(f, fzCommitEnv, func() []byte { return buildFzCommitFixture(f) }))
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	genuineAC := make([][]byte, len(fx.steps))
	for i, st := range fx.steps {
		f.Add(st.commit)
		if m := decodeMessageTB(f, st.commit); m.PublicMessage != nil {
			enc, err := fzAuthenticatedContent(m.PublicMessage)
			if err != nil {
				f.Fatal(err)
			}
			genuineAC[i] = enc
		}
	}
	restore := func(t testing.TB, i int) *Group {
		g, err := UnmarshalGroup(fx.steps[i].state, GroupConfig{})
		if err != nil {
			t.Fatalf("restoring the receiver of step %d: %v", i, err)
		}
		return g
	}
	// Every process (coordinator and workers) checks that it holds a
	// working fixture: seeds that fail would hide the success path.
	for i, st := range fx.steps {
		g := restore(f, i)
		if _, err := g.Process(decodeMessageTB(f, st.commit)); err != nil || !bytes.Equal(g.EpochAuthenticator(), st.afterAuth) {
			f.Fatalf("genuine commit %d does not apply to its restored receiver: %v", i, err)
		}
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var msg MLSMessage
		if wire.Unmarshal(data, &msg) != nil {
			return
		}
		var epoch uint64
		switch {
		case msg.PublicMessage != nil:
			epoch = msg.PublicMessage.Content.Epoch
		case msg.PrivateMessage != nil:
			epoch = msg.PrivateMessage.Epoch
		}
		step := 0
		for i, st := range fx.steps {
			if st.epoch == epoch {
				step = i
			}
		}
		st := fx.steps[step]

		g := restore(t, step)
		_, err := g.Process(&msg)
		if err == nil {
			if !bytes.Equal(data, st.commit) {
				t.Fatalf("Process accepted a message that is not the genuine commit of epoch %d:\n%x", st.epoch, data)
			}
			if g.Epoch() != st.epoch+1 || !bytes.Equal(g.EpochAuthenticator(), st.afterAuth) {
				t.Fatalf("the genuine commit of epoch %d led to another state", st.epoch)
			}
		} else if msg.PublicMessage != nil {
			// (A PrivateMessage that decrypts consumes its ratchet key
			// even when rejected; TestNegativePrivateCommits covers that.)
			if after, _ := g.MarshalBinary(); !bytes.Equal(after, st.state) {
				t.Fatalf("rejected PublicMessage (%v) changed the receiver's state", err)
			}
		}

		// Re-signed and re-tagged, as an insider could.
		pm := msg.PublicMessage
		if pm == nil || pm.Content.ContentType != ContentTypeCommit || pm.Content.Commit == nil ||
			pm.Content.Sender.SenderType != SenderTypeMember || pm.Content.Sender.LeafIndex != 0 || pm.Content.Epoch != st.epoch {
			return
		}
		g = restore(t, step)
		if path := pm.Content.Commit.Path; path != nil {
			if path.LeafNode.Sign(s, fx.committerSigPriv, g.state.ctx.GroupID, 0) != nil {
				return
			}
		}
		ac, err := s.SignContent(fx.committerSigPriv, WireFormatPublicMessage, &pm.Content, &g.state.ctx)
		if err != nil {
			return
		}
		pm.Auth.Signature = ac.Auth.Signature
		if pm.MembershipTag, err = g.state.keys.membershipTag(&pm.Content, &pm.Auth); err != nil {
			return
		}
		r, err := g.Process(&msg)
		if err != nil {
			if after, _ := g.MarshalBinary(); !bytes.Equal(after, st.state) {
				t.Fatalf("rejected re-signed commit (%v) changed the receiver's state", err)
			}
			return
		}
		if r.Removed && fzRemoves(pm.Content.Commit, 1) {
			// The committer may remove us; we cannot check the
			// confirmation tag of an epoch we do not enter.
			return
		}
		got, err := fzAuthenticatedContent(pm)
		if err != nil || genuineAC[step] == nil || !bytes.Equal(got, genuineAC[step]) {
			t.Fatalf("Process accepted a re-signed commit that differs from the genuine commit of epoch %d:\n%x", st.epoch, data)
		}
		if !bytes.Equal(g.EpochAuthenticator(), st.afterAuth) {
			t.Fatalf("the re-signed genuine commit of epoch %d led to another state", st.epoch)
		}
	})
}

// fzRemoves reports whether c removes leaf by value.
func fzRemoves(c *Commit, leaf LeafIndex) bool {
	for _, p := range c.Proposals {
		if p.Proposal != nil && p.Proposal.Remove != nil && p.Proposal.Remove.Removed == leaf {
			return true
		}
	}
	return false
}

// fzWelcomeFixture is one KeyPackage, its secrets, and genuine Welcomes
// addressed to it, each with the private key of the GroupInfo's signer.
type fzWelcomeFixture struct {
	kp         []byte
	secrets    KeyPackageSecrets
	welcomes   [][]byte
	signerPriv [][]byte
}

const fzWelcomeEnv = "CURRENT_MLS_FUZZ_JOIN_FROM_WELCOME_FIXTURE"

func buildFzWelcomeFixture(tb testing.TB) []byte {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	kp, secrets := newJoiner(tb, s, "joiner")
	var welcomes, signers [][]byte
	welcome := func(committer *member, res *CommitResult) {
		if err := committer.g.MergePendingCommit(); err != nil {
			tb.Fatal(err)
		}
		enc, err := marshalMessage(res.Welcome)
		if err != nil {
			tb.Fatal(err)
		}
		welcomes = append(welcomes, enc)
		signers = append(signers, committer.sigPriv)
	}
	// A two-member group; a three-member group the joiner enters as the
	// third (the Welcome carries a path secret); and a Welcome addressed
	// to two new members at once.
	a := newCreator(tb, s, "a")
	res, err := a.g.AddMember(kp)
	if err != nil {
		tb.Fatal(err)
	}
	welcome(a, res)

	a = newCreator(tb, s, "a2")
	b := add(tb, s, a, nil, "b2")
	res, err = b.g.AddMember(kp)
	if err != nil {
		tb.Fatal(err)
	}
	welcome(b, res)

	a = newCreator(tb, s, "a3")
	other, _ := newJoiner(tb, s, "other")
	res, err = a.g.Commit([]Proposal{{ProposalType: ProposalAdd, Add: &Add{KeyPackage: *other}}, {ProposalType: ProposalAdd, Add: &Add{KeyPackage: *kp}}})
	if err != nil {
		tb.Fatal(err)
	}
	welcome(a, res)

	kpEnc, err := wire.Marshal(kp)
	if err != nil {
		tb.Fatal(err)
	}
	w := wire.NewWriter(nil)
	w.Opaque(kpEnc)
	w.Opaque(secrets.InitPriv)
	w.Opaque(secrets.EncryptionPriv)
	w.Opaque(secrets.SignaturePriv)
	w.Vector(func(w *wire.Writer) {
		for i := range welcomes {
			w.Opaque(welcomes[i])
			w.Opaque(signers[i])
		}
	})
	enc, err := w.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

func parseFzWelcomeFixture(tb testing.TB, data []byte) *fzWelcomeFixture {
	fx := new(fzWelcomeFixture)
	r := wire.NewReader(data)
	fx.kp = r.Opaque()
	fx.secrets = KeyPackageSecrets{InitPriv: r.Opaque(), EncryptionPriv: r.Opaque(), SignaturePriv: r.Opaque()}
	r.Vector(func(r *wire.Reader) {
		fx.welcomes = append(fx.welcomes, r.Opaque())
		fx.signerPriv = append(fx.signerPriv, r.Opaque())
	})
	if err := r.Finish(); err != nil || len(fx.welcomes) == 0 {
		tb.Fatalf("bad Welcome fixture: %v", err)
	}
	return fx
}

// fzWelcomeParts is a genuine Welcome taken apart: what re-encrypting a
// GroupInfo into it needs, and the state joining it gives.
type fzWelcomeParts struct {
	welcome       *Welcome
	groupSecrets  *GroupSecrets
	welcomeSecret []byte
	groupInfo     []byte // MLSMessage carrying the decrypted GroupInfo
	groupID       []byte
	joined        []byte // MarshalBinary of the group joined from it
}

// FuzzJoinFromWelcome feeds arbitrary MLSMessages to JoinFromWelcome with a
// fixed KeyPackage. Properties: it never panics; it succeeds only on the
// exact bytes of a genuine Welcome for that KeyPackage, and then joins the
// group that Welcome describes; and it never modifies the KeyPackage or its
// secrets.
//
// Mutations of a Welcome die in HPKE or the AEAD, so an input that is an
// MLSMessage carrying a GroupInfo is also used as the plaintext of a
// genuine Welcome (the one for its group ID, else the first): re-signed
// with that GroupInfo's signer key and re-encrypted under its welcome
// secret and our init key, with its tree hash recomputed. That drives the
// mutation into the checks behind the encryption: signature, tree parsing
// and validation, path secret and confirmation tag. The GroupInfo's
// extensions are covered by the signature only, so a re-signed GroupInfo
// may differ from the genuine one; but if it is accepted, the joined group
// must be exactly the one the genuine Welcome gives.
func FuzzJoinFromWelcome(f *testing.F) {
	fx := parseFzWelcomeFixture(f, fzShared(f, fzWelcomeEnv, func() []byte { return buildFzWelcomeFixture(f) }))
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	var kp0 KeyPackage
	if err := wire.Unmarshal(fx.kp, &kp0); err != nil {
		f.Fatal(err)
	}
	ref, err := kp0.Ref(s)
	if err != nil {
		f.Fatal(err)
	}
	parts := make([]fzWelcomeParts, len(fx.welcomes))
	for i, enc := range fx.welcomes {
		// Every process (coordinator and workers) checks that its fixture
		// works: seeds that fail would hide the success path.
		secrets := fx.secrets
		g, err := JoinFromWelcome(decodeMessageTB(f, enc), &kp0, &secrets, nil, GroupConfig{})
		if err != nil {
			f.Fatalf("genuine Welcome %d does not join: %v", i, err)
		}
		p := &parts[i]
		if p.joined, err = g.MarshalBinary(); err != nil {
			f.Fatal(err)
		}
		p.welcome = decodeMessageTB(f, enc).Welcome
		egs, ok := p.welcome.FindSecrets(ref)
		if !ok {
			f.Fatalf("Welcome %d is not for our KeyPackage", i)
		}
		if p.groupSecrets, err = DecryptGroupSecrets(s, fx.secrets.InitPriv, &egs.EncryptedGroupSecrets, p.welcome.EncryptedGroupInfo); err != nil {
			f.Fatal(err)
		}
		if p.welcomeSecret, err = s.WelcomeSecret(p.groupSecrets.JoinerSecret, nil); err != nil {
			f.Fatal(err)
		}
		gi, err := DecryptGroupInfo(s, p.welcomeSecret, p.welcome.EncryptedGroupInfo)
		if err != nil {
			f.Fatal(err)
		}
		p.groupID = gi.GroupContext.GroupID
		if p.groupInfo, err = marshalMessage(&MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}); err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(p.groupInfo)
	}
	// reseal re-signs gi as the signer of Welcome i and encrypts it, with
	// that Welcome's group secrets, to our KeyPackage.
	reseal := func(t testing.TB, i int, gi *GroupInfo) *MLSMessage {
		p := &parts[i]
		if gi.Sign(s, fx.signerPriv[i]) != nil {
			return nil
		}
		encGI, err := EncryptGroupInfo(s, p.welcomeSecret, gi)
		if err != nil {
			return nil
		}
		ct, err := EncryptGroupSecrets(s, kp0.InitKey, p.groupSecrets, encGI)
		if err != nil {
			t.Fatal(err)
		}
		w := &Welcome{CipherSuite: s.ID, EncryptedGroupInfo: encGI,
			Secrets: []EncryptedGroupSecrets{{NewMember: ref, EncryptedGroupSecrets: ct}}}
		return &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatWelcome, Welcome: w}
	}
	for i := range parts {
		secrets := fx.secrets
		g, err := JoinFromWelcome(reseal(f, i, decodeMessageTB(f, parts[i].groupInfo).GroupInfo), &kp0, &secrets, nil, GroupConfig{})
		if err != nil {
			f.Fatalf("resealed GroupInfo %d does not join: %v", i, err)
		}
		if st, err := g.MarshalBinary(); err != nil || !bytes.Equal(st, parts[i].joined) {
			f.Fatalf("resealed GroupInfo %d joins another state (%v)", i, err)
		}
	}

	join := func(t *testing.T, msg *MLSMessage) (*Group, error) {
		var kp KeyPackage
		if err := wire.Unmarshal(fx.kp, &kp); err != nil {
			t.Fatal(err)
		}
		secrets := KeyPackageSecrets{InitPriv: bytes.Clone(fx.secrets.InitPriv),
			EncryptionPriv: bytes.Clone(fx.secrets.EncryptionPriv), SignaturePriv: bytes.Clone(fx.secrets.SignaturePriv)}
		g, err := JoinFromWelcome(msg, &kp, &secrets, nil, GroupConfig{})
		if kpAfter, _ := wire.Marshal(&kp); !bytes.Equal(kpAfter, fx.kp) ||
			!bytes.Equal(secrets.InitPriv, fx.secrets.InitPriv) || !bytes.Equal(secrets.EncryptionPriv, fx.secrets.EncryptionPriv) ||
			!bytes.Equal(secrets.SignaturePriv, fx.secrets.SignaturePriv) {
			t.Fatalf("JoinFromWelcome (%v) modified the KeyPackage or its secrets", err)
		}
		return g, err
	}
	joinedState := func(t *testing.T, g *Group) []byte {
		st, err := g.MarshalBinary()
		if err != nil {
			t.Fatalf("joined group does not serialise: %v", err)
		}
		return st
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var msg MLSMessage
		if wire.Unmarshal(data, &msg) != nil {
			return
		}
		if g, err := join(t, &msg); err == nil {
			i := 0
			for i < len(fx.welcomes) && !bytes.Equal(data, fx.welcomes[i]) {
				i++
			}
			if i == len(fx.welcomes) {
				t.Fatalf("JoinFromWelcome accepted a message that is no genuine Welcome:\n%x", data)
			}
			if !bytes.Equal(joinedState(t, g), parts[i].joined) {
				t.Fatalf("genuine Welcome %d joined another group state", i)
			}
		}

		// The GroupInfo re-signed and re-encrypted, as the committer could.
		gi := msg.GroupInfo
		if gi == nil {
			return
		}
		i := 0
		for j := range parts {
			if bytes.Equal(gi.GroupContext.GroupID, parts[j].groupID) {
				i = j
			}
		}
		// The tree hash too, or any change to the tree stops there.
		if data, ok := gi.Extensions.Find(ExtRatchetTree); ok {
			var tree RatchetTree
			if wire.Unmarshal(data, &tree) == nil {
				if tree, err := NewRatchetTreeFromWire(tree); err == nil {
					if h, err := tree.TreeHash(s); err == nil {
						gi.GroupContext.TreeHash = h
					}
				}
			}
		}
		welcome := reseal(t, i, gi)
		if welcome == nil {
			return
		}
		g, err := join(t, welcome)
		if err != nil {
			return
		}
		if !bytes.Equal(joinedState(t, g), parts[i].joined) {
			t.Fatalf("a re-signed GroupInfo joined another group state than genuine Welcome %d:\n%x", i, data)
		}
	})
}
