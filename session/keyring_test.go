package session

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// Tests of the responder's hello keys: the keyring, its key files, the
// stateless answer and a listener's flow.

// The padding rule: a HelloKeyRequest too short for the answer gets none
// in datagram mode.
func TestHelloKeyRequestAmplification(t *testing.T) {
	for _, id := range hidingSuites {
		s, _ := mls.Suite(id)
		t.Run(suiteName(s), func(t *testing.T) {
			ik, rk := newKeys(t, id), newKeys(t, id)
			ring := newKeyring(t, id, rk, t0)
			i, r := hidingPair(t, Datagram, id, ik, rk, ring, nil, t0)
			req := i.Outgoing()
			reqBytes := 0
			for _, d := range req {
				reqBytes += len(d)
				r.HandleDatagram(t0, d)
			}
			ans := r.Outgoing()
			ansBytes := 0
			for _, d := range ans {
				ansBytes += len(d)
			}
			if len(ans) == 0 || ansBytes > 3*reqBytes {
				t.Fatalf("request %d bytes, answer %d bytes", reqBytes, ansBytes)
			}
			t.Logf("HelloKeyRequest %d bytes, HelloKeyAnswer %d bytes", reqBytes, ansBytes)
			short, _ := EncodeControl(&HelloKeyRequest{})
			if err := r.onHelloKeyRequest(short, 1); !errors.Is(err, ErrDropped) || len(r.Outgoing()) != 0 {
				t.Fatalf("short request answered: %v", err)
			}
		})
	}
}

// The keyring is shared by a listener's goroutines: copies of one sealed
// hello racing through it open exactly once, and rotation may run
// alongside.
func TestHelloKeyringConcurrent(t *testing.T) {
	id := hidingSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	ring := newKeyring(t, id, rk, t0)
	cached := encodedKey(t, ring.Current())
	var envs [][]byte
	for range 8 {
		i, _ := hidingPair(t, Stream, id, ik, rk, ring, cached, t0)
		envs = append(envs, plainEnvelopes(bytes.Join(i.Outgoing(), nil))[0])
	}
	opened := make(chan int, 64)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for k, env := range envs {
				if _, err := ring.OpenHello(t0, env); err == nil {
					opened <- k
				} else if !errors.Is(err, ErrReplayedHello) {
					t.Errorf("goroutine %d: %v", g, err)
				}
			}
		}()
	}
	go func() {
		defer func() { done <- struct{}{} }()
		for range 20 {
			_ = ring.Current()
			_ = ring.answer()
		}
	}()
	for range 5 {
		<-done
	}
	close(opened)
	count := map[int]int{}
	for k := range opened {
		count[k]++
	}
	for k := range envs {
		if count[k] != 1 {
			t.Fatalf("hello %d opened %d times", k, count[k])
		}
	}
	// Two rotations later the key is gone, and so is its replay set.
	installKey(t, ring, id, rk, t0)
	installKey(t, ring, id, rk, t0)
	if _, err := ring.OpenHello(t0, envs[0]); !errors.Is(err, ErrUnknownHelloKey) {
		t.Fatalf("hello for a retired key: %v", err)
	}
}

