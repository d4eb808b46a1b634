package main

import (
	"crypto/ecdh"
	"crypto/rand"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// The floor of a handshake: the public-key operations a responder cannot
// avoid, timed on their own in the same run as the handshakes, so that the
// handshake rate can be read against what the machine allows at that
// moment (a shared machine's speed drifts by tens of percent within
// minutes). For a conformant RFC 9420 responder (docs/protocol.md 7.7):
//
//   - verify the KeyPackage's signature and its leaf node's: 2 verifications;
//   - the creator's leaf: 1 HPKE key generation and 1 signature;
//   - the Add commit's signature and the GroupInfo's: 2 signatures;
//   - the Welcome's group secrets, encrypted to the fresh init key:
//     1 HPKE encapsulation (parsing that key included).
//
// With identity hiding on (as currentd runs) the responder cannot read the
// ClientHello without one more decapsulation, the open of the sealed hello
// under its hello key (parsed once, when the key is installed): the sealed
// responder's floor is the above plus helloOpenRound.
//
// The Noise IK responder of WireGuard needs no signatures; its public-key
// cost is about five X25519 scalar multiplications (two static-ephemeral
// and ephemeral-static DHs on receipt, one ephemeral generation and two
// DHs for the answer), which is printed next to it for comparison.

const (
	floorVerifies   = 2
	floorSignatures = 3
)

// floorRound does the floor's operations once and returns the thread CPU
// time they took.
func floorRound(s *mls.CipherSuite, k keyPair) time.Duration {
	// Inputs are fresh each round, prepared outside the timing, so that
	// no cache of the engine (verified signatures, parsed public keys) can
	// answer.
	msg := make([]byte, 256)
	rand.Read(msg)
	sig, err := s.Sign(k.priv, msg)
	if err != nil {
		fatal(err)
	}
	_, initPub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		fatal(err)
	}
	c0 := threadCPU()
	for range floorVerifies {
		if err := s.Verify(k.pub, msg, sig); err != nil {
			fatal(err)
		}
	}
	for n := range floorSignatures {
		msg[0] = byte(n)
		if _, err := s.Sign(k.priv, msg); err != nil {
			fatal(err)
		}
	}
	if _, _, err := s.GenerateHPKEKeyPair(); err != nil {
		fatal(err)
	}
	if _, _, err := s.SealBase(initPub, msg[:16], nil, msg[:64]); err != nil {
		fatal(err)
	}
	return threadCPU() - c0
}

// noiseRound does the five X25519 operations of a Noise IK responder once
// and returns the thread CPU time they took.
func noiseRound(static *ecdh.PrivateKey) time.Duration {
	curve := ecdh.X25519()
	peer, err := curve.GenerateKey(rand.Reader)
	if err != nil {
		fatal(err)
	}
	c0 := threadCPU()
	// Receipt: es and ss. Answer: a fresh ephemeral, ee and se.
	for range 2 {
		if _, err := static.ECDH(peer.PublicKey()); err != nil {
			fatal(err)
		}
	}
	eph, err := curve.GenerateKey(rand.Reader)
	if err != nil {
		fatal(err)
	}
	for range 2 {
		if _, err := eph.ECDH(peer.PublicKey()); err != nil {
			fatal(err)
		}
	}
	return threadCPU() - c0
}

// helloKey is a hello key as a responder holds it, parsed once.
type helloKey struct {
	recipient *mls.HPKERecipient
	pub       []byte
}

func newHelloKey(s *mls.CipherSuite) helloKey {
	priv, pub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		fatal(err)
	}
	r, err := s.NewHPKERecipient(priv)
	if err != nil {
		fatal(err)
	}
	return helloKey{recipient: r, pub: pub}
}

// helloOpenRound opens one fresh ciphertext under the hello key and
// returns the thread CPU time the open took.
func helloOpenRound(s *mls.CipherSuite, k helloKey) time.Duration {
	msg := make([]byte, 64)
	rand.Read(msg)
	enc, ct, err := s.SealBase(k.pub, msg[:16], nil, msg)
	if err != nil {
		fatal(err)
	}
	c0 := threadCPU()
	if _, err := k.recipient.OpenBase(enc, msg[:16], nil, ct); err != nil {
		fatal(err)
	}
	return threadCPU() - c0
}
