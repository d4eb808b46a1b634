package session

import (
	"crypto/rand"
	"testing"

	"github.com/current-vpn/current/session/mls"
)

// The floor of a resumption (docs/protocol.md 7.10) per side: the public-key
// operations neither side can avoid, timed on their own so that
// BenchmarkResumeHub and BenchmarkResumePeer can be read against them in
// the same run. In a two-member group each side commits one self-update
// with a path and processes the other's:
//
//   - its own commit: the new leaf's and the root's key pairs derived from
//     the path secrets (both public keys are in the UpdatePath), the leaf
//     node's and the commit's signatures, and the path secret encrypted to
//     the other leaf (one HPKE encapsulation);
//   - the other's commit: its two signatures verified (the commit's and
//     its new leaf node's), the path secret decrypted with our leaf key
//     (one HPKE decapsulation, the key imported from its bytes), and the
//     root key pair derived from it to check the UpdatePath's public key;
//   - identity hiding: the peer verifies the hub's hello key it cached
//     (one verification: it reads the key from its own files at the
//     restart) and seals its request to it (one encapsulation); the hub
//     opens it (one decapsulation under its long-lived, already parsed
//     hello key). The answer is sealed symmetrically.
//
// TestResumeOpCount pins what the engine does against this.
const (
	resumeFloorDerives    = 3
	resumeFloorSignatures = 2
	resumeFloorVerifies   = 2
)

// resumeFloorInput is one floor round's inputs, made with the timer
// stopped, fresh each round so that no cache can answer.
type resumeFloorInput struct {
	msg, sig     []byte
	ikm          [resumeFloorDerives][]byte
	sealTo       []byte // the other leaf's key, or the hello key
	leafPriv     []byte // our leaf key, as bytes from the state
	enc, ct      []byte // a path secret sealed to leafPriv
	helloPub     []byte // the hub's hello key, as the peer seals to it
	helloKey     *mls.HPKERecipient
	helloEnc     []byte // a hello sealed to it
	helloCT      []byte
	signer, peer keyPair
}

func newResumeFloorInput(tb testing.TB, s *mls.CipherSuite, own, peer keyPair) *resumeFloorInput {
	in := &resumeFloorInput{msg: make([]byte, 256), signer: own, peer: peer}
	rand.Read(in.msg)
	// A fresh hello key each round: the peer parses the key it seals to
	// (the engine's cache of parsed public keys must not answer); the
	// hub's is parsed once, when it is installed.
	helloPriv, helloPub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		tb.Fatal(err)
	}
	if in.helloKey, err = s.NewHPKERecipient(helloPriv); err != nil {
		tb.Fatal(err)
	}
	in.helloPub = helloPub
	if in.sig, err = s.Sign(peer.priv, in.msg); err != nil {
		tb.Fatal(err)
	}
	for k := range in.ikm {
		in.ikm[k] = make([]byte, s.Nh())
		rand.Read(in.ikm[k])
	}
	if _, in.sealTo, err = s.GenerateHPKEKeyPair(); err != nil {
		tb.Fatal(err)
	}
	var leafPub []byte
	if in.leafPriv, leafPub, err = s.GenerateHPKEKeyPair(); err != nil {
		tb.Fatal(err)
	}
	if in.enc, in.ct, err = s.SealBase(leafPub, in.msg[:16], nil, in.msg[:s.Nh()]); err != nil {
		tb.Fatal(err)
	}
	if in.helloEnc, in.helloCT, err = s.SealBase(helloPub, in.msg[:16], nil, in.msg[:64]); err != nil {
		tb.Fatal(err)
	}
	return in
}

// resumeFloorRound does one side's floor operations; hub selects the
// hub's part of identity hiding (open the request) over the peer's (seal
// it).
func resumeFloorRound(tb testing.TB, s *mls.CipherSuite, in *resumeFloorInput, hub bool) {
	if hub {
		if _, err := in.helloKey.OpenBase(in.helloEnc, in.msg[:16], nil, in.helloCT); err != nil {
			tb.Fatal(err)
		}
	} else {
		if err := s.Verify(in.peer.pub, in.msg, in.sig); err != nil {
			tb.Fatal(err)
		}
		if _, _, err := s.SealBase(in.helloPub, in.msg[:16], nil, in.msg[:64]); err != nil {
			tb.Fatal(err)
		}
	}
	for range resumeFloorVerifies {
		if err := s.Verify(in.peer.pub, in.msg, in.sig); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := s.OpenBase(in.enc, in.leafPriv, in.msg[:16], nil, in.ct); err != nil {
		tb.Fatal(err)
	}
	for _, ikm := range in.ikm {
		if _, _, err := s.DeriveHPKEKeyPair(ikm); err != nil {
			tb.Fatal(err)
		}
	}
	for n := range resumeFloorSignatures {
		in.msg[0] = byte(n)
		if _, err := s.Sign(in.signer.priv, in.msg); err != nil {
			tb.Fatal(err)
		}
	}
	if _, _, err := s.SealBase(in.sealTo, in.msg[:16], nil, in.msg[:64]); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkResumeFloor times each side's floor (thread CPU as cpu-ns/op),
// to be run in the same invocation as BenchmarkResumeHub and
// BenchmarkResumePeer.
func BenchmarkResumeFloor(b *testing.B) {
	eachResponderSuite(b, func(b *testing.B, id mls.CipherSuiteID, rk keyPair) {
		s, _ := mls.Suite(id)
		ik := newKeys(b, id)
		for _, side := range []struct {
			name string
			hub  bool
		}{{"hub", true}, {"peer", false}} {
			b.Run(side.name, func(b *testing.B) {
				var ins []*resumeFloorInput
				inBatches(b, 32, func(_, n int) {
					ins = make([]*resumeFloorInput, n)
					for k := range ins {
						ins[k] = newResumeFloorInput(b, s, rk, ik)
					}
				}, func(int) {
					for _, in := range ins {
						resumeFloorRound(b, s, in, side.hub)
					}
				}, func() {})
			})
		}
	})
}
