package tunnel

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// openTestBind opens a bind on a port the kernel picks.
func openTestBind(t *testing.T) (*linuxBind, []udpReader, uint16) {
	t.Helper()
	b, rs, port, err := openUDPBind(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.(*linuxBind), rs, port
}

// readerFor is the reader of the socket of addr's family.
func readerFor(t *testing.T, b *linuxBind, rs []udpReader, addr netip.Addr) udpReader {
	t.Helper()
	want := b.v4
	if addr.Is6() {
		want = b.v6
	}
	for _, r := range rs {
		if r.(*linuxReader).s == want {
			return r
		}
	}
	t.Skipf("no socket for %v", addr)
	return nil
}

// receiveDatagrams reads until n datagrams came, and returns them with
// their endpoints and the number of messages they came in.
func receiveDatagrams(t *testing.T, r udpReader, n int) ([][]byte, []*udpEndpoint, int) {
	t.Helper()
	bufs := make([][]byte, r.batch())
	for i := range bufs {
		bufs[i] = make([]byte, 1<<16)
	}
	msgs := make([]udpMsg, len(bufs))
	var got [][]byte
	var eps []*udpEndpoint
	nmsgs := 0
	deadline := time.AfterFunc(5*time.Second, func() { r.(*linuxReader).s.uc.Close() })
	defer deadline.Stop()
	for len(got) < n {
		k, err := r.read(bufs, msgs)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), n, err)
		}
		nmsgs += k
		for i := range k {
			msgs[i].datagrams(bufs[i], func(d []byte) {
				got = append(got, bytes.Clone(d))
				eps = append(eps, msgs[i].ep.(*udpEndpoint))
			})
		}
	}
	return got, eps, nmsgs
}

// testDatagrams are n datagrams of the given sizes (cycled), each filled
// with its index so that order and boundaries show.
func testDatagrams(n int, sizes ...int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i)}, sizes[i%len(sizes)])
	}
	return out
}

func TestBindRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addr  netip.Addr
		sizes []int
	}{
		{"v4 equal sizes", netip.MustParseAddr("127.0.0.1"), []int{1452}},
		{"v4 mixed sizes", netip.MustParseAddr("127.0.0.1"), []int{1000, 1000, 500, 1200, 1200, 1, 1200}},
		{"v6 equal sizes", netip.IPv6Loopback(), []int{1452}},
		{"v6 mixed sizes", netip.IPv6Loopback(), []int{700, 1400, 1400, 1400, 90}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, portA := openTestBind(t)
			b, rsB, portB := openTestBind(t)
			rb := readerFor(t, b, rsB, tc.addr)
			ep, err := a.ParseEndpoint(netip.AddrPortFrom(tc.addr, portB).String())
			if err != nil {
				t.Fatal(err)
			}
			// Sends that take a small scratch (up to smallSend), the
			// smallest that takes a full one, and more than a batch, so
			// that Send splits it too.
			for _, n := range []int{1, smallSend, smallSend + 1, 3 * maxBatch / 2} {
				roundTrip(t, a, rb, ep, testDatagrams(n, tc.sizes...), netip.AddrPortFrom(tc.addr, portA), tc.addr)
			}
		})
	}
}

// roundTrip sends want from a to ep and checks that r receives it, in
// order, from from with the local address src.
func roundTrip(t *testing.T, a *linuxBind, r udpReader, ep conn.Endpoint, want [][]byte, from netip.AddrPort, src netip.Addr) {
	t.Helper()
	if err := a.Send(want, ep); err != nil {
		t.Fatal(err)
	}
	got, eps, nmsgs := receiveDatagrams(t, r, len(want))
	t.Logf("%d datagrams in %d messages", len(got), nmsgs)
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d: %d bytes of %d, want %d of %d", i, len(got[i]), got[i][0], len(want[i]), want[i][0])
		}
		if eps[i].dst != from || eps[i].src != src {
			t.Fatalf("datagram %d: endpoint %v (source %v), want %v from %v", i, eps[i].dst, eps[i].src, from, src)
		}
		if eps[i] != eps[0] {
			t.Fatalf("datagram %d: a new endpoint for the same source", i)
		}
	}
}

// A reply goes out from the address the request came to.
func TestBindStickyReply(t *testing.T) {
	a, rsA, _ := openTestBind(t)
	b, rsB, portB := openTestBind(t)
	addr := netip.MustParseAddr("127.0.0.1")
	// 127.0.0.2 is local too (all of 127/8 is): A asks B there.
	other := netip.MustParseAddr("127.0.0.2")
	ep, _ := a.ParseEndpoint(netip.AddrPortFrom(other, portB).String())
	if err := a.Send([][]byte{[]byte("ping")}, ep); err != nil {
		t.Fatal(err)
	}
	_, eps, _ := receiveDatagrams(t, readerFor(t, b, rsB, addr), 1)
	if eps[0].src != other {
		t.Fatalf("sticky source %v, want %v", eps[0].src, other)
	}
	if err := b.Send([][]byte{[]byte("pong")}, eps[0]); err != nil {
		t.Fatal(err)
	}
	got, epsA, _ := receiveDatagrams(t, readerFor(t, a, rsA, addr), 1)
	if string(got[0]) != "pong" || epsA[0].dst != netip.AddrPortFrom(other, portB) {
		t.Fatalf("reply %q from %v, want pong from %v", got[0], epsA[0].dst, netip.AddrPortFrom(other, portB))
	}
}

