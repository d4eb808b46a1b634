package tun_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/current-vpn/current/routing"
	"github.com/current-vpn/current/routing/nstest"
	"github.com/current-vpn/current/tun"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The offset the tests read and write at: more than the virtio header, as
// the daemon's own header will be.
const offset = tun.VirtioNetHdrLen + 6

// fixture is a TUN device in a namespace of its own, with 192.0.2.1/24 and
// 2001:db8::1/64 on it, up. Addresses .2 and ::2 are "across the tunnel":
// the kernel routes them into the device.
type fixture struct {
	// segments: the reader uses ReadSegments rather than Read.
	segments bool
	t        *testing.T
	ns       netns.NsHandle
	dev      *tun.Device
	link     *routing.Link
	pkts     chan batch
}

type batch struct {
	pkts [][]byte
	err  error
}

// families are the address pairs the tests run over.
var families = []struct {
	name          string
	local, remote netip.Addr
}{{"v4", local4, remote4}, {"v6", local6, remote6}}

var (
	local4  = netip.MustParseAddr("192.0.2.1")
	remote4 = netip.MustParseAddr("192.0.2.2")
	local6  = netip.MustParseAddr("2001:db8::1")
	remote6 = netip.MustParseAddr("2001:db8::2")
)

func newFixture(t *testing.T) *fixture { return newFixtureReading(t, false) }

// newFixtureReading is newFixture with a reader that uses ReadSegments if
// segments is set.
func newFixtureReading(t *testing.T, segments bool) *fixture {
	t.Helper()
	f := newDeviceFixture(t, segments)
	go f.reader()
	return f
}

// newDeviceFixture is the fixture without its reader goroutine.
func newDeviceFixture(t *testing.T, segments bool) *fixture {
	t.Helper()
	ns := nstest.New(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun: %v", err)
	}
	dev, err := tun.CreateAt(ns, "ctun%d", 1420)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ns: ns, dev: dev, pkts: make(chan batch, 64), segments: segments}
	t.Cleanup(func() {
		if err := dev.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	f.link, err = routing.OpenAt(ns, dev.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.link.Close() })
	for _, p := range []string{"192.0.2.1/24", "2001:db8::1/64"} {
		if err := f.link.AddAddress(netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.link.Up(); err != nil {
		t.Fatal(err)
	}
	// The kernel installs an IPv6 address's local route from a work queue
	// after the interface comes up; until then packets to the address are
	// dropped (Ip6InAddrErrors) even though binding to it works.
	h := nstest.Handle(t, ns)
	for _, a := range []netip.Addr{local4, local6} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			rs, err := h.RouteGet(a.AsSlice())
			if err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v never became a local address: %v %v", a, rs, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return f
}

// reader reads batches until the device is closed, the way the daemon will.
func (f *fixture) reader() {
	n := f.dev.BatchSize()
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, offset+65535)
	}
	sizes := make([]int, n)
	raw := make([]byte, tun.RawReadSize)
	get := func(k int) [][]byte { return bufs[:min(k, n)] }
	for {
		var k int
		var err error
		var b batch
		if f.segments {
			// As the daemon reads: then what queued meanwhile, without
			// waiting, into the same batch.
			k, err = f.dev.ReadSegments(raw, get, sizes, offset)
			for err == nil {
				b.pkts = appendClones(b.pkts, bufs[:k], sizes, offset)
				k, err = f.dev.ReadSegmentsNow(raw, get, sizes, offset)
			}
			if errors.Is(err, tun.ErrNothingWaiting) {
				k, err = 0, nil
			}
		} else {
			k, err = f.dev.Read(bufs, sizes, offset)
		}
		b.pkts = appendClones(b.pkts, bufs[:k], sizes, offset)
		b.err = err
		f.pkts <- b
		if errors.Is(err, os.ErrClosed) {
			close(f.pkts)
			return
		}
	}
}

// appendClones appends copies of the packets read into bufs.
func appendClones(pkts [][]byte, bufs [][]byte, sizes []int, offset int) [][]byte {
	for i, b := range bufs {
		pkts = append(pkts, bytes.Clone(b[offset:offset+sizes[i]]))
	}
	return pkts
}

