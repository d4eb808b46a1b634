package tunnel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/current-vpn/current/session/record"
)

// TestSetRekeyPolicy: a policy changed at run time reaches the running
// session, and turning updates off stops them.
func TestSetRekeyPolicy(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0,
		Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	b := startNode(t, Config{ListenPort: -1, RekeyInterval: -1,
		Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32")}}}, kb)
	waitFor(t, "session", func() bool { return a.dev.Stats().Peers["b"].Established && b.dev.Stats().Peers["a"].Established })
	if e := b.dev.Stats().Peers["a"].Epochs; e != 0 {
		t.Fatalf("%d epoch changes under the default policy", e)
	}
	a.dev.SetRekeyPolicy(100*time.Millisecond, 0)
	if iv, n := a.dev.RekeyPolicy(); iv != 100*time.Millisecond || n != 0 {
		t.Fatalf("RekeyPolicy: %v %d", iv, n)
	}
	waitFor(t, "three scheduled updates", func() bool { return b.dev.Stats().Peers["a"].Epochs >= 3 })

	a.dev.SetRekeyPolicy(-1, -1)
	// An update in flight may still finish.
	time.Sleep(200 * time.Millisecond)
	before := b.dev.Stats().Peers["a"].Epochs
	time.Sleep(400 * time.Millisecond)
	if after := b.dev.Stats().Peers["a"].Epochs; after != before {
		t.Fatalf("updates went on after they were disabled: %d -> %d", before, after)
	}
	p := ipPacket("10.0.0.1", "10.0.0.2", "after updates")
	a.tun.in <- p
	b.tun.expect(t, p)
}

// TestReplayDropCounted: every datagram from B reaches A twice; the
// second copy of each record is counted as a replay.
func TestReplayDropCounted(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}}}, ka)
	// Every datagram from B reaches A twice.
	px := copyingProxy(t, a.dev.UDPPort(), func(d []byte) [][]byte { return [][]byte{d} })
	b := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub,
		Endpoint: px.LocalAddr().String(), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}}}, kb)

	p := ipPacket("10.0.0.2", "10.0.0.1", "twice")
	b.tun.in <- p
	a.tun.expect(t, p)
	for range 3 {
		b.tun.in <- p
		a.tun.expect(t, p)
	}
	waitFor(t, "replay drops", func() bool { return a.dev.Stats().Peers["b"].DropReplay >= 4 })
	a.tun.expectNone(t, 50*time.Millisecond) // the copies were not delivered
	var st PeerStatus
	for _, ps := range a.dev.PeerStatus() {
		st = ps
	}
	if st.Name != "b" || st.DropReplay < 4 {
		t.Fatalf("peer status: %+v", st)
	}
	if s := b.dev.Stats().Peers["a"]; s.DropReplay != 0 {
		t.Fatalf("B counted replays: %+v", s)
	}
}

// copyingProxy relays UDP between a device on 127.0.0.1:port and the
// first other sender; what the sender sends goes to the device after the
// copies extra makes of it (before: the replay window, checked before the
// AEAD, would count a forged copy of a record it accepted as a replay).
func copyingProxy(t *testing.T, port int, extra func(d []byte) [][]byte) *net.UDPConn {
	t.Helper()
	aAddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	px, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { px.Close(); <-done })
	go func() {
		defer close(done)
		var bAddr *net.UDPAddr
		buf := make([]byte, 65536)
		for {
			n, src, err := px.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if src.Port == aAddr.Port {
				if bAddr != nil {
					_, _ = px.WriteToUDP(buf[:n], bAddr)
				}
				continue
			}
			bAddr = src
			for _, c := range extra(bytes.Clone(buf[:n])) {
				_, _ = px.WriteToUDP(c, aAddr)
			}
			_, _ = px.WriteToUDP(buf[:n], aAddr)
		}
	}()
	return px
}

// TestDropsCountedByReason: records that name an epoch the session does
// not hold, and records that fail authentication, are dropped and counted
// each by its reason, and the traffic goes on.
func TestDropsCountedByReason(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}}}, ka)
	px := copyingProxy(t, a.dev.UDPPort(), func(d []byte) [][]byte {
		if _, ok := record.DatagramReceiverIndex(d); !ok {
			return nil // a control datagram: left alone
		}
		forged := bytes.Clone(d)
		forged[len(forged)-1] ^= 1
		future := bytes.Clone(d)
		binary.BigEndian.PutUint16(future[1:], binary.BigEndian.Uint16(d[1:])+100)
		return [][]byte{forged, future}
	})
	b := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub,
		Endpoint: px.LocalAddr().String(), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}}}, kb)
	for i := range 4 {
		p := ipPacket("10.0.0.2", "10.0.0.1", fmt.Sprintf("packet %d", i))
		b.tun.in <- p
		a.tun.expect(t, p)
	}
	waitFor(t, "drops by reason", func() bool {
		s := a.dev.Stats().Peers["b"]
		return s.DropBadMAC >= 4 && s.DropUnknownEpoch >= 4
	})
	if s := a.dev.Stats().Peers["b"]; s.DropReplay != 0 {
		t.Fatalf("%d forged records counted as replays", s.DropReplay)
	}
	var st PeerStatus
	for _, ps := range a.dev.PeerStatus() {
		st = ps
	}
	if st.DropBadMAC < 4 || st.DropUnknownEpoch < 4 || st.DropReplay != 0 {
		t.Fatalf("peer status: bad MAC %d, unknown epoch %d, replay %d", st.DropBadMAC, st.DropUnknownEpoch, st.DropReplay)
	}
	p := ipPacket("10.0.0.2", "10.0.0.1", "after the forgeries")
	b.tun.in <- p
	a.tun.expect(t, p)
}