func TestBindClose(t *testing.T) {
	b, rs, _ := openTestBind(t)
	done := make(chan error, 1)
	go func() {
		bufs, msgs := [][]byte{make([]byte, 2048)}, make([]udpMsg, 1)
		_, err := rs[0].read(bufs, msgs)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not return after Close")
	}
	if err := b.Send([][]byte{{1}}, &udpEndpoint{dst: netip.MustParseAddrPort("127.0.0.1:9")}); err == nil {
		t.Fatal("send after close succeeded")
	}
}

func TestSendScratchBuild(t *testing.T) {
	sc := newSendScratch(maxBatch)
	sc.setDst(netip.MustParseAddrPort("192.0.2.1:1"), netip.Addr{}, 0)
	sizesOf := func(bufs [][]byte, gso bool, maxPayload int) [][]int {
		nm := sc.build(bufs, gso, maxPayload)
		var out [][]int
		for m := range nm {
			h := &sc.msgs[m].hdr
			var sizes []int
			for k := range int(h.Iovlen) {
				sizes = append(sizes, int(sc.iovs[sc.firstOf(m)+k].Len))
			}
			segCtrl := h.Controllen > 0
			if segCtrl != (len(sizes) > 1) {
				t.Errorf("message %d of %v: segment size set %v", m, sizes, segCtrl)
			}
			out = append(out, sizes)
		}
		return out
	}
	mk := func(sizes ...int) [][]byte {
		out := make([][]byte, len(sizes))
		for i, s := range sizes {
			out[i] = make([]byte, s)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		bufs  [][]byte
		gso   bool
		max   int
		wantN []int // datagrams per message
	}{
		{"no gso", mk(100, 100, 100), false, maxUDP4Payload, []int{1, 1, 1}},
		{"equal", mk(100, 100, 100), true, maxUDP4Payload, []int{3}},
		{"short tail ends", mk(100, 100, 50, 100), true, maxUDP4Payload, []int{3, 1}},
		{"larger starts anew", mk(100, 200, 200), true, maxUDP4Payload, []int{1, 2}},
		{"payload cap", mk(1000, 1000, 1000, 1000, 1000), true, 2500, []int{2, 2, 1}},
		{"segment cap", mk(slices.Repeat([]int{10}, 100)...), true, maxUDP4Payload, []int{64, 36}},
		{"empty datagrams alone", mk(0, 0), true, maxUDP4Payload, []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			for _, m := range sizesOf(tc.bufs, tc.gso, tc.max) {
				got = append(got, len(m))
			}
			if !slices.Equal(got, tc.wantN) {
				t.Fatalf("datagrams per message %v, want %v", got, tc.wantN)
			}
		})
	}
}

// FuzzParseRecvCtrl: control data is the kernel's, but the parser must
// still never read past it or panic on anything.
func FuzzParseRecvCtrl(f *testing.F) {
	seg := make([]byte, 4)
	seg[0] = 0xac
	seed := putCmsg(nil, unix.SOL_UDP, unix.UDP_GRO, seg)
	info := make([]byte, unix.SizeofInet4Pktinfo)
	seed = putCmsg(seed, unix.IPPROTO_IP, unix.IP_PKTINFO, info)
	f.Add(seed)
	f.Add(putCmsg(nil, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, make([]byte, unix.SizeofInet6Pktinfo)))
	f.Add([]byte{})
	f.Add(make([]byte, unix.SizeofCmsghdr))
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, _, _ := parseRecvCtrl(b)
		_ = seg
	})
}

// FuzzDatagrams: the split of a received message covers it exactly, in
// pieces of at most the segment size, whatever n and seg say.
func FuzzDatagrams(f *testing.F) {
	f.Add(4000, 1400, 5000)
	f.Add(0, 0, 10)
	f.Add(100, -3, 50)
	f.Add(70000, 1, 65536)
	f.Fuzz(func(t *testing.T, n, seg, size int) {
		if size < 0 || size > 1<<17 {
			return
		}
		buf := make([]byte, size)
		m := udpMsg{n: n, seg: seg}
		total, pieces := 0, 0
		m.datagrams(buf, func(d []byte) {
			if len(d) == 0 {
				t.Fatal("empty datagram")
			}
			if seg > 0 && len(d) > seg {
				t.Fatalf("datagram of %d bytes, segment size %d", len(d), seg)
			}
			total += len(d)
			pieces++
		})
		if want := max(min(n, size), 0); total != want {
			t.Fatalf("split covers %d bytes, want %d", total, want)
		}
	})
}
