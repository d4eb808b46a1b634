package tunnel

import (
	"net"
	"testing"
	"time"
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
	aAddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.dev.UDPPort()}
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
			_, _ = px.WriteToUDP(buf[:n], aAddr)
			_, _ = px.WriteToUDP(buf[:n], aAddr)
		}
	}()
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
