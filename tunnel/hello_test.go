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

// helloBytes is what an initiator with key k, pinning peer, sends first.
func helloBytes(t testing.TB, id mls.CipherSuiteID, k keyPair, peer []byte) []byte {
	t.Helper()
	s, err := session.New(session.Config{Role: session.Initiator, Suite: id, SigningKey: k.priv, PeerPublicKey: peer})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(time.Now()); err != nil {
		t.Fatal(err)
	}
	return bytes.Join(s.Outgoing(), nil)
}

func TestReadClientHello(t *testing.T) {
	for _, id := range []mls.CipherSuiteID{testSuite, mls.MLS192MLKEM768AES256GCMSHA384MLDSA65} {
		k, peer := newKeys(t, id), newKeys(t, id)
		raw := helloBytes(t, id, k, peer.pub)
		// One byte per read: the parser must cope with any split.
		h, err := readClientHello(iotest.OneByteReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("%v: %v", id, err)
		}
		if !bytes.Equal(h.signatureKey, k.pub) || h.suite != id || !bytes.Equal(h.raw, raw) {
			t.Fatalf("%v: wrong hello: suite %v, key match %v, raw match %v", id, h.suite, bytes.Equal(h.signatureKey, k.pub), bytes.Equal(h.raw, raw))
		}
	}
}

func TestReadClientHelloRejects(t *testing.T) {
	k, peer := newKeys(t, testSuite), newKeys(t, testSuite)
	good := helloBytes(t, testSuite, k, peer.pub)
	close, err := session.EncodeControl(&session.Close{})
	if err != nil {
		t.Fatal(err)
	}
	closeRec := append([]byte{22, 3, 3, 0, byte(len(close))}, close...)
	for name, b := range map[string][]byte{
		"http":        []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"app data":    append([]byte{23, 3, 3, 0, 1}, 0),
		"empty rec":   {22, 3, 3, 0, 0},
		"not hello":   closeRec,
		"bad version": append([]byte{22, 3, 3, 0, 4}, 0, 9, 1, 0),
		"truncated":   good[:len(good)-1],
		"nothing":     nil,
	} {
		if _, err := readClientHello(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A peer that never stops sending must be cut off at the bound.
	if _, err := readClientHello(bytes.NewReader(append([]byte{22, 3, 3, 0x40, 0}, make([]byte, 2*maxHelloLen)...))); err == nil {
		t.Error("endless hello accepted")
	}
}
