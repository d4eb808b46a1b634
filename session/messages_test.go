package session

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

func testKeyPackageMessage(t testing.TB) *mls.MLSMessage {
	t.Helper()
	s, _ := mls.Suite(testSuites[0])
	k := newKeys(t, testSuites[0])
	kp, _, _, err := mls.NewKeyPackage(s, k.priv, mls.Credential{CredentialType: mls.CredentialBasic, Identity: k.pub}, mls.KeyPackageOptions{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return &mls.MLSMessage{Version: mls.ProtocolMLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: kp}
}

// testHelloKey is a real signed hello key of the first test suite.
func testHelloKey(t testing.TB) HelloKey {
	k, err := NewHelloKey(testSuites[0], newKeys(t, testSuites[0]).priv, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return k.Public
}

func controlSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, m := range []Message{
		&ClientHello{KeyPackage: testKeyPackageMessage(t)},
		&EpochKeyUpdate{Epoch: 42},
		&Alert{Code: AlertBadUpdate, Reason: []byte("x")},
		&Close{},
		&ResumptionReject{RequestHash: [32]byte{1, 2, 3, 31: 9}},
		&HelloKeyRequest{Padding: make([]byte, 40)},
		&HelloKeyAnswer{Key: testHelloKey(t)},
		&SealedHello{KeyID: [HelloKeyIDLen]byte{1, 2}, Enc: []byte{3, 4}, Ciphertext: []byte{5, 6, 7}},
		&SealedAnswer{Ciphertext: []byte{8, 9}},
	} {
		b, err := EncodeControl(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestControlRoundTrip(t *testing.T) {
	for _, b := range controlSeeds(t) {
		m, err := DecodeControl(b)
		if err != nil {
			t.Fatalf("%x: %v", b[:3], err)
		}
		again, err := EncodeControl(m)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%s does not round-trip: %v", m.Type(), err)
		}
	}
}

func TestControlStrict(t *testing.T) {
	seeds := controlSeeds(t)
	hello, eku := seeds[0], seeds[1]
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"version", mod(eku, func(b []byte) []byte { b[1] = 3; return b }), ErrUnsupportedVersion},
		// Protocol 1.0 (version 1) is refused: 1.1 hides identities.
		{"version 1.0", mod(eku, func(b []byte) []byte { b[1] = 1; return b }), ErrUnsupportedVersion},
		// A sealed hello's key id is exactly 8 bytes, and nothing follows.
		{"short sealed", []byte{0, 2, byte(MsgSealedHello), 7, 1, 2, 3, 4, 5, 6, 7}, ErrMalformed},
		{"sealed trailing", append([]byte{0, 2, byte(MsgSealedHello), 11}, make([]byte, 11)...), ErrMalformed},
		{"hello key version", append([]byte{0, 2, byte(MsgHelloKeyAnswer), 30, 0, 1}, make([]byte, 28)...), ErrMalformed},
		{"type", mod(eku, func(b []byte) []byte { b[2] = 99; return b }), ErrUnknownMessage},
		{"trailing", append(bytes.Clone(eku), 0), ErrMalformed},
		{"truncated", eku[:len(eku)-1], ErrMalformed},
		{"inner trailing", []byte{0, 2, byte(MsgEpochKeyUpdate), 9, 0, 0, 0, 0, 0, 0, 0, 1, 0}, ErrMalformed},
		{"empty", nil, ErrMalformed},
		// A KeyPackage where a Welcome belongs.
		{"wire format", mod(hello, func(b []byte) []byte { b[2] = byte(MsgServerHello); return b }), ErrWrongWireFormat},
		{"commit format", mod(hello, func(b []byte) []byte { b[2] = byte(MsgConnectionUpdate); return b }), ErrWrongWireFormat},
		{"too large", []byte{0, 2, 1, 0xbf, 0xff, 0xff, 0xff}, ErrTooLarge},
		// The reject's hash is exactly 32 bytes.
		{"short reject", append([]byte{0, 2, byte(MsgResumptionReject), 31}, make([]byte, 31)...), ErrMalformed},
		{"long reject", append([]byte{0, 2, byte(MsgResumptionReject), 33}, make([]byte, 33)...), ErrMalformed},
	}
	for _, c := range cases {
		if _, err := DecodeControl(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func FuzzDecodeControl(f *testing.F) {
	for _, b := range controlSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte{0, 2, byte(MsgConnectionUpdate), 0})
	f.Add([]byte{0, 2, byte(MsgServerHello), 4, 0, 1, 0, 3})
	f.Add([]byte{0, 2, byte(MsgResumptionRequest), 4, 0, 1, 0, 1})
	f.Add([]byte{0, 2, byte(MsgResumptionResponse), 4, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeControl(b)
		if err != nil {
			return
		}
		again, err := EncodeControl(m)
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", m.Type(), err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%s: re-encoding differs", m.Type())
		}
	})
}

// FuzzHandleStream feeds hostile bytes to a responder waiting for a
// ClientHello and to a resuming initiator waiting for its answer: errors
// are fine, panics not, and the initiator never gives up resuming except
// for a fatal error or a reject of its own request, which no input can
// name.
func FuzzHandleStream(f *testing.F) {
	for _, b := range controlSeeds(f) {
		f.Add(appendPlainRecords(nil, b)[0])
	}
	id := testSuites[0]
	ik, rk := newKeys(f, id), newKeys(f, id)
	l := newLinkWith(f, id, 3, ik, rk)
	l.pump()
	state, err := l.a.s.State()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, r := newSessions(t, id, ik, rk, rk.pub, ik.pub)
		if err := r.Start(t0); err != nil {
			t.Fatal(err)
		}
		_ = r.HandleStream(t0, b)
		i, err := New(Config{Role: Initiator, Suite: id, SigningKey: ik.priv, PeerPublicKey: rk.pub, Resume: state})
		if err != nil {
			t.Fatal(err)
		}
		if err := i.Start(t0); err != nil {
			t.Fatal(err)
		}
		if err := i.HandleStream(t0, b); err == nil && !i.res.active && !i.Established() {
			t.Fatal("resumption ended without an error")
		}
	})
}