// next returns the next batch containing a packet that match accepts,
// passing over the kernel's own chatter (IPv6 router solicitations, MLD).
func (f *fixture) next(match func([]byte) bool) [][]byte {
	f.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case b := <-f.pkts:
			if b.err != nil {
				f.t.Fatalf("Read: %v", b.err)
			}
			for _, p := range b.pkts {
				if match(p) {
					return b.pkts
				}
			}
		case <-timeout:
			f.t.Fatal("no matching packet read from the device")
		}
	}
}

// udpSocket opens a UDP socket inside the fixture's namespace.
func (f *fixture) udpSocket(a netip.Addr) *net.UDPConn {
	f.t.Helper()
	var c *net.UDPConn
	err := routing.InNamespace(f.ns, func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

// packet builds an IP/UDP packet with valid checksums.
func packet(src, dst netip.AddrPort, payload []byte) []byte {
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	ip := tun.IPHeader(src.Addr(), dst.Addr(), unix.IPPROTO_UDP, len(udp))
	sum := ^checksum(pseudo(src.Addr(), dst.Addr(), len(udp)), udp)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return append(ip, udp...)
}

func checksum(sum uint32, b []byte) uint16 { return tun.RefChecksum(b, sum) }

func pseudo(src, dst netip.Addr, n int) uint32 {
	var b []byte
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, 0, 0, 0, unix.IPPROTO_UDP)
	return uint32(checksum(0, b))
}

// parsed is what the tests check of a packet read from the device.
type parsed struct {
	src, dst netip.AddrPort
	payload  []byte
}

// parseUDP checks headers, lengths and checksums of an IP/UDP packet.
func parseUDP(p []byte) (parsed, error) {
	var src, dst netip.Addr
	var udp []byte
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		ihl := int(p[0]&0xf) * 4
		if p[9] != unix.IPPROTO_UDP || int(binary.BigEndian.Uint16(p[2:])) != len(p) || ihl < 20 {
			return parsed{}, fmt.Errorf("not a well-formed IPv4 UDP packet: % x", p[:20])
		}
		if checksum(0, p[:ihl]) != 0xffff {
			return parsed{}, errors.New("bad IPv4 header checksum")
		}
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		udp = p[ihl:]
	case len(p) >= 40 && p[0]>>4 == 6:
		if p[6] != unix.IPPROTO_UDP || int(binary.BigEndian.Uint16(p[4:]))+40 != len(p) {
			return parsed{}, fmt.Errorf("not a well-formed IPv6 UDP packet: % x", p[:40])
		}
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		udp = p[40:]
	default:
		return parsed{}, errors.New("not IP")
	}
	if len(udp) < 8 || int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
		return parsed{}, errors.New("bad UDP length")
	}
	if checksum(pseudo(src, dst, len(udp)), udp) != 0xffff {
		return parsed{}, errors.New("bad UDP checksum")
	}
	return parsed{
		src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:])),
		dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(udp[2:])),
		payload: udp[8:],
	}, nil
}

func toPort(dst netip.AddrPort) func([]byte) bool {
	return func(p []byte) bool {
		q, err := parseUDP(p)
		return err == nil && q.dst == dst
	}
}

