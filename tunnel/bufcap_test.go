package tunnel

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestBufferCapFollowsPeers: the budget is sized for the configured
// peers when the device starts and again whenever Reconfigure changes
// them, and so are its shares.
func TestBufferCapFollowsPeers(t *testing.T) {
	cores, mem := runtime.GOMAXPROCS(0), memoryLimit()
	if bufferCap(cores, 3, 0) <= bufferCap(cores, 1, 0) || bufferCap(cores, 1, 0) <= bufferCap(cores, 0, 0) {
		t.Fatal("the budget does not grow with the peers")
	}
	if bufferCap(cores, 100000, 0) != bufferCap(cores, capPeers, 0) {
		t.Fatal("the budget grows beyond capPeers peers")
	}
	// A router with 256 MiB: a quarter of it at most.
	if n := bufferCap(4, 100, 256<<20); n*bufSize > 64<<20 || n < minCap {
		t.Fatalf("budget of %d buffers with 256 MiB of memory", n)
	}
	if n := bufferCap(4, 100, 1<<20); n != minCap {
		t.Fatalf("budget of %d buffers with 1 MiB of memory, want the minimum %d", n, minCap)
	}
	var peers []PeerConfig
	for i := range 3 {
		k := newKeys(t, testSuite)
		peers = append(peers, PeerConfig{Name: fmt.Sprint("p", i), PublicKey: k.pub, AllowedIPs: pfxs(fmt.Sprintf("10.0.1.%d/32", i+1))})
	}
	n := startNode(t, Config{ListenPort: -1, Peers: peers[:1]}, newKeys(t, testSuite))
	check := func(peers int) {
		t.Helper()
		want := bufferCap(cores, peers, mem)
		if got := n.dev.BufferStats().Cap; got != want {
			t.Fatalf("with %d peers: cap %d, want %d", peers, got, want)
		}
		if got := n.dev.buf.queueLimit(); got != max(want/queueShare, maxBatch) {
			t.Fatalf("with %d peers: queue share %d of %d", peers, got, want)
		}
	}
	check(1)
	if err := n.dev.Reconfigure(peers); err != nil {
		t.Fatal(err)
	}
	check(3)
	if err := n.dev.Reconfigure(nil); err != nil {
		t.Fatal(err)
	}
	check(0)
}

// TestReadersDropAtCap: with every buffer of A's pool in use, A's TUN
// reader drops what it reads (counted), and so does the stream session's
// delivery of what B sends; nothing blocks, and once buffers come back
// both directions flow again over the same connection.
func TestReadersDropAtCap(t *testing.T) {
	a, b := pair(t)
	up, down := ipPacket("10.0.0.1", "10.0.0.2", "up"), ipPacket("10.0.0.2", "10.0.0.1", "down")
	b.tun.in <- down
	a.tun.expect(t, down)
	a.tun.in <- up
	b.tun.expect(t, up)

	held := holdBudget(t, a.dev)
	a.tun.in <- ipPacket("10.0.0.1", "10.0.0.2", "dropped at A's TUN reader")
	waitFor(t, "the TUN reader's drop", func() bool { return a.dev.BufferStats().DropNoBuffer == 1 })
	b.tun.in <- ipPacket("10.0.0.2", "10.0.0.1", "dropped at A's delivery")
	waitFor(t, "the delivery's drop", func() bool { return a.dev.BufferStats().DropNoBuffer == 2 })
	a.tun.expectNone(t, 50*time.Millisecond)
	b.tun.expectNone(t, 50*time.Millisecond)

	releaseAll(held)
	b.tun.in <- down
	a.tun.expect(t, down)
	a.tun.in <- up
	b.tun.expect(t, up)
	if s := a.dev.Stats().Peers["b"]; s.Handshakes != 1 {
		t.Fatalf("the session did not survive: %+v", s)
	}
}

// holdBudget takes every buffer of d's pool. One can be in flight (a
// keepalive being sent, a stream reader's): what comes back soon after is
// taken too, so that the whole budget is ours or in use.
func holdBudget(t *testing.T, d *Device) []*packetBuf {
	t.Helper()
	held := takeAll(d.buf.pool)
	time.Sleep(50 * time.Millisecond)
	held = append(held, takeAll(d.buf.pool)...)
	if s := d.BufferStats(); s.Live != s.Cap || len(held) < s.Cap-2 {
		t.Fatalf("holding %d: %+v", len(held), s)
	}
	return held
}

// TestUDPReaderDropsAtCap: the same for datagrams: a UDP reader without a
// buffer drops the datagram it read, and the session goes on.
func TestUDPReaderDropsAtCap(t *testing.T) {
	a, b := udpPair(t, "", "")
	p := ipPacket("10.0.0.2", "10.0.0.1", "over udp")
	b.tun.in <- p
	a.tun.expect(t, p)

	held := holdBudget(t, a.dev)
	b.tun.in <- ipPacket("10.0.0.2", "10.0.0.1", "dropped at A's UDP reader")
	waitFor(t, "the UDP reader's drop", func() bool { return a.dev.BufferStats().DropNoBuffer >= 1 })
	a.tun.expectNone(t, 50*time.Millisecond)
	releaseAll(held)
	b.tun.in <- p
	a.tun.expect(t, p)
}

