package session

import (
	"crypto/rand"
	"testing"

	"github.com/current-vpn/current/session/mls"
)

// The floor of a handshake responder, as bench/cmd/inprocess (floor.go)
// times it: the public-key operations that RFC 9420 leaves no responder
// (docs/protocol.md 7.7, pinned by TestResponderOpCount): the KeyPackage's
// and its leaf's signatures verified, the creator's leaf key pair
// generated and its leaf, the commit and the GroupInfo signed, and the
// group secrets encrypted to the init key (parsing it included). Timed
// here as well so that BenchmarkResponderHandshake can be read against it
// in the same `go test -bench` run.

// floorSignedSize is the length of the messages the floor signs and
// verifies, bench/cmd/inprocess's.
const floorSignedSize = 256

// floorSizes are the lengths of the messages a floor round verifies and
// signs, one per operation.
type floorSizes struct{ verify, sign []int }

// inprocessFloor is the floor of bench/cmd/inprocess: two verifications
// and three signatures of 256-byte messages.
var inprocessFloor = floorSizes{
	verify: []int{floorSignedSize, floorSignedSize},
	sign:   []int{floorSignedSize, floorSignedSize, floorSignedSize},
}

// floorInput is one floor round's inputs, fresh each round so that no
// cache of the engine (verified signatures, parsed public keys) can answer.
type floorInput struct {
	verifyMsgs, verifySigs, signMsgs [][]byte
	initPub                          []byte
}

func newFloorInput(tb testing.TB, s *mls.CipherSuite, k keyPair, sz floorSizes) *floorInput {
	in := &floorInput{}
	for _, n := range sz.verify {
		msg := make([]byte, n)
		rand.Read(msg)
		sig, err := s.Sign(k.priv, msg)
		if err != nil {
			tb.Fatal(err)
		}
		in.verifyMsgs, in.verifySigs = append(in.verifyMsgs, msg), append(in.verifySigs, sig)
	}
	for _, n := range sz.sign {
		msg := make([]byte, n)
		rand.Read(msg)
		in.signMsgs = append(in.signMsgs, msg)
	}
	var err error
	if _, in.initPub, err = s.GenerateHPKEKeyPair(); err != nil {
		tb.Fatal(err)
	}
	return in
}

// floorRound does one round of the floor's operations.
func floorRound(tb testing.TB, s *mls.CipherSuite, k keyPair, in *floorInput) {
	for n, msg := range in.verifyMsgs {
		if err := s.Verify(k.pub, msg, in.verifySigs[n]); err != nil {
			tb.Fatal(err)
		}
	}
	for _, msg := range in.signMsgs {
		if _, err := s.Sign(k.priv, msg); err != nil {
			tb.Fatal(err)
		}
	}
	if _, _, err := s.GenerateHPKEKeyPair(); err != nil {
		tb.Fatal(err)
	}
	// The group secrets: a joiner secret and no PSK, about 40 bytes.
	var info, secrets [64]byte
	if _, _, err := s.SealBase(in.initPub, info[:16], nil, secrets[:]); err != nil {
		tb.Fatal(err)
	}
}

// benchFloor times floor rounds of the given sizes (thread CPU as
// cpu-ns/op), the inputs made in batches with the timer stopped.
func benchFloor(b *testing.B, id mls.CipherSuiteID, sz floorSizes) {
	s, _ := mls.Suite(id)
	k := newKeys(b, id)
	b.ReportAllocs()
	var ins []*floorInput
	inBatches(b, 32, func(_, n int) {
		ins = make([]*floorInput, n)
		for i := range ins {
			ins[i] = newFloorInput(b, s, k, sz)
		}
	}, func(int) {
		for _, in := range ins {
			floorRound(b, s, k, in)
		}
	}, func() {})
}

// BenchmarkResponderFloor is handshake_responder_floor of
// bench/cmd/inprocess: run it in the same invocation as
// BenchmarkResponderHandshake and divide the cpu-ns/op.
func BenchmarkResponderFloor(b *testing.B) {
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		b.Run(suiteName(s), func(b *testing.B) { benchFloor(b, id, inprocessFloor) })
	}
}