func TestDevice(t *testing.T) {
	f := newFixture(t)
	off := f.dev.Offloads()
	t.Logf("device %s: offloads %+v, batch size %d, headroom %d", f.dev.Name(), off, f.dev.BatchSize(), f.dev.Headroom())
	if off.UDP && !off.TCP {
		t.Error("UDP offload without TCP offload")
	}
	if off.TCP != (f.dev.BatchSize() > 1) || off.TCP != (f.dev.Headroom() == tun.VirtioNetHdrLen) {
		t.Errorf("offloads %+v disagree with batch size %d / headroom %d", off, f.dev.BatchSize(), f.dev.Headroom())
	}
	if mtu, err := f.dev.MTU(); err != nil || mtu != 1420 {
		t.Errorf("MTU() = %d, %v; want 1420", mtu, err)
	}
	if f.dev.Index() != f.link.Index() {
		t.Errorf("Index() = %d, routing says %d", f.dev.Index(), f.link.Index())
	}
	if l, err := nstest.Handle(t, f.ns).LinkByIndex(f.dev.Index()); err != nil {
		t.Error(err)
	} else if q := l.Attrs().TxQLen; q != tun.TxQueueLen {
		t.Errorf("transmit queue length %d, want %d", q, tun.TxQueueLen)
	}

	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			f.t = t
			c := f.udpSocket(fam.local)
			me := c.LocalAddr().(*net.UDPAddr).AddrPort()
			me = netip.AddrPortFrom(me.Addr().Unmap(), me.Port())
			peer := netip.AddrPortFrom(fam.remote, 9999)

			// Out: kernel to device.
			payload := []byte("out through the tunnel " + fam.name)
			if _, err := c.WriteToUDPAddrPort(payload, peer); err != nil {
				t.Fatal(err)
			}
			for _, p := range f.next(toPort(peer)) {
				q, err := parseUDP(p)
				if err != nil || q.dst != peer {
					continue
				}
				if q.src != me || !bytes.Equal(q.payload, payload) {
					t.Errorf("read %v -> %v %q; want %v -> %v %q", q.src, q.dst, q.payload, me, peer, payload)
				}
			}

			// In: device to kernel, a batch of three in one Write.
			var bufs [][]byte
			var want [][]byte
			for i := range 3 {
				pl := []byte(fmt.Sprintf("in from the tunnel %s #%d", fam.name, i))
				pkt := packet(peer, me, pl)
				buf := make([]byte, offset+len(pkt), offset+4096) // spare capacity lets Write coalesce
				copy(buf[offset:], pkt)
				bufs = append(bufs, buf)
				want = append(want, pl)
			}
			if n, err := f.dev.Write(bufs, offset); err != nil || n != 3 {
				t.Fatalf("Write = %d, %v", n, err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for i := range want {
				buf := make([]byte, 2048)
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				if from.Addr().Unmap() != peer.Addr() || from.Port() != peer.Port() || !bytes.Equal(buf[:n], want[i]) {
					t.Errorf("datagram %d from %v: %q; want from %v: %q", i, from, buf[:n], peer, want[i])
				}
			}
		})
	}
	f.t = t

	// Headroom is checked, not left to corrupt memory or fail obscurely.
	if f.dev.Headroom() > 0 {
		pkt := packet(netip.AddrPortFrom(remote4, 1), netip.AddrPortFrom(local4, 1), []byte("x"))
		if _, err := f.dev.Write([][]byte{pkt}, 0); err == nil {
			t.Error("Write with no headroom succeeded")
		}
	}
}

// TestDeviceSegmentation sends one UDP GSO super-packet (five segments in
// one send). With UDP offload the device receives it whole and Read must
// split it into five packets in one batch; without, the kernel splits it.
// Either way the five arrive intact and in order.
func TestDeviceSegmentation(t *testing.T) {
	for _, segments := range []bool{false, true} {
		t.Run(fmt.Sprintf("ReadSegments=%v", segments), func(t *testing.T) { testSegmentation(t, segments) })
	}
}

func testSegmentation(t *testing.T, segments bool) {
	f := newFixtureReading(t, segments)
	c := f.udpSocket(local4)
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	const seg = 1000
	var serr error
	raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, seg) })
	if serr != nil {
		t.Skipf("kernel lacks UDP GSO: %v", serr)
	}
	data := make([]byte, 5*seg)
	for i := range data {
		data[i] = byte(i / seg)
	}
	peer := netip.AddrPortFrom(remote4, 9998)
	if _, err := c.WriteToUDPAddrPort(data, peer); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	biggest := 0
	for len(got) < 5 {
		b := f.next(toPort(peer))
		n := 0
		for _, p := range b {
			if q, err := parseUDP(p); err == nil && q.dst == peer {
				got = append(got, q.payload)
				n++
			}
		}
		biggest = max(biggest, n)
	}
	for i, p := range got {
		if !bytes.Equal(p, data[i*seg:(i+1)*seg]) {
			t.Errorf("segment %d: wrong bytes", i)
		}
	}
	t.Logf("offloads %+v: largest batch %d packets", f.dev.Offloads(), biggest)
	if f.dev.Offloads().UDP && biggest < 5 {
		t.Errorf("with UDP offload the super-packet came in batches of at most %d", biggest)
	}
}

