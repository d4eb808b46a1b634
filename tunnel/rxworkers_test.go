package tunnel

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestManyPeersKeepOrder: a hub receiving from several peers at once over
// UDP, where the receive workers open the records of many peers per read
// and the owners take over for the epoch updates in the middle, delivers
// each peer's packets in the order sent.
func TestManyPeersKeepOrder(t *testing.T) {
	const peers, perPeer = 6, 300
	ka := newKeys(t, testSuite)
	keys := make([]keyPair, peers)
	var pcs []PeerConfig
	for i := range keys {
		keys[i] = newKeys(t, testSuite)
		pcs = append(pcs, PeerConfig{Name: fmt.Sprintf("p%d", i), PublicKey: keys[i].pub, AllowedIPs: pfxs(fmt.Sprintf("10.0.0.%d/32", i+2)), Transport: TransportUDP})
	}
	hub := startNode(t, Config{ListenPort: 0, Addresses: pfxs("10.0.0.1/24"), MTU: 1400, Peers: pcs}, ka)
	hubEP := fmt.Sprintf("127.0.0.1:%d", hub.dev.UDPPort())
	nodes := make([]*node, peers)
	for i := range nodes {
		nodes[i] = startNode(t, Config{ListenPort: -1, Peers: []PeerConfig{{Name: "hub", PublicKey: ka.pub, Endpoint: hubEP, AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}}}, keys[i])
	}
	for i, n := range nodes {
		p := ipPacket(fmt.Sprintf("10.0.0.%d", i+2), "10.0.0.1", "up")
		n.tun.in <- p
		hub.tun.expect(t, p)
	}
	seqPacket := func(peer, seq int) []byte {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(seq))
		return ipPacket(fmt.Sprintf("10.0.0.%d", peer+2), "10.0.0.1", string(b[:]))
	}
	for i, n := range nodes {
		go func() {
			for s := range perPeer {
				n.tun.in <- seqPacket(i, s)
				if s%50 == 49 {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	last := make(map[netip.Addr]int)
	got := 0
	deadline := time.After(20 * time.Second)
	rekeyed := false
	for got < peers*perPeer {
		select {
		case p := <-hub.tun.out:
			src, _, ok := packetAddrs(p)
			if !ok || len(p) != 24 {
				t.Fatalf("hub wrote %x", p)
			}
			seq := int(binary.BigEndian.Uint32(p[20:]))
			if prev, seen := last[src]; seen && seq <= prev {
				t.Fatalf("from %v: %d after %d", src, seq, prev)
			}
			last[src] = seq
			got++
			if got == peers*perPeer/3 && !rekeyed {
				hub.dev.Rekey()
				rekeyed = true
			}
		case <-deadline:
			// Losses at full queues are allowed, reordering is not:
			// what matters is what arrived.
			if got < peers*perPeer/2 {
				t.Fatalf("only %d of %d packets arrived", got, peers*perPeer)
			}
			t.Logf("%d of %d packets arrived", got, peers*perPeer)
			return
		}
	}
	if len(last) != peers {
		t.Fatalf("packets from %d sources, want %d", len(last), peers)
	}
	waitFor(t, "epoch updates", func() bool {
		for _, s := range hub.dev.Stats().Peers {
			if s.Epochs < 1 {
				return false
			}
		}
		return true
	})
	if hub.dev.udp.rx.workers == nil {
		t.Fatal("no receive workers started")
	}
}
