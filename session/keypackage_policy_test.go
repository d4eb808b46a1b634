package session

import (
	"errors"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// rehello replaces the initiator's KeyPackage by one with the given
// lifetime and credential, re-signed with its key, and queues a new
// ClientHello for it in place of the one Start sent. It is how another MLS
// stack's KeyPackage, made with other defaults, reaches our responder.
func rehello(tb testing.TB, l *link, ik keyPair, lt mls.Lifetime, cred mls.Credential) {
	tb.Helper()
	i := l.a.s
	i.Outgoing()
	kp := i.kp
	kp.LeafNode.Lifetime = lt
	kp.LeafNode.Credential = cred
	if err := kp.LeafNode.Sign(i.suite, ik.priv, nil, 0); err != nil {
		tb.Fatal(err)
	}
	if err := kp.Sign(i.suite, ik.priv); err != nil {
		tb.Fatal(err)
	}
	msg := &mls.MLSMessage{Version: mls.ProtocolMLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: kp}
	if err := i.sendControl(&ClientHello{KeyPackage: msg}); err != nil {
		tb.Fatal(err)
	}
}

// helloToResponder hands the initiator's queued bytes to the responder and
// returns the responder's error.
func helloToResponder(l *link) error {
	var stream []byte
	for _, b := range l.a.s.Outgoing() {
		stream = append(stream, b...)
	}
	return l.b.s.HandleStream(l.now, stream)
}

// TestKeyPackageLifetime: docs/protocol.md 7.3. Any lifetime that covers
// the responder's clock is accepted, however long (other stacks default to
// [0, 2^63-1] or more); one that has not begun or has ended is refused
// with ErrBadKeyPackage, which the daemon counts.
func TestKeyPackageLifetime(t *testing.T) {
	now := uint64(t0.Unix())
	for _, tc := range []struct {
		name string
		lt   mls.Lifetime
		ok   bool
	}{
		{"forever", mls.Lifetime{NotBefore: 0, NotAfter: ^uint64(0)}, true},
		{"2^63-1", mls.Lifetime{NotBefore: 0, NotAfter: 1<<63 - 1}, true},
		{"ten years", mls.Lifetime{NotBefore: now - 3600, NotAfter: now + 10*365*24*3600}, true},
		{"exactly now", mls.Lifetime{NotBefore: now, NotAfter: now}, true},
		{"not yet valid", mls.Lifetime{NotBefore: now + 60, NotAfter: now + 3600}, false},
		{"expired", mls.Lifetime{NotBefore: 0, NotAfter: now - 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			suite := mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519
			ik, rk := newKeys(t, suite), newKeys(t, suite)
			l := newLinkWith(t, suite, 1, ik, rk)
			rehello(t, l, ik, tc.lt, l.a.s.credential())
			err := helloToResponder(l)
			if !tc.ok {
				if !errors.Is(err, ErrBadKeyPackage) {
					t.Fatalf("responder: %v, want ErrBadKeyPackage", err)
				}
				if out := l.b.s.Outgoing(); len(out) != 0 {
					t.Fatalf("responder answered a refused KeyPackage with %d records", len(out))
				}
				return
			}
			if err != nil {
				t.Fatalf("responder refused the KeyPackage: %v", err)
			}
			l.pump()
			if !l.a.s.Established() || !l.b.s.Established() {
				t.Fatal("handshake did not complete")
			}
		})
	}
}

// TestBasicCredentialIdentity: docs/protocol.md 7.3. The identity of a
// basic credential is the leaf's signature key, byte for byte; anything
// else is refused, even with the pinned key.
func TestBasicCredentialIdentity(t *testing.T) {
	suite := mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519
	ik, rk := newKeys(t, suite), newKeys(t, suite)
	l := newLinkWith(t, suite, 1, ik, rk)
	lt := l.a.s.kp.LeafNode.Lifetime
	rehello(t, l, ik, lt, mls.Credential{CredentialType: mls.CredentialBasic, Identity: []byte("initiator@example")})
	err := helloToResponder(l)
	if !errors.Is(err, ErrBadKeyPackage) || !errors.Is(err, ErrCredentialIdentity) {
		t.Fatalf("responder: %v, want ErrBadKeyPackage wrapping ErrCredentialIdentity", err)
	}

	// The same check guards every leaf, the Welcome's tree and commits
	// included, since they share the validator.
	s, err := mls.Suite(suite)
	if err != nil {
		t.Fatal(err)
	}
	v := pinnedCredentials{own: rk.pub, peer: ik.pub}
	good := mls.Credential{CredentialType: mls.CredentialBasic, Identity: ik.pub}
	if err := v.ValidateCredential(s, &good, ik.pub); err != nil {
		t.Fatalf("identity = key refused: %v", err)
	}
	swapped := mls.Credential{CredentialType: mls.CredentialBasic, Identity: rk.pub}
	if err := v.ValidateCredential(s, &swapped, ik.pub); !errors.Is(err, ErrCredentialIdentity) {
		t.Fatalf("the other member's key as identity: %v, want ErrCredentialIdentity", err)
	}
}

// TestOwnKeyPackageLifetime: our own KeyPackages start before now, so a
// responder whose clock is a little behind ours still accepts them.
func TestOwnKeyPackageLifetime(t *testing.T) {
	suite := mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519
	l := newLink(t, suite, 1)
	lt := l.a.s.kp.LeafNode.Lifetime
	behind := uint64(t0.Add(-time.Minute).Unix())
	if lt.NotBefore > behind || lt.NotAfter <= uint64(t0.Unix()) {
		t.Fatalf("own lifetime %+v does not cover a clock one minute behind", lt)
	}
}
