package session

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// hidingSuites: the classical default and both post-quantum suites, whose
// hello keys are X-Wing and ML-KEM-768.
var hidingSuites = responderSuites

func newKeyring(tb testing.TB, id mls.CipherSuiteID, rk keyPair, from time.Time) *HelloKeyring {
	tb.Helper()
	ring, err := NewHelloKeyring(id, 0)
	if err != nil {
		tb.Fatal(err)
	}
	installKey(tb, ring, id, rk, from)
	return ring
}

// installKey rotates ring to a new key valid for two hours from from.
func installKey(tb testing.TB, ring *HelloKeyring, id mls.CipherSuiteID, rk keyPair, from time.Time) *HelloKeyPair {
	tb.Helper()
	k, err := NewHelloKey(id, rk.priv, from, from.Add(2*time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	pub := *k
	if err := ring.Install(k); err != nil {
		tb.Fatal(err)
	}
	return &pub
}

func encodedKey(tb testing.TB, k *HelloKey) []byte {
	tb.Helper()
	b, err := k.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// hidingPair makes a hiding initiator (with cached key, or none) and a
// responder holding ring, both started at now.
func hidingPair(tb testing.TB, mode Transport, id mls.CipherSuiteID, ik, rk keyPair, ring *HelloKeyring, cached []byte, now time.Time) (*Session, *Session) {
	tb.Helper()
	i, err := New(Config{Role: Initiator, Suite: id, SigningKey: ik.priv, PeerPublicKey: rk.pub, Transport: mode,
		HideIdentity: true, PeerHelloKey: cached, UpdateInterval: -1, UpdateBytes: -1})
	if err != nil {
		tb.Fatal(err)
	}
	r := newResponderSession(tb, mode, id, rk, ik.pub, ring, time.Time{}, now)
	if err := i.Start(now); err != nil {
		tb.Fatal(err)
	}
	return i, r
}

// newResponderSession is a started responder with hello keys, as a
// listener makes one per new source, with the peer's hello floor.
func newResponderSession(tb testing.TB, mode Transport, id mls.CipherSuiteID, rk keyPair, pin []byte, ring *HelloKeyring, floor, now time.Time) *Session {
	tb.Helper()
	r, err := New(Config{Role: Responder, Suite: id, SigningKey: rk.priv, PeerPublicKey: pin, Transport: mode,
		HelloKeys: ring, HelloFloor: floor, UpdateInterval: -1, UpdateBytes: -1})
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.Start(now); err != nil {
		tb.Fatal(err)
	}
	return r
}

// pass delivers everything from has queued to to, in either mode, and
// returns the plaintext control messages' types (the transcript).
func pass(tb testing.TB, from, to *Session, now time.Time) []MsgType {
	tb.Helper()
	out := from.Outgoing()
	for _, d := range out {
		if from.cfg.Transport == Datagram {
			if err := to.HandleDatagram(now, d); err != nil && !errors.Is(err, ErrDropped) {
				tb.Fatalf("HandleDatagram: %v", err)
			}
			continue
		}
		if err := to.HandleStream(now, d); err != nil {
			tb.Fatalf("HandleStream: %v", err)
		}
	}
	return sentTypes(from.cfg.Transport, out)
}

// plainTypes lists the control messages in plaintext handshake records.
func plainTypes(b []byte) []MsgType {
	var types []MsgType
	var hs handshakeBuffer
	for len(b) > 0 {
		frag, n, err := nextPlainRecord(b)
		if err != nil || n == 0 {
			break
		}
		b = b[n:]
		if hs.add(frag) != nil {
			break
		}
		for {
			msg, err := hs.next()
			if err != nil || msg == nil {
				break
			}
			if m, err := DecodeControl(msg); err == nil {
				types = append(types, m.Type())
			}
		}
	}
	return types
}

func converge(tb testing.TB, i, r *Session, now time.Time) []MsgType {
	tb.Helper()
	var seen []MsgType
	for n := 0; n < 16; n++ {
		a := pass(tb, i, r, now)
		b := pass(tb, r, i, now)
		seen = append(append(seen, a...), b...)
		if i.Established() && r.Established() && len(i.out) == 0 && len(r.out) == 0 {
			return seen
		}
	}
	tb.Fatalf("no handshake: initiator %v responder %v, messages %v", i.Established(), r.Established(), seen)
	return nil
}

// eachModeAndSuite runs f as a subtest per transport and hiding suite.
func eachModeAndSuite(t *testing.T, f func(t *testing.T, mode Transport, id mls.CipherSuiteID)) {
	for _, mode := range []Transport{Datagram, Stream} {
		for _, id := range hidingSuites {
			s, _ := mls.Suite(id)
			t.Run(modeName(mode)+"/"+suiteName(s), func(t *testing.T) { f(t, mode, id) })
		}
	}
}

func TestHidingHandshake(t *testing.T) {
	for _, mode := range []Transport{Stream, Datagram} {
		for _, id := range hidingSuites {
			s, _ := mls.Suite(id)
			t.Run(fmt.Sprintf("%s/%s", modeName(mode), suiteName(s)), func(t *testing.T) {
				ik, rk := newKeys(t, id), newKeys(t, id)
				ring := newKeyring(t, id, rk, t0)
				// First contact: one extra round trip for the key.
				i, r := hidingPair(t, mode, id, ik, rk, ring, nil, t0)
				got := converge(t, i, r, t0)
				want := []MsgType{MsgHelloKeyRequest, MsgHelloKeyAnswer, MsgSealedHello, MsgSealedAnswer}
				if !equalTypes(got, want) {
					t.Fatalf("first contact: messages %v, want %v", got, want)
				}
				cached := i.PeerHelloKey()
				if cached == nil {
					t.Fatal("no hello key to cache")
				}
				// Later contact: the cached key, no extra round trip.
				i2, r2 := hidingPair(t, mode, id, ik, rk, ring, cached, t0.Add(time.Minute))
				got = converge(t, i2, r2, t0.Add(time.Minute))
				if !equalTypes(got, []MsgType{MsgSealedHello, MsgSealedAnswer}) {
					t.Fatalf("cached key: messages %v", got)
				}
				checkTraffic(t, i2, r2, t0.Add(time.Minute))
			})
		}
	}
}

func modeName(m Transport) string {
	if m == Datagram {
		return "datagram"
	}
	return "stream"
}

func equalTypes(a, b []MsgType) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// checkTraffic sends one packet each way.
func checkTraffic(t *testing.T, i, r *Session, now time.Time) {
	t.Helper()
	pkt := []byte("\x45 sealed hello, real packet")
	for _, p := range [][2]*Session{{i, r}, {r, i}} {
		if err := p[0].SendPacket(now, pkt); err != nil {
			t.Fatal(err)
		}
		pass(t, p[0], p[1], now)
		got := p[1].Packets()
		if len(got) != 1 || !bytes.Equal(got[0], pkt) {
			t.Fatalf("packets %q", got)
		}
	}
}

// An attacker at the responder's address, without its signature key,
// answers the HelloKeyRequest with a hello key of its own (signed by
// itself, or a real one of another responder). The initiator must not
// send anything sealed to it, nor anything identifying at all.
func TestHidingImpostorLearnsNothing(t *testing.T) {
	for _, mode := range []Transport{Stream, Datagram} {
		id := hidingSuites[1]
		t.Run(modeName(mode), func(t *testing.T) {
			ik, rk, ek := newKeys(t, id), newKeys(t, id), newKeys(t, id)
			// The impostor holds its own key pair and pins the initiator's
			// public key (assume it knows whom it hopes to catch).
			evilRing := newKeyring(t, id, ek, t0)
			i, evil := hidingPair(t, mode, id, ik, rk, evilRing, nil, t0)
			var wire [][]byte
			for n := 0; n < 4; n++ {
				for _, d := range i.Outgoing() {
					wire = append(wire, d)
					if mode == Datagram {
						evil.HandleDatagram(t0, d)
					} else if evil.HandleStream(t0, d) != nil {
						break
					}
				}
				for _, d := range evil.Outgoing() {
					if mode == Datagram {
						i.HandleDatagram(t0, d)
					} else if err := i.HandleStream(t0, d); err == nil {
						t.Fatal("initiator accepted a hello key its pin did not sign")
					}
				}
			}
			if i.Established() || evil.Established() {
				t.Fatal("established with an impostor")
			}
			for _, secret := range [][]byte{ik.pub} {
				if bytes.Contains(bytes.Join(wire, nil), secret) {
					t.Fatal("initiator's signature key on the wire")
				}
			}
			// All it ever sent: HelloKeyRequests.
			for _, m := range sentTypes(mode, wire) {
				if m != MsgHelloKeyRequest {
					t.Fatalf("initiator sent a %s to an impostor", m)
				}
			}
		})
	}
	// And a genuine but stolen answer replayed by the impostor makes the
	// initiator seal to the real responder's key, which the impostor
	// cannot open.
	id := hidingSuites[0]
	ik, rk, ek := newKeys(t, id), newKeys(t, id), newKeys(t, id)
	real := newKeyring(t, id, rk, t0)
	i, _ := hidingPair(t, Datagram, id, ik, rk, real, encodedKey(t, real.Current()), t0)
	sealed := i.Outgoing()
	evil := newKeyring(t, id, ek, t0)
	m := decodePlain(sealed[0]).(*SealedHello)
	if _, err := evil.open(t0, m, [32]byte{}); err == nil {
		t.Fatal("an impostor's keyring opened a hello sealed to the real key")
	}
}

// sentTypes lists the plaintext control messages in what a session sent:
// stream bytes, or datagrams (reassembled).
func sentTypes(mode Transport, out [][]byte) []MsgType {
	if mode == Stream {
		return plainTypes(bytes.Join(out, nil))
	}
	var types []MsgType
	var r reassembler
	for _, d := range out {
		sender, _, _, frag, ok := parsePlainHeader(d)
		if !ok {
			continue
		}
		id, total, off, data, ok := parseFragment(frag)
		if !ok {
			continue
		}
		env, err := r.add(t0, reasmKey{plain: true, sender: sender, id: id}, total, off, data, DefaultReassemblyBytes)
		if err != nil || env == nil {
			continue
		}
		if m, err := DecodeControl(env); err == nil {
			types = append(types, m.Type())
		}
	}
	return types
}

// A cached hello key the responder rotated out is refused with the
// current key, and the initiator reseals; both keys in flight at once
// (current and previous) are accepted.
func TestHidingStaleKeyAndRotation(t *testing.T) {
	for _, mode := range []Transport{Stream, Datagram} {
		id := hidingSuites[0]
		t.Run(modeName(mode), func(t *testing.T) {
			ik, rk := newKeys(t, id), newKeys(t, id)
			ring := newKeyring(t, id, rk, t0)
			old := encodedKey(t, ring.Current())
			installKey(t, ring, id, rk, t0)
			mid := encodedKey(t, ring.Current())
			// Both the previous and the current key are accepted.
			for _, cached := range [][]byte{old, mid} {
				i, r := hidingPair(t, mode, id, ik, rk, ring, cached, t0)
				if got := converge(t, i, r, t0); !equalTypes(got, []MsgType{MsgSealedHello, MsgSealedAnswer}) {
					t.Fatalf("two keys in flight: %v", got)
				}
			}
			// One more rotation retires old: the retry path.
			installKey(t, ring, id, rk, t0)
			i, r := hidingPair(t, mode, id, ik, rk, ring, old, t0)
			got := converge(t, i, r, t0)
			want := []MsgType{MsgSealedHello, MsgHelloKeyAnswer, MsgSealedHello, MsgSealedAnswer}
			if !equalTypes(got, want) {
				t.Fatalf("stale key: %v, want %v", got, want)
			}
			if !bytes.Equal(i.PeerHelloKey(), encodedKey(t, ring.Current())) {
				t.Fatal("initiator did not learn the current key")
			}
			// A wrong key (of another responder, signed by it) never
			// verifies against the pin and is ignored: the request path.
			other := newKeyring(t, id, newKeys(t, id), t0)
			i, r = hidingPair(t, mode, id, ik, rk, ring, encodedKey(t, other.Current()), t0)
			got = converge(t, i, r, t0)
			if got[0] != MsgHelloKeyRequest {
				t.Fatalf("wrong cached key: %v", got)
			}
		})
	}
}

// A hello key past its validity is not used by the initiator, and not
// accepted by the responder.
func TestHidingExpiredKey(t *testing.T) {
	id := hidingSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	ring := newKeyring(t, id, rk, t0)
	cached := encodedKey(t, ring.Current())
	late := t0.Add(3 * time.Hour)
	k, _ := ParseHelloKey(cached)
	s, _ := mls.Suite(id)
	if err := k.Verify(s, rk.pub, late); !errors.Is(err, ErrHelloKey) {
		t.Fatalf("expired key verified: %v", err)
	}
	installKey(t, ring, id, rk, late)
	i, r := hidingPair(t, Datagram, id, ik, rk, ring, cached, late)
	if got := converge(t, i, r, late); got[0] != MsgHelloKeyRequest {
		t.Fatalf("expired cached key: %v", got)
	}
}

// Plaintext hellos are refused by a responder with hello keys, whether of
// this version or of protocol 1.0 (version 1).
func TestHidingRefusesPlaintextHello(t *testing.T) {
	id := hidingSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	ring := newKeyring(t, id, rk, t0)
	for _, mode := range []Transport{Stream, Datagram} {
		t.Run(modeName(mode), func(t *testing.T) {
			plain, err := New(Config{Role: Initiator, Suite: id, SigningKey: ik.priv, PeerPublicKey: rk.pub, Transport: mode})
			if err != nil {
				t.Fatal(err)
			}
			_, r := hidingPair(t, mode, id, ik, rk, ring, nil, t0)
			plain.Start(t0)
			hello := plain.Outgoing()
			for _, d := range hello {
				if mode == Datagram {
					err = r.HandleDatagram(t0, d)
				} else {
					err = r.HandleStream(t0, d)
				}
			}
			if !errors.Is(err, ErrPlaintextHello) {
				t.Fatalf("plaintext hello: %v", err)
			}
			if len(r.Outgoing()) != 0 || r.Established() {
				t.Fatal("responder answered a plaintext hello")
			}
		})
	}
	// Protocol 1.0: the same envelope with version 1.
	plain, _ := New(Config{Role: Initiator, Suite: id, SigningKey: ik.priv, PeerPublicKey: rk.pub})
	plain.Start(t0)
	b := bytes.Join(plain.Outgoing(), nil)
	b[5], b[6] = 0, 1 // the envelope's version, after the record header
	_, r := hidingPair(t, Stream, id, ik, rk, ring, nil, t0)
	if err := r.HandleStream(t0, b); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("protocol 1.0 hello: %v", err)
	}
	if len(r.Outgoing()) != 0 {
		t.Fatal("responder answered a protocol 1.0 hello")
	}
}

// A hiding initiator refuses a plaintext answer (a downgrade).
func TestHidingRefusesPlaintextAnswer(t *testing.T) {
	id := hidingSuites[0]
	ik, rk := newKeys(t, id), newKeys(t, id)
	ring := newKeyring(t, id, rk, t0)
	i, _ := hidingPair(t, Datagram, id, ik, rk, ring, encodedKey(t, ring.Current()), t0)
	plainI, plainR := newDatagramPair(t, id, newKeys(t, id), rk)
	settle(t, plainI, plainR, t0)
	_ = plainI
	// Any ServerHello datagram in the clear is refused before parsing it.
	sh := &ctlMsg{id: 0, env: mustEncode(t, &ServerHello{Welcome: &mls.MLSMessage{}}), plain: true}
	plainR.out = nil
	plainR.emit(sh)
	for _, d := range plainR.Outgoing() {
		if err := i.HandleDatagram(t0, d); !errors.Is(err, ErrPlaintextHello) && !errors.Is(err, ErrDropped) {
			t.Fatalf("plaintext ServerHello: %v", err)
		}
	}
	if i.Established() {
		t.Fatal("hiding initiator took a plaintext answer")
	}
}

func mustEncode(tb testing.TB, m Message) []byte {
	tb.Helper()
	b, err := EncodeControl(m)
	if err != nil {
		// An empty Welcome does not encode; an envelope by hand then.
		return []byte{byte(ProtocolVersion >> 8), byte(ProtocolVersion), byte(m.Type()), 0}
	}
	return b
}

// feed hands datagrams or stream bytes to s, ignoring drops and the
// silent close a stream responder makes of a refused hello.
func feed(t *testing.T, s *Session, in [][]byte) {
	t.Helper()
	for _, d := range in {
		if s.cfg.Transport == Datagram {
			s.HandleDatagram(t0, d)
		} else {
			s.HandleStream(t0, d)
		}
	}
}
