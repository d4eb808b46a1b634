package tunnel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/current-vpn/current/session"
)

// wireTap relays B's traffic to A and keeps every byte it carries, in
// both directions: what an observer on the path sees.
type wireTap struct {
	mu sync.Mutex
	// dgrams are the UDP datagrams from B to A; streams the bytes of each
	// TCP connection from B to A; all is everything, both ways.
	dgrams  [][]byte
	streams []*bytes.Buffer
	all     [][]byte
}

func (w *wireTap) keep(fromB bool, b []byte, stream *bytes.Buffer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := bytes.Clone(b)
	w.all = append(w.all, c)
	switch {
	case fromB && stream != nil:
		stream.Write(c)
	case fromB:
		w.dgrams = append(w.dgrams, c)
	}
}

// reset forgets what was captured (a new contact begins).
func (w *wireTap) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dgrams, w.streams, w.all = nil, nil, nil
}

// udpTap relays datagrams between whoever last wrote to it (B) and A.
func udpTap(t *testing.T, w *wireTap, a string) string {
	t.Helper()
	front, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.Dial("udp", a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close(); back.Close() })
	var mu sync.Mutex
	var client net.Addr
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, from, err := front.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			client = from
			mu.Unlock()
			w.keep(true, buf[:n], nil)
			back.Write(buf[:n])
		}
	}()
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, err := back.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue // ICMP port unreachable while B restarts
			}
			w.keep(false, buf[:n], nil)
			mu.Lock()
			to := client
			mu.Unlock()
			if to != nil {
				front.WriteTo(buf[:n], to)
			}
		}
	}()
	return front.LocalAddr().String()
}

// tcpTap relays TCP connections to A.
func tcpTap(t *testing.T, w *wireTap, a string) string {
	return tcpForwarder(t, a, func(c, s net.Conn) {
		stream := new(bytes.Buffer)
		w.mu.Lock()
		w.streams = append(w.streams, stream)
		w.mu.Unlock()
		go relay(w, true, s, c, stream)
		go relay(w, false, c, s, nil)
	})
}

// tcpForwarder listens on loopback and, for each connection c it
// accepts, dials a and hands both to serve; both are closed at the end
// of the test. It returns the address to dial.
func tcpForwarder(t *testing.T, a string, serve func(c, s net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", a)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			serve(c, s)
		}
	}()
	return ln.Addr().String()
}

func relay(w *wireTap, fromB bool, dst io.WriteCloser, src io.Reader, stream *bytes.Buffer) {
	defer dst.Close()
	buf := make([]byte, 1<<16)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			w.keep(fromB, buf[:n], stream)
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// udpHelloTypes counts the unaddressed control messages B sent (by
// message, not fragment or retransmission), by type.
func (w *wireTap) udpHelloTypes() map[session.MsgType]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[[2]uint32]bool{}
	n := map[session.MsgType]int{}
	for _, d := range w.dgrams {
		f, ok := session.ParseHandshakeFragment(d)
		if !ok || f.Offset != 0 || len(f.Data) < 3 || seen[[2]uint32{f.Sender, f.MessageID}] {
			continue
		}
		if info, _ := session.ParseDatagram(d); info.Receiver != 0 {
			continue
		}
		seen[[2]uint32{f.Sender, f.MessageID}] = true
		n[session.MsgType(f.Data[2])]++
	}
	return n
}

// tcpFirstTypes is the type of the first message B sent on each TCP
// connection.
func (w *wireTap) tcpFirstTypes() []session.MsgType {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []session.MsgType
	for _, s := range w.streams {
		// The first record: a hello is in plaintext handshake records.
		b := s.Bytes()
		if len(b) < plainHeaderLen+3 || b[0] != contentHandshake {
			continue
		}
		frags := [][]byte{b[plainHeaderLen:]}
		out = append(out, session.MsgType(frags[0][2]))
	}
	return out
}