// TestPendingShare: packets held for peers without a session count
// against one share of the budget, all peers together: beyond it each
// peer drops its oldest (or, holding none, the new packet), and a removed
// peer's packets come back.
func TestPendingShare(t *testing.T) {
	var peers []PeerConfig
	for i := range 2 {
		k := newKeys(t, testSuite)
		peers = append(peers, PeerConfig{Name: fmt.Sprint("p", i), PublicKey: k.pub, AllowedIPs: pfxs(fmt.Sprintf("10.0.1.%d/32", i+1))})
	}
	n := startNode(t, Config{ListenPort: -1, Peers: peers}, newKeys(t, testSuite))
	n.dev.setBufferCap(4 * maxBatch) // a pending share of maxBatch
	share := int(n.dev.buf.pending.Load())
	if share != maxBatch {
		t.Fatalf("pending share %d, want %d", share, maxBatch)
	}
	// p0's packets are all held before p1's come, so p0 keeps 100.
	for i := range 100 {
		n.tun.in <- ipPacket("10.0.0.1", "10.0.1.1", fmt.Sprint(i))
	}
	waitFor(t, "p0's packets held", func() bool { return n.dev.buf.held.Load() == 100 })
	for i := range 100 {
		n.tun.in <- ipPacket("10.0.0.1", "10.0.1.2", fmt.Sprint(i))
	}
	drops := func() uint64 {
		s := n.dev.Stats()
		return s.Peers["p0"].DropQueueFull + s.Peers["p1"].DropQueueFull
	}
	waitFor(t, "the packets held or dropped", func() bool { return drops() == uint64(200-share) })
	if held := n.dev.buf.held.Load(); held != int64(share) {
		t.Fatalf("%d packets held, want %d", held, share)
	}
	if s := n.dev.BufferStats(); s.Live != share {
		t.Fatalf("%d buffers live, want the %d held", s.Live, share)
	}
	if err := n.dev.Reconfigure(peers[:1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed peer's packets", func() bool { return n.dev.BufferStats().Live == 100 })
	if held := n.dev.buf.held.Load(); held != 100 {
		t.Fatalf("%d packets held after the removal, want p0's 100", held)
	}
}

// TestNoBufferLeak: whatever is in flight when devices close (queued for
// owners, sealed for writers, waiting in a TUN writer that cannot write,
// queued on a TCP connection), every buffer comes back and the pool's
// memory is unmapped.
func TestNoBufferLeak(t *testing.T) {
	burst := func(t *testing.T, a, b *node) {
		t.Helper()
		p := ipPacket("10.0.0.2", "10.0.0.1", "first")
		b.tun.in <- p
		a.tun.expect(t, p)
		// Until a's fake TUN is full and its writer blocks; the rest
		// waits in queues and writers, or is dropped on the way.
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; len(a.tun.out) < cap(a.tun.out); i++ {
			if time.Now().After(deadline) {
				t.Fatalf("a's TUN holds %d packets after %d sent", len(a.tun.out), i)
			}
			b.tun.in <- ipPacket("10.0.0.2", "10.0.0.1", fmt.Sprint(i))
		}
		for i := range 500 {
			b.tun.in <- ipPacket("10.0.0.2", "10.0.0.1", fmt.Sprint(i))
		}
		if s := a.dev.BufferStats(); s.Live == 0 {
			t.Fatalf("nothing in flight at A: %+v", s)
		}
	}
	check := func(t *testing.T, nodes ...*node) {
		t.Helper()
		for _, n := range nodes {
			if err := n.dev.Close(); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range nodes {
			if s := n.dev.BufferStats(); s.Live != 0 || s.Mapped != 0 {
				t.Errorf("after Close: %+v, want no buffer live or mapped", s)
			}
		}
	}
	t.Run("udp", func(t *testing.T) {
		a, b := udpPair(t, "", "")
		burst(t, a, b)
		check(t, a, b)
	})
	t.Run("tcp", func(t *testing.T) {
		a, b := pair(t)
		burst(t, a, b)
		check(t, a, b)
	})
}

// TestStreamConnReleasesOnAbort: records queued on a TCP connection
// behind a write that never completes come back when the connection is
// aborted, and so do records queued after its writer stopped.
func TestStreamConnReleasesOnAbort(t *testing.T) {
	bp := newBufPool(16)
	defer bp.close()
	x, y := net.Pipe() // nobody reads y: the first write blocks
	defer y.Close()
	c := newStreamConn(x, true, nil)
	var wg sync.WaitGroup
	c.start(&wg, make(chan connEvent))
	send := func() {
		b := ioBatchPool.Get().(*ioBatch)
		pb := bp.get()
		pb.pkt = pb.arr[:100]
		b.bufs, b.pkts = append(b.bufs, pb), append(b.pkts, pb.pkt)
		c.sendOwned(b)
	}
	send()
	waitFor(t, "the writer to take the first record", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.owned) == 0
	})
	send()
	send()
	c.abort()
	wg.Wait()
	send()
	if live, _, _ := bp.counts(); live != 0 {
		t.Fatalf("%d buffers still out after the connection ended", live)
	}
}
