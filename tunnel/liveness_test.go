package tunnel

import (
	"net"
	"testing"
	"time"
)

// TestForgetfulHub: the hub (A) restarts without its state; the laptop
// (B) goes on sending under the session A forgot, notices within
// silentAfter that nothing authenticated comes back, and handshakes
// afresh, so its traffic reaches the new hub without waiting for the
// update schedule to give up.
func TestForgetfulHub(t *testing.T) {
	testForgetfulHub(t, 0)
}

// TestHubBackAfterLongAbsence: the same with the hub away for longer than
// a handshake attempt lasts, the laptop sending all along: it keeps
// looking for the hub often enough to carry traffic within
// trafficRedialMax (plus a round trip) of the hub being back.
func TestHubBackAfterLongAbsence(t *testing.T) {
	if testing.Short() {
		t.Skip("the hub stays away for 12 s")
	}
	testForgetfulHub(t, 12*time.Second)
}

func testForgetfulHub(t *testing.T, away time.Duration) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	hubCfg := Config{
		Addresses: pfxs("10.0.0.1/24"),
		MTU:       1400,
		Peers:     []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}},
		// Saved at Close, so the old hub does not tell the laptop it
		// goes; the new one starts with an empty state directory.
		StateDir: t.TempDir(),
	}
	a := startNode(t, hubCfg, ka)
	port := a.dev.ListenAddr().(*net.TCPAddr).Port
	b := startNode(t, Config{
		Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}},
	}, kb)
	p := ipPacket("10.0.0.2", "10.0.0.1", "before")
	b.tun.in <- p
	a.tun.expect(t, p)

	a.dev.Close()
	for end := time.Now().Add(away); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		b.tun.in <- ipPacket("10.0.0.2", "10.0.0.1", "while the hub is away")
	}
	hubCfg.ListenPort, hubCfg.StateDir = port, t.TempDir()
	a = startNode(t, hubCfg, ka)
	restarted := time.Now()
	// A ping every 100 ms until one arrives.
	for i := 0; ; i++ {
		b.tun.in <- ipPacket("10.0.0.2", "10.0.0.1", "after")
		select {
		case <-a.tun.out:
		case <-time.After(100 * time.Millisecond):
			if time.Since(restarted) > 10*time.Second {
				t.Fatal("no packet through the new hub within 10 s")
			}
			continue
		}
		break
	}
	took := time.Since(restarted)
	t.Logf("first packet through the restarted hub after %v", took.Round(time.Millisecond))
	if got := b.dev.Stats().Peers["a"].SilentSessions; got != 1 && away == 0 || got == 0 {
		t.Fatalf("SilentSessions = %d, want 1 (at least 1 after an absence)", got)
	}
	if away > 0 {
		if limit := trafficRedialMax + time.Second; took > limit {
			t.Fatalf("through %v after the hub came back, want at most %v", took, limit)
		}
		return
	}
	if took < silentAfter {
		t.Fatalf("through after %v, before the silence could be noticed: the old session cannot have carried it", took)
	}
}

// TestPassiveKeepalive: one-way traffic gets keepalives back, so that its
// sender hears the peer and does not take the session for dead.
func TestPassiveKeepalive(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{
		Addresses: pfxs("10.0.0.1/24"),
		MTU:       1400,
		Peers:     []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}},
	}, ka)
	b := startNode(t, Config{
		Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}},
	}, kb)
	start := time.Now()
	for time.Since(start) < 3*silentAfter {
		p := ipPacket("10.0.0.2", "10.0.0.1", "one way")
		b.tun.in <- p
		a.tun.expect(t, p)
		time.Sleep(20 * time.Millisecond)
	}
	if got := a.dev.Stats().Peers["b"].KeepalivesTx; got == 0 {
		t.Fatal("the receiver of one-way traffic sent no keepalive")
	}
	if got := b.dev.Stats().Peers["a"].SilentSessions; got != 0 {
		t.Fatalf("one-way traffic for %v: the sender dropped %d sessions as silent", 3*silentAfter, got)
	}
}