// leaks reports which of the secrets appear in anything captured.
func (w *wireTap) leaks(secrets map[string][]byte) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var found []string
	for name, s := range secrets {
		for _, b := range w.all {
			if bytes.Contains(b, s) {
				found = append(found, name)
				break
			}
		}
	}
	// A stream may split a secret across reads.
	for _, st := range w.streams {
		for name, s := range secrets {
			if bytes.Contains(st.Bytes(), s) {
				found = append(found, name+" (stream)")
			}
		}
	}
	return found
}

// groupOf is the MLS group ID of the session A keeps for its one peer.
func groupOf(t *testing.T, n *node) []byte {
	t.Helper()
	n.dev.mu.Lock()
	defer n.dev.mu.Unlock()
	for id := range n.dev.byGroup {
		return []byte(id)
	}
	t.Fatal("no group")
	return nil
}

// With identity hiding on, an observer between two devices sees neither
// signature key nor the group ID, over UDP (handshake, then a sealed
// resumption after B restarts) and over TCP (two handshakes); first
// contact costs one HelloKeyRequest, and B's second contact, after its
// restart, none: it sealed to the key it cached in its state directory.
func TestHidingOnTheWire(t *testing.T) {
	for _, tr := range []Transport{TransportUDP, TransportTCP} {
		t.Run(tr.String(), func(t *testing.T) {
			ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
			a := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: tr}}}, ka)
			w := new(wireTap)
			var endpoint string
			if tr == TransportUDP {
				endpoint = udpTap(t, w, fmt.Sprintf("127.0.0.1:%d", a.dev.UDPPort()))
			} else {
				endpoint = tcpTap(t, w, a.dev.ListenAddr().String())
			}
			dirB := t.TempDir()
			cfgB := Config{ListenPort: -1, StateDir: dirB, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: endpoint, AllowedIPs: pfxs("10.0.0.1/32"), Transport: tr}}}
			b := startNode(t, cfgB, kb)
			p := ipPacket("10.0.0.2", "10.0.0.1", "first contact")
			b.tun.in <- p
			a.tun.expect(t, p)
			secrets := map[string][]byte{"A's signature key": ka.pub, "B's signature key": kb.pub, "group ID": groupOf(t, a)}
			// The tap is not blind: A's hello key goes out in the clear.
			helloKey := a.dev.hello.ring.Current().PublicKey
			if seen := w.leaks(map[string][]byte{"hello key": helloKey}); len(seen) == 0 {
				t.Fatal("the tap did not see A's hello key answer")
			}
			first := w.udpHelloTypes()
			if tr == TransportTCP {
				first = map[session.MsgType]int{}
				for _, m := range w.tcpFirstTypes() {
					first[m]++
				}
			}
			t.Logf("first contact: %v", first)
			if first[session.MsgHelloKeyRequest] != 1 || first[session.MsgClientHello] != 0 {
				t.Fatalf("first contact sent %v: want one HelloKeyRequest and no plaintext hello", first)
			}
			if tr == TransportUDP && first[session.MsgSealedHello] != 1 {
				t.Fatalf("first contact sent %v: want one SealedHello", first)
			}
			if leaked := w.leaks(secrets); len(leaked) > 0 {
				t.Fatalf("on the wire at first contact: %v", leaked)
			}

			b.dev.Close()
			w.reset()
			b2 := startNode(t, cfgB, kb)
			q := ipPacket("10.0.0.2", "10.0.0.1", "second contact")
			b2.tun.in <- q
			a.tun.expect(t, q)
			var second map[session.MsgType]int
			if tr == TransportUDP {
				second = w.udpHelloTypes()
				if s := b2.dev.Stats().Peers["a"]; s.Resumed != 1 {
					t.Fatalf("B did not resume: %+v", s)
				}
			} else {
				second = map[session.MsgType]int{}
				for _, m := range w.tcpFirstTypes() {
					second[m]++
				}
			}
			t.Logf("second contact: %v", second)
			secrets["second group ID"] = groupOf(t, a)
			if second[session.MsgHelloKeyRequest] != 0 || second[session.MsgSealedHello] == 0 {
				t.Fatalf("second contact sent %v: want a SealedHello to the cached key and no HelloKeyRequest", second)
			}
			if leaked := w.leaks(secrets); len(leaked) > 0 {
				t.Fatalf("on the wire at second contact: %v", leaked)
			}
		})
	}
}
