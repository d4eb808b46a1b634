package session

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// Fuzz targets for the identity-hiding decoders and state machine.

func FuzzParseHelloKey(f *testing.F) {
	k := testHelloKey(f)
	b, err := k.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte{0, 2, 0, 1})
	suite, _ := mls.Suite(testSuites[0])
	pin := newKeys(f, testSuites[0]).pub
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseHelloKey(b)
		if err != nil {
			if !errors.Is(err, ErrHelloKey) {
				t.Fatalf("error %v does not wrap ErrHelloKey", err)
			}
			return
		}
		again, err := k.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("hello key does not round-trip: %v", err)
		}
		// Never a panic, and never valid under a pin that did not sign.
		if k.Verify(suite, pin, t0) == nil {
			t.Fatal("a key signed by nobody verified")
		}
	})
}

func FuzzSealedContent(f *testing.F) {
	f.Add(append(append(make([]byte, 8), make([]byte, answerKeyLen)...), 3, 1, 2, 3))
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseSealedContent(b)
		if err != nil {
			if !errors.Is(err, ErrSealedHello) {
				t.Fatalf("error %v does not wrap ErrSealedHello", err)
			}
			return
		}
		if len(o.answerKey) != answerKeyLen || o.time.UnixNano() < 0 {
			t.Fatal("accepted content out of bounds")
		}
	})
}

// FuzzOpenHello feeds arbitrary envelopes to a keyring: a clear error or
// a hello it can name, never a panic; an opened hello opens once.
func FuzzOpenHello(f *testing.F) {
	id := testSuites[0]
	ik, rk := newKeys(f, id), newKeys(f, id)
	ring := newKeyring(f, id, rk, t0)
	cached := encodedKey(f, ring.Current())
	i, _ := hidingPair(f, Stream, id, ik, rk, ring, cached, t0)
	for _, env := range plainEnvelopes(bytes.Join(i.Outgoing(), nil)) {
		f.Add(env)
	}
	f.Add([]byte{0, 2, byte(MsgSealedHello), 10, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0})
	f.Fuzz(func(t *testing.T, env []byte) {
		// A fresh keyring of the same key per input: the replay set
		// must not hide a crash on the second copy.
		r, _ := NewHelloKeyring(id, 4)
		k := ring.keys[0].pair
		if err := r.Install(&HelloKeyPair{Public: k.Public, Private: bytes.Clone(k.Private)}); err != nil {
			t.Fatal(err)
		}
		// The stateless answer never amplifies beyond 3x (datagrams).
		if out, err := r.AnswerRequest(env, 1, 0); err == nil && len(bytes.Join(out, nil)) > 3*(len(env)+plainHeaderMin+fragHeaderLen)*len(out) {
			t.Fatal("answer more than three times the request")
		}
		oh, err := r.OpenHello(t0, env)
		if err != nil {
			return
		}
		if oh.Resumption == (oh.SignatureKey != nil) {
			t.Fatal("opened hello is neither or both")
		}
		if _, err := r.OpenHello(t0, env); !errors.Is(err, ErrReplayedHello) {
			t.Fatalf("second open: %v", err)
		}
	})
}

// plainEnvelopes splits stream bytes into their plaintext envelopes.
func plainEnvelopes(b []byte) [][]byte {
	var out [][]byte
	var hs handshakeBuffer
	for len(b) > 0 {
		frag, n, err := nextPlainRecord(b)
		if err != nil || n == 0 || hs.add(frag) != nil {
			break
		}
		b = b[n:]
		for {
			msg, err := hs.next()
			if err != nil || msg == nil {
				break
			}
			out = append(out, bytes.Clone(msg))
		}
	}
	return out
}

// FuzzHidingDatagram feeds arbitrary datagrams to hiding sessions: a
// responder with hello keys, an initiator waiting for the hello key and
// one waiting for its sealed answer. Invariants: no panic, no fatal error
// from an unauthenticated datagram, an initiator never puts anything on
// the wire but HelloKeyRequests and SealedHellos, and nothing it sends
// holds its signature key.
func FuzzHidingDatagram(f *testing.F) {
	id := testSuites[0]
	ik, rk := newKeys(f, id), newKeys(f, id)
	ring := newKeyring(f, id, rk, t0)
	cached := encodedKey(f, ring.Current())
	// Seeds: a whole first contact and a sealed resumption's messages.
	i, r := hidingPair(f, Datagram, id, ik, rk, ring, nil, t0)
	for n := 0; n < 4; n++ {
		for _, p := range [][2]*Session{{i, r}, {r, i}} {
			for _, d := range p[0].Outgoing() {
				f.Add(bytes.Clone(d))
				_ = p[1].HandleDatagram(t0, d)
			}
		}
	}
	f.Add([]byte{DatagramHandshake, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 2, byte(MsgSealedAnswer), 0})
	f.Fuzz(func(t *testing.T, d []byte) {
		waitKey, resp := hidingPair(t, Datagram, id, ik, rk, ring, nil, t0)
		waitAnswer, _ := hidingPair(t, Datagram, id, ik, rk, ring, cached, t0)
		for _, s := range []*Session{resp, waitKey, waitAnswer} {
			s.Outgoing()
			if err := s.HandleDatagram(t0, bytes.Clone(d)); err != nil && !errors.Is(err, ErrDropped) {
				t.Fatalf("fatal error from an unauthenticated datagram: %v", err)
			}
			_ = s.HandleTimeout(t0.Add(time.Second))
		}
		for _, s := range []*Session{waitKey, waitAnswer} {
			out := s.Outgoing()
			for _, m := range sentTypes(Datagram, out) {
				if m != MsgHelloKeyRequest && m != MsgSealedHello {
					t.Fatalf("hiding initiator sent a %s", m)
				}
			}
			if bytes.Contains(bytes.Join(out, nil), ik.pub) {
				t.Fatal("hiding initiator sent its signature key")
			}
			if s.Established() {
				t.Fatal("established by a fuzz input")
			}
		}
	})
}

// FuzzHidingStream is FuzzHidingDatagram over a stream: hostile bytes
// to a responder with hello keys and to a hiding initiator.
func FuzzHidingStream(f *testing.F) {
	id := testSuites[0]
	ik, rk := newKeys(f, id), newKeys(f, id)
	ring := newKeyring(f, id, rk, t0)
	i, r := hidingPair(f, Stream, id, ik, rk, ring, nil, t0)
	for n := 0; n < 3; n++ {
		for _, p := range [][2]*Session{{i, r}, {r, i}} {
			for _, b := range p[0].Outgoing() {
				f.Add(bytes.Clone(b))
				_ = p[1].HandleStream(t0, b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		init, resp := hidingPair(t, Stream, id, ik, rk, ring, nil, t0)
		init.Outgoing()
		_ = resp.HandleStream(t0, b)
		_ = init.HandleStream(t0, b)
		out := init.Outgoing()
		for _, m := range plainTypes(bytes.Join(out, nil)) {
			if m != MsgHelloKeyRequest && m != MsgSealedHello {
				t.Fatalf("hiding initiator sent a %s", m)
			}
		}
		if init.Established() {
			t.Fatal("established by a fuzz input")
		}
	})
}

func FuzzParseHelloKeyPair(f *testing.F) {
	k, err := NewHelloKey(testSuites[0], newKeys(f, testSuites[0]).priv, t0, t0.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	b, err := k.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseHelloKeyPair(b)
		if err != nil {
			if !errors.Is(err, ErrHelloKey) {
				t.Fatalf("error %v does not wrap ErrHelloKey", err)
			}
			return
		}
		again, err := k.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("key pair does not round-trip: %v", err)
		}
	})
}