func TestDeviceChangesAndClose(t *testing.T) {
	f := newFixture(t)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for !cond() {
			select {
			case <-f.dev.Changes():
			case <-time.After(50 * time.Millisecond):
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("up", func() bool { up, err := f.dev.IsUp(); return err == nil && up })
	if err := f.link.SetMTU(1380); err != nil {
		t.Fatal(err)
	}
	waitFor("MTU 1380", func() bool { mtu, _ := f.dev.MTU(); return mtu == 1380 })
	if err := f.link.Down(); err != nil {
		t.Fatal(err)
	}
	waitFor("down", func() bool { up, err := f.dev.IsUp(); return err == nil && !up })

	// Close unblocks the reader and destroys the interface.
	name := f.dev.Name()
	if err := f.dev.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case b, ok := <-f.pkts:
			if !ok {
				done = true
			} else if b.err != nil && !errors.Is(b.err, os.ErrClosed) {
				t.Fatalf("Read after Close: %v", b.err)
			}
		case <-deadline:
			t.Fatal("Read still blocked after Close")
		}
	}
	if _, err := routing.OpenAt(f.ns, name); err == nil {
		t.Errorf("interface %s still exists after Close", name)
	}
	if err := f.dev.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	ns := nstest.New(t)
	if _, err := tun.CreateAt(ns, "ctun0", 0); err == nil {
		t.Error("CreateAt with MTU 0 succeeded")
	}
	if _, err := tun.CreateAt(ns, "a-name-longer-than-ifnamsiz", 1420); err == nil {
		t.Error("CreateAt with an over-long name succeeded")
	}
}

// TestReadSegmentsNow: without waiting, the reader gets what the kernel
// queued, one packet or super-packet a call, and ErrNothingWaiting at
// once when the queue is empty.
func TestReadSegmentsNow(t *testing.T) {
	f := newDeviceFixture(t, true)
	raw := make([]byte, tun.RawReadSize)
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, offset+65535)
	}
	sizes := make([]int, len(bufs))
	get := func(k int) [][]byte { return bufs[:min(k, len(bufs))] }
	drain := func() [][]byte {
		var pkts [][]byte
		for range 1000 { // the kernel's chatter is a few packets, not a flood
			k, err := f.dev.ReadSegmentsNow(raw, get, sizes, offset)
			if errors.Is(err, tun.ErrNothingWaiting) {
				return pkts
			}
			if err != nil {
				t.Fatalf("ReadSegmentsNow: %v", err)
			}
			pkts = appendClones(pkts, bufs[:k], sizes, offset)
		}
		t.Fatal("ReadSegmentsNow never found the queue empty")
		return nil
	}
	drain() // whatever the kernel sent when the link came up
	start := time.Now()
	if pkts := drain(); len(pkts) > 2 {
		t.Fatalf("an idle device gave %d packets", len(pkts))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("ReadSegmentsNow on an empty device took %v", d)
	}
	c := f.udpSocket(local4)
	dst := netip.AddrPortFrom(remote4, 4000)
	const n = 5
	for i := range n {
		// A send to an address across the device has the packet queued
		// on the device before it returns.
		if _, err := c.WriteToUDPAddrPort([]byte{byte(i)}, dst); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for _, p := range drain() {
		if q, err := parseUDP(p); err == nil && q.dst == dst {
			got = append(got, q.payload...)
		}
	}
	if !bytes.Equal(got, []byte{0, 1, 2, 3, 4}) {
		t.Fatalf("read without waiting: payloads % x, want 00 01 02 03 04", got)
	}
}