// A hello key pair survives its key file, and a file whose private key
// is not the public key's is refused.
func TestHelloKeyPairFile(t *testing.T) {
	for _, id := range hidingSuites {
		k, err := NewHelloKey(id, newKeys(t, id).priv, t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		b, err := k.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseHelloKeyPair(b)
		if err != nil || !bytes.Equal(back.Private, k.Private) || back.Public.ID != k.Public.ID {
			t.Fatalf("%#04x: round trip: %v", uint16(id), err)
		}
		other, _ := NewHelloKey(id, newKeys(t, id).priv, t0, t0.Add(time.Hour))
		mixed := &HelloKeyPair{Public: k.Public, Private: other.Private}
		mb, _ := mixed.MarshalBinary()
		if _, err := ParseHelloKeyPair(mb); !errors.Is(err, ErrHelloKey) {
			t.Fatalf("%#04x: mismatched key pair: %v", uint16(id), err)
		}
	}
}

// A listener with no session for a stranger's address runs the whole
// first contact itself, as currentd's would: it answers the key request
// statelessly, opens the sealed hello once to learn whose it is, and only
// then creates that peer's session, which does not open it again.
func TestHidingListenerFlow(t *testing.T) {
	eachModeAndSuite(t, func(t *testing.T, mode Transport, id mls.CipherSuiteID) {
		ik, rk := newKeys(t, id), newKeys(t, id)
		ring := newKeyring(t, id, rk, t0)
		i, _ := hidingPair(t, mode, id, ik, rk, ring, nil, t0)
		request := messageOf(t, mode, i.Outgoing())
		sender := i.LocalIndex()
		max := 0
		if mode == Stream {
			sender, max = 0, -1
		}
		answer, err := ring.AnswerRequest(request, sender, max)
		if err != nil {
			t.Fatal(err)
		}
		feed(t, i, answer)
		sealed := messageOf(t, mode, i.Outgoing())
		oh, err := ring.OpenHello(t0, sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(oh.SignatureKey, ik.pub) || oh.Resumption {
			t.Fatal("the opened hello does not name its initiator")
		}
		r := newResponderSession(t, mode, id, rk, oh.SignatureKey, ring, time.Time{}, t0)
		if err := r.HandleOpenedHello(t0, oh, sender); err != nil {
			t.Fatal(err)
		}
		if err := r.HandleOpenedHello(t0, oh, sender); !errors.Is(err, ErrDropped) {
			t.Fatalf("an opened hello handled twice: %v", err)
		}
		feed(t, i, r.Outgoing())
		if !i.Established() || !r.Established() {
			t.Fatal("not established")
		}
		checkTraffic(t, i, r, t0)
	})
}

// messageOf reassembles the one plaintext control envelope in out.
func messageOf(t *testing.T, mode Transport, out [][]byte) []byte {
	t.Helper()
	if mode == Stream {
		envs := plainEnvelopes(bytes.Join(out, nil))
		if len(envs) != 1 {
			t.Fatalf("%d envelopes", len(envs))
		}
		return envs[0]
	}
	var r reassembler
	for _, d := range out {
		sender, _, _, frag, _ := parsePlainHeader(d)
		id, total, off, data, ok := parseFragment(frag)
		if !ok {
			t.Fatal("not a control datagram")
		}
		env, err := r.add(t0, reasmKey{plain: true, sender: sender, id: id}, total, off, data, DefaultReassemblyBytes)
		if err != nil {
			t.Fatal(err)
		}
		if env != nil {
			return env
		}
	}
	t.Fatal("incomplete message")
	return nil
}

// A sealed hello for a key the listener no longer holds (a restart lost
// it, or a rotation retired it) gets the current key from the listener's
// stateless answer, and the initiator reseals to it.
func TestHidingListenerAnswersUnknownKey(t *testing.T) {
	eachModeAndSuite(t, func(t *testing.T, mode Transport, id mls.CipherSuiteID) {
		ik, rk := newKeys(t, id), newKeys(t, id)
		stale := newKeyring(t, id, rk, t0)
		ring := newKeyring(t, id, rk, t0)
		i, _ := hidingPair(t, mode, id, ik, rk, ring, encodedKey(t, stale.Current()), t0)
		sealed := messageOf(t, mode, i.Outgoing())
		if _, err := ring.OpenHello(t0, sealed); !errors.Is(err, ErrUnknownHelloKey) {
			t.Fatalf("a hello sealed to a key not installed: %v", err)
		}
		sender, max := i.LocalIndex(), 0
		if mode == Stream {
			sender, max = 0, -1
		}
		answer, err := ring.AnswerRequest(sealed, sender, max)
		if err != nil {
			t.Fatal(err)
		}
		feed(t, i, answer)
		oh, err := ring.OpenHello(t0, messageOf(t, mode, i.Outgoing()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(oh.SignatureKey, ik.pub) {
			t.Fatal("the resealed hello does not name its initiator")
		}
	})
}
