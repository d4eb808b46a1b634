package tunnel

import (
	"fmt"
	"testing"
)

// TestStreamUpdatesUnderTraffic sends packets over TCP with a byte budget
// so small that epoch updates start in the middle of the owner's batches:
// the update's record is sealed between two packets' records, so it must
// reach the stream between them too, or the peer's record layer fails. All
// packets arrive, in order, on the first session.
func TestStreamUpdatesUnderTraffic(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{
		ListenPort: 0,
		Addresses:  pfxs("10.0.0.1/24"),
		RekeyBytes: 8 << 10,
		Peers:      []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}},
	}, ka)
	b := startNode(t, Config{
		ListenPort: -1,
		RekeyBytes: 8 << 10,
		Peers:      []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32")}},
	}, kb)
	first := ipPacket("10.0.0.2", "10.0.0.1", "hello")
	b.tun.in <- first
	a.tun.expect(t, first)

	const n = 3000
	pad := make([]byte, 900)
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = ipPacket("10.0.0.1", "10.0.0.2", fmt.Sprintf("%04d%s", i, pad))
	}
	// In rounds, so that the connection's 1 MiB queue never overflows
	// (that drop would be right, and not what this test is about).
	const round = 100
	for start := 0; start < n; start += round {
		go func(pkts [][]byte) {
			for _, p := range pkts {
				select {
				case a.tun.in <- p:
				case <-a.tun.closed:
					return
				}
			}
		}(pkts[start : start+round])
		for _, p := range pkts[start : start+round] {
			b.tun.expect(t, p)
		}
	}
	sa, sb := a.dev.Stats().Peers["b"], b.dev.Stats().Peers["a"]
	if sa.Handshakes != 1 || sb.Handshakes != 1 || !sa.Established {
		t.Fatalf("the session did not survive: A %+v, B %+v", sa, sb)
	}
	// How many updates fit depends on the round trips; at least one
	// must have started while the packets flowed.
	if sa.Epoch < 2 {
		t.Fatalf("epoch %d after %d KiB with updates every 8 KiB", sa.Epoch, n*900/1024)
	}
	t.Logf("epoch %d after %d packets", sa.Epoch, n)
}
