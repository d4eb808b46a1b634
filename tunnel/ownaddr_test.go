package tunnel

import (
	"testing"
	"time"
)

// A hub that is B's full tunnel (A allows B everything) still refuses
// packets from B whose source is one of A's own addresses: the kernel
// would take the IPv6 one as ours.
func TestOwnAddressAsSourceRefused(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{
		Addresses: pfxs("10.0.0.1/24", "fd00::1/64"),
		MTU:       1400,
		Peers:     []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("0.0.0.0/0", "::/0")}},
	}, ka)
	b := startNode(t, Config{
		Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("0.0.0.0/0", "::/0")}},
	}, kb)

	ok := ipPacket("fd00::2", "fd00::1", "from b's own address")
	b.tun.in <- ok
	a.tun.expect(t, ok)
	for i, src := range []string{"fd00::1", "10.0.0.1"} {
		b.tun.in <- ipPacket(src, src, "as a itself")
		a.tun.expectNone(t, 100*time.Millisecond)
		if got := a.dev.Stats().Peers["b"].DropSource; got != uint64(i+1) {
			t.Fatalf("source %s: DropSource = %d, want %d", src, got, i+1)
		}
	}
	// A covering prefix is no reason to refuse the rest of the subnet.
	other := ipPacket("fd00::77", "fd00::1", "another host of the subnet")
	b.tun.in <- other
	a.tun.expect(t, other)
}
