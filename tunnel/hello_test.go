package tunnel

import (
	"bytes"
	"testing"
	"testing/iotest"
	"time"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/mls"
)

const testSuite = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

type keyPair struct{ priv, pub []byte }

func newKeys(t testing.TB, id mls.CipherSuiteID) keyPair {
	t.Helper()
	s, err := mls.Suite(id)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{priv, pub}
}

// helloBytes is what an initiator with key k, pinning peer, sends first
// over TCP: a HelloKeyRequest when hiding, else a plaintext ClientHello.
func helloBytes(t testing.TB, id mls.CipherSuiteID, k keyPair, peer []byte, hide bool) []byte {
	t.Helper()
	s, err := session.New(session.Config{Role: session.Initiator, Suite: id, SigningKey: k.priv, PeerPublicKey: peer, HideIdentity: hide})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(time.Now()); err != nil {
		t.Fatal(err)
	}
	return bytes.Join(s.Outgoing(), nil)
}

func TestHelloStream(t *testing.T) {
	for _, id := range []mls.CipherSuiteID{testSuite, mls.MLS192MLKEM768AES256GCMSHA384MLDSA65} {
		k, peer := newKeys(t, id), newKeys(t, id)
		raw := helloBytes(t, id, k, peer.pub, true)
		// One byte per read: the parser must cope with any split.
		hs := &helloStream{r: iotest.OneByteReader(bytes.NewReader(append(raw, 22)))}
		typ, env, err := hs.next()
		if err != nil {
			t.Fatalf("%v: %v", id, err)
		}
		if typ != session.MsgHelloKeyRequest || len(env) >= len(raw) || !bytes.HasSuffix(raw, env) {
			t.Fatalf("%v: read a %s of %d bytes out of %d", id, typ, len(env), len(raw))
		}
		if len(hs.raw) > 1 {
			t.Fatalf("%v: %d bytes left past the request", id, len(hs.raw))
		}
		// A plaintext hello is recognised, to be refused.
		plain := helloBytes(t, id, k, peer.pub, false)
		hs = &helloStream{r: bytes.NewReader(plain)}
		if typ, _, err := hs.next(); err != nil || typ != session.MsgClientHello {
			t.Fatalf("%v: plaintext hello read as %s, %v", id, typ, err)
		}
	}
}

func TestHelloStreamRejects(t *testing.T) {
	k, peer := newKeys(t, testSuite), newKeys(t, testSuite)
	good := helloBytes(t, testSuite, k, peer.pub, true)
	close, err := session.EncodeControl(&session.Close{})
	if err != nil {
		t.Fatal(err)
	}
	closeRec := append([]byte{22, 3, 3, 0, byte(len(close))}, close...)
	// The request and one more byte of envelope in the same record.
	env := good[plainHeaderLen:]
	joined := append([]byte{22, 3, 3, 0, byte(len(env) + 1)}, append(append([]byte(nil), env...), 0)...)
	for name, b := range map[string][]byte{
		"http":        []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"app data":    append([]byte{23, 3, 3, 0, 1}, 0),
		"empty rec":   {22, 3, 3, 0, 0},
		"not hello":   closeRec,
		"bad version": append([]byte{22, 3, 3, 0, 4}, 0, 9, 1, 0),
		"truncated":   good[:len(good)-1],
		"trailing":    joined,
		"nothing":     nil,
	} {
		if _, _, err := (&helloStream{r: bytes.NewReader(b)}).next(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A peer that never stops sending must be cut off at the bound.
	endless := append([]byte{22, 3, 3, 0x40, 0}, make([]byte, 2*maxHelloLen)...)
	if _, _, err := (&helloStream{r: bytes.NewReader(endless)}).next(); err == nil {
		t.Error("endless hello accepted")
	}
}

// sealingTo makes cfg that of an initiator that cached d's hello key: its
// first message is a SealedHello.
func sealingTo(t testing.TB, cfg session.Config, d *Device) session.Config {
	t.Helper()
	key, err := d.hello.ring.Current().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	cfg.HideIdentity, cfg.PeerHelloKey = true, key
	return cfg
}

// sealedHelloBytes is what an initiator with key k that cached d's hello
// key sends first over TCP.
func sealedHelloBytes(t testing.TB, k keyPair, d *Device) []byte {
	t.Helper()
	pub, err := d.hello.ring.Current().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.New(session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: k.priv, PeerPublicKey: d.ownPub, HideIdentity: true, PeerHelloKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(time.Now()); err != nil {
		t.Fatal(err)
	}
	return bytes.Join(s.Outgoing(), nil)
}
