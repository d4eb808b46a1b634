package tunnel

import (
	"bytes"
	"testing"
)

// FuzzReadClientHello feeds arbitrary first bytes of a TCP connection to the
// accepter's parser: it must never panic, and whatever it accepts must be a
// prefix of the input that it hands on unchanged.
func FuzzReadClientHello(f *testing.F) {
	k, peer := newKeys(f, testSuite), newKeys(f, testSuite)
	good := helloBytes(f, testSuite, k, peer.pub)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{22, 3, 3, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readClientHello(bytes.NewReader(data))
		if err != nil {
			return
		}
		if !bytes.HasPrefix(data, h.raw) || len(h.signatureKey) == 0 {
			t.Fatalf("accepted hello does not match its input")
		}
	})
}
