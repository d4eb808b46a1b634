package mls

import (
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

// Benchmarks of the two operations current's session layer runs per peer:
// the initial two-party handshake and the periodic key update. Messages go
// through their wire encoding, as they would between two daemons.
//
//	go test -run='^$' -bench='TwoParty' -benchtime=20x ./session/mls/
//
// (A fixed iteration count keeps the P-521 suite's run short.)

// BenchmarkTwoPartyHandshake measures one complete handshake: the joiner
// makes a KeyPackage, the creator makes the group and adds the joiner
// (commit and Welcome) and merges, and the joiner joins from the Welcome.
// The two long-term signature keys exist beforehand.
func BenchmarkTwoPartyHandshake(b *testing.B) {
	for _, s := range Suites() {
		b.Run(s.Name, func(b *testing.B) {
			creatorSig, _, err := s.GenerateSignatureKeyPair()
			if err != nil {
				b.Fatal(err)
			}
			joinerSig, _, err := s.GenerateSignatureKeyPair()
			if err != nil {
				b.Fatal(err)
			}
			creatorCred, joinerCred := newCredential("creator"), newCredential("joiner")
			groupID := []byte("bench-group")
			b.ReportAllocs()
			for b.Loop() {
				kp, initPriv, encPriv, err := NewKeyPackage(s, joinerSig, joinerCred, KeyPackageOptions{})
				if err != nil {
					b.Fatal(err)
				}
				kpBytes, err := wire.Marshal(kp)
				if err != nil {
					b.Fatal(err)
				}

				g, err := NewGroup(s, groupID, creatorSig, creatorCred, nil, GroupConfig{})
				if err != nil {
					b.Fatal(err)
				}
				var received KeyPackage
				if err := wire.Unmarshal(kpBytes, &received); err != nil {
					b.Fatal(err)
				}
				res, err := g.AddMember(&received)
				if err != nil {
					b.Fatal(err)
				}
				if err := g.MergePendingCommit(); err != nil {
					b.Fatal(err)
				}
				welcome, err := marshalMessage(res.Welcome)
				if err != nil {
					b.Fatal(err)
				}

				joined, err := JoinFromWelcome(decodeMessageTB(b, welcome), kp, &KeyPackageSecrets{InitPriv: initPriv, EncryptionPriv: encPriv, SignaturePriv: joinerSig}, nil, GroupConfig{})
				if err != nil {
					b.Fatal(err)
				}
				if joined.Epoch() != g.Epoch() {
					b.Fatalf("joined epoch %d, creator in %d", joined.Epoch(), g.Epoch())
				}
				zeroAll(initPriv, encPriv)
				g.Close()
				joined.Close()
			}
		})
	}
}

// BenchmarkTwoPartyUpdate measures one key update of a two-member group:
// a self-update commit is created, processed by the peer, and merged. The
// members take turns.
func BenchmarkTwoPartyUpdate(b *testing.B) {
	for _, s := range Suites() {
		b.Run(s.Name, func(b *testing.B) {
			a := newCreator(b, s, "a")
			peer := add(b, s, a, nil, "b")
			pair := [2]*member{a, peer}
			turn := 0
			b.ReportAllocs()
			for b.Loop() {
				committer, receiver := pair[turn], pair[1-turn]
				turn = 1 - turn
				res, err := committer.g.SelfUpdate()
				if err != nil {
					b.Fatal(err)
				}
				enc, err := marshalMessage(res.Commit)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := receiver.g.Process(decodeMessageTB(b, enc)); err != nil {
					b.Fatal(err)
				}
				if err := committer.g.MergePendingCommit(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			assertAgree(b, pair[:])
		})
	}
}

// BenchmarkUnmarshalGroup is the state load of a restart: a two-member
// group, after an update each, restored from MarshalBinary's output.
func BenchmarkUnmarshalGroup(b *testing.B) {
	for _, id := range []CipherSuiteID{MLS128DHKEMX25519AES128GCMSHA256Ed25519, MLS128MLKEM768X25519AES128GCMSHA256Ed25519} {
		s, _ := Suite(id)
		b.Run(s.Name, func(b *testing.B) {
			a := newCreator(b, s, "a")
			m := add(b, s, a, nil, "b")
			commitAndDeliver(b, m, []*member{a})
			commitAndDeliver(b, a, []*member{m})
			saved, err := a.g.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				g, err := UnmarshalGroup(saved, GroupConfig{})
				if err != nil {
					b.Fatal(err)
				}
				g.Close()
			}
		})
	}
}
