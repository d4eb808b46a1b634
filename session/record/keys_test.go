package record

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// refExpandLabel computes HKDF-Expand-Label from the definitions alone, without
// the package's code or crypto/hkdf: RFC 9846 section 7.1 builds HkdfLabel as
// uint16 length, then "tls13 "+label and context as vectors with one-byte
// length prefixes; RFC 5869 section 2.3 expands with T(i) = HMAC(PRK,
// T(i-1) || info || i).
func refExpandLabel(h crypto.Hash, secret []byte, label string, context []byte, length int) []byte {
	full := "tls13 " + label
	info := []byte{byte(length >> 8), byte(length), byte(len(full))}
	info = append(info, full...)
	info = append(info, byte(len(context)))
	info = append(info, context...)

	var okm, t []byte
	for i := byte(1); len(okm) < length; i++ {
		m := hmac.New(h.New, secret)
		m.Write(t)
		m.Write(info)
		m.Write([]byte{i})
		t = m.Sum(nil)
		okm = append(okm, t...)
	}
	return okm[:length]
}

func refKeyLen(a AEAD) int {
	if a == AES128GCM {
		return 16
	}
	return 32
}

// refAEAD builds the AEAD straight from crypto/cipher or x/crypto.
func refAEAD(t testing.TB, a AEAD, key []byte) cipher.AEAD {
	t.Helper()
	if a == ChaCha20Poly1305 {
		c, err := chacha20poly1305.New(key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refNonce is RFC 9846 section 5.3 written out byte by byte.
func refNonce(iv []byte, seq uint64) []byte {
	n := bytes.Clone(iv)
	for i := 0; i < 8; i++ {
		n[len(n)-1-i] ^= byte(seq >> (8 * i))
	}
	return n
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 8448 section 3 ("Simple 1-RTT Handshake"), {server} derive write traffic
// keys for handshake data: a published vector for the traffic key calculation.
func TestTrafficKeyRFC8448(t *testing.T) {
	secret := unhex(`b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4
		e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38`)
	wantKey := unhex(`3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc`)
	wantIV := unhex(`5d 31 3e b2 67 12 76 ee 13 00 0b 30`)

	s := Suite{AES128GCM, crypto.SHA256}
	if k := refExpandLabel(crypto.SHA256, secret, "key", nil, 16); !bytes.Equal(k, wantKey) {
		t.Fatalf("reference HKDF-Expand-Label disagrees with RFC 8448: %x", k)
	}
	key, iv, err := trafficKeyIV(s, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, wantKey) || !bytes.Equal(iv, wantIV) {
		t.Fatalf("key %x iv %x, want %x %x", key, iv, wantKey, wantIV)
	}
}

// The key and IV of every suite shape against the independent computation.
func TestTrafficKeyKnownAnswers(t *testing.T) {
	for _, s := range []Suite{
		{AES128GCM, crypto.SHA256},
		{AES256GCM, crypto.SHA384},
		{AES256GCM, crypto.SHA512},
		{ChaCha20Poly1305, crypto.SHA256},
		{ChaCha20Poly1305, crypto.SHA512},
	} {
		secret := testSecret(s, 7, 'k')
		key, iv, err := trafficKeyIV(s, secret)
		if err != nil {
			t.Fatal(err)
		}
		wantKey := refExpandLabel(s.Hash, secret, "key", nil, refKeyLen(s.AEAD))
		wantIV := refExpandLabel(s.Hash, secret, "iv", nil, 12)
		if !bytes.Equal(key, wantKey) || !bytes.Equal(iv, wantIV) {
			t.Errorf("%v/%v: key %x iv %x, want %x %x", s.AEAD, s.Hash, key, iv, wantKey, wantIV)
		}
	}
}

// fakeExporter hands out deterministic secrets and remembers them, so the
// test can check what was asked for and that the secrets were wiped.
type fakeExporter struct {
	suite  Suite
	calls  []string
	handed [][]byte
}

func (f *fakeExporter) Export(label string, context []byte, length int) ([]byte, error) {
	if len(context) != 0 || length != f.suite.Hash.Size() {
		return nil, errors.New("unexpected export arguments")
	}
	f.calls = append(f.calls, label)
	out := f.secretFor(label)
	f.handed = append(f.handed, out)
	return out, nil
}

func (f *fakeExporter) secretFor(label string) []byte {
	out := make([]byte, f.suite.Hash.Size())
	for i := range out {
		out[i] = label[i%len(label)] + byte(i)
	}
	return out
}

// DeriveEpochKeys uses the draft's labels, gives the initiator the client
// secret, wipes the exported secrets, and its keys protect records exactly as
// keys derived by hand do.
func TestDeriveEpochKeys(t *testing.T) {
	for _, tc := range testSuites {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.suite
			for _, role := range []Role{Initiator, Responder} {
				exp := &fakeExporter{suite: s}
				send, recv, err := DeriveEpochKeys(s, exp, 9, role)
				if err != nil {
					t.Fatal(err)
				}
				sendLabel, recvLabel := "MLS-TLS c ap traffic", "MLS-TLS s ap traffic"
				if role == Responder {
					sendLabel, recvLabel = recvLabel, sendLabel
				}
				if len(exp.calls) != 2 || exp.calls[0] != sendLabel || exp.calls[1] != recvLabel {
					t.Fatalf("exports %q", exp.calls)
				}
				for _, h := range exp.handed {
					if !bytes.Equal(h, make([]byte, len(h))) {
						t.Fatal("exported traffic secret not zeroed")
					}
				}
				if send.Epoch() != 9 || recv.Epoch() != 9 {
					t.Fatal("epoch not carried")
				}
				checkKeysMatch(t, s, send, exp.secretFor(sendLabel))
				checkKeysMatch(t, s, recv, exp.secretFor(recvLabel))
			}
		})
	}
}

// checkKeysMatch seals a stream record with k and opens it with an AEAD
// keyed by hand from secret.
func checkKeysMatch(t *testing.T, s Suite, k *TrafficKeys, secret []byte) {
	t.Helper()
	w := NewStreamWriter(Config{})
	if err := w.SetKeys(k); err != nil {
		t.Fatal(err)
	}
	rec, err := w.SealRecord(nil, ContentApplicationData, []byte("hello"), 0)
	if err != nil {
		t.Fatal(err)
	}
	key := refExpandLabel(s.Hash, secret, "key", nil, refKeyLen(s.AEAD))
	iv := refExpandLabel(s.Hash, secret, "iv", nil, 12)
	pt, err := refAEAD(t, s.AEAD, key).Open(nil, refNonce(iv, 0), rec[5:], rec[:5])
	if err != nil || string(pt) != "hello\x17" {
		t.Fatalf("hand-keyed AEAD cannot open the record: %v %q", err, pt)
	}
}

func TestNewTrafficKeysWipesSecret(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	secret := testSecret(s, 1, 1)
	if _, err := NewTrafficKeys(s, 1, secret); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret, make([]byte, len(secret))) {
		t.Fatal("secret not zeroed")
	}
	// Also on failure: a wrong-length secret is refused and still wiped.
	short := []byte{1, 2, 3}
	if _, err := NewTrafficKeys(s, 1, short); err != ErrInvalidArgument {
		t.Fatalf("err = %v", err)
	}
	if !bytes.Equal(short, []byte{0, 0, 0}) {
		t.Fatal("refused secret not zeroed")
	}
	if _, err := NewTrafficKeys(Suite{AEAD: 9, Hash: crypto.SHA256}, 1, testSecret(s, 1, 1)); err != ErrInvalidArgument {
		t.Fatalf("unknown AEAD: err = %v", err)
	}
	if _, err := NewTrafficKeys(Suite{AES128GCM, crypto.MD5}, 1, make([]byte, 16)); err != ErrInvalidArgument {
		t.Fatalf("MD5: err = %v", err)
	}
}

// Replaced keys are wiped, and keys cannot be installed twice (two sequence
// number spaces under one key would reuse nonces).
func TestReplacedKeysWiped(t *testing.T) {
	s := Suite{ChaCha20Poly1305, crypto.SHA256}
	k1, k1b := keyPair(t, s, 1, 'x')
	k2, _ := keyPair(t, s, 2, 'x')

	w := NewDatagramSender(1, Config{})
	if err := w.SetKeys(k1); err != nil {
		t.Fatal(err)
	}
	if err := NewStreamWriter(Config{}).SetKeys(k1); err != ErrInvalidArgument {
		t.Fatalf("second install of the same keys: %v", err)
	}
	if err := w.SetKeys(k1b); err != ErrEpochOrder {
		t.Fatalf("same epoch again: %v", err)
	}
	if err := w.SetKeys(k2); err != nil {
		t.Fatal(err)
	}
	if k1.aead != nil || k1.iv != [12]byte{} || k1.ivLo != 0 {
		t.Fatal("replaced keys not wiped")
	}
}

func TestAEADFromHPKE(t *testing.T) {
	for id, want := range map[uint16]AEAD{1: AES128GCM, 2: AES256GCM, 3: ChaCha20Poly1305} {
		if got, ok := AEADFromHPKE(id); !ok || got != want {
			t.Errorf("AEADFromHPKE(%d) = %v %v", id, got, ok)
		}
	}
	if _, ok := AEADFromHPKE(0xffff); ok {
		t.Error("export-only AEAD accepted")
	}
}
