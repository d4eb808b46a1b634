package tun

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

const testOffset = VirtioNetHdrLen + 6

// refChecksum is the one's-complement sum of RFC 1071, 16 bits at a time.
func refChecksum(b []byte, s uint32) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// tcpSeg builds a TCP segment with valid checksums, in a buffer with
// testOffset bytes of headroom and room behind it.
func tcpSeg(src, dst netip.AddrPort, seq, ack uint32, flags byte, payload []byte) []byte {
	tcp := make([]byte, 20+len(payload))
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = 5 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], payload)
	ip := ipHeader(src.Addr(), dst.Addr(), unix.IPPROTO_TCP, len(tcp))
	ps := uint32(refChecksum(append(src.Addr().AsSlice(), dst.Addr().AsSlice()...), 0)) + unix.IPPROTO_TCP + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], ^refChecksum(tcp, ps))
	buf := make([]byte, testOffset, testOffset+1<<16)
	return append(append(buf, ip...), tcp...)
}

// ipHeader is an IPv4 (DF set, valid header checksum) or IPv6 header in
// front of n bytes of proto.
func ipHeader(src, dst netip.Addr, proto byte, n int) []byte {
	if src.Is4() {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+n))
		ip[6] = 0x40
		ip[8] = 64
		ip[9] = proto
		s, d := src.As4(), dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^refChecksum(ip, 0))
		return ip
	}
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(n))
	ip[6] = proto
	ip[7] = 64
	s, d := src.As16(), dst.As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	return ip
}

// gathered is what writev would hand the kernel.
func gathered(iov []unix.Iovec) []byte {
	var out []byte
	for _, v := range iov {
		out = append(out, unsafe.Slice(v.Base, v.Len)...)
	}
	return out
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 2100 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if n%7 == 0 {
			for i := range b {
				b[i] = 0xff // the carries' worst case
			}
		}
		init := r.Uint32N(1 << 16)
		if n%5 == 0 {
			init = 0xffff
		}
		if got, want := foldChecksum(sumBytes(b, uint64(init))), refChecksum(b, init); got != want {
			t.Fatalf("%d bytes from %#04x: %#04x, want %#04x", n, init, got, want)
		}
	}
	// The largest packet, all ones: the accumulators' heaviest load.
	b := bytes.Repeat([]byte{0xff}, 1<<16-1)
	if got, want := foldChecksum(sumBytes(b, 0xffff)), refChecksum(b, 0xffff); got != want {
		t.Fatalf("64 KiB of ones: %#04x, want %#04x", got, want)
	}
}

func TestGROPlan(t *testing.T) {
	for _, fam := range []struct {
		name     string
		src, dst netip.AddrPort
	}{
		{"v4", netip.MustParseAddrPort("192.0.2.2:4000"), netip.MustParseAddrPort("192.0.2.1:5001")},
		{"v6", netip.MustParseAddrPort("[2001:db8::2]:4000"), netip.MustParseAddrPort("[2001:db8::1]:5001")},
	} {
		t.Run(fam.name, func(t *testing.T) {
			other := netip.AddrPortFrom(fam.src.Addr(), 4001)
			pay := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
			var pkts [][]byte
			seq := uint32(1000)
			add := func(n int, flags byte, c byte) {
				pkts = append(pkts, tcpSeg(fam.src, fam.dst, seq, 77, flags, pay(n, c)))
				seq += uint32(n)
			}
			add(1000, tcpFlagACK, 'a')                                                    // 0: first of flow 0
			add(1000, tcpFlagACK, 'b')                                                    // 1: merged
			pkts = append(pkts, tcpSeg(other, fam.dst, 1, 77, tcpFlagACK, pay(500, 'x'))) // 2: flow 1
			add(1000, tcpFlagACK|tcpFlagPSH, 'c')                                         // 3: merged, PSH ends it
			add(1000, tcpFlagACK, 'd')                                                    // 4: a new flow 2
			add(400, tcpFlagACK, 'e')                                                     // 5: merged, short ends it
			add(400, tcpFlagACK, 'f')                                                     // 6: a new flow 3
			bad := tcpSeg(fam.src, fam.dst, seq, 77, tcpFlagACK, pay(400, 'g'))           // 7: bad checksum
			bad[len(bad)-1] ^= 1
			pkts = append(pkts, bad)
			pkts = append(pkts, tcpSeg(fam.src, fam.dst, seq, 77, tcpFlagACK|tcpFlagFIN, nil)) // 8: not a candidate
			w := newGROWriter()
			w.plan(pkts, testOffset)
			want := []int{0, roleMerged, 1, roleMerged, 2, roleMerged, 3, 4, roleAlone}
			for i := range want {
				if w.role[i] != want[i] {
					t.Fatalf("roles %v, want %v", w.role, want)
				}
			}
			// Flow 0: a, b, c (PSH) as one super-packet.
			f := &w.flows[0]
			super := gathered(f.finish(pkts[0], testOffset))
			vh, pkt := super[:VirtioNetHdrLen], super[VirtioNetHdrLen:]
			iphLen := 20
			gsoType := byte(unix.VIRTIO_NET_HDR_GSO_TCPV4)
			if fam.src.Addr().Is6() {
				iphLen, gsoType = 40, unix.VIRTIO_NET_HDR_GSO_TCPV6
			}
			if vh[0] != unix.VIRTIO_NET_HDR_F_NEEDS_CSUM || vh[1] != gsoType ||
				binary.NativeEndian.Uint16(vh[2:]) != uint16(iphLen+20) || binary.NativeEndian.Uint16(vh[4:]) != 1000 ||
				binary.NativeEndian.Uint16(vh[6:]) != uint16(iphLen) || binary.NativeEndian.Uint16(vh[8:]) != 16 {
				t.Fatalf("virtio header % x", vh)
			}
			if len(pkt) != iphLen+20+3000 {
				t.Fatalf("super-packet of %d bytes", len(pkt))
			}
			if fam.src.Addr().Is4() {
				if binary.BigEndian.Uint16(pkt[2:]) != uint16(len(pkt)) || refChecksum(pkt[:20], 0) != 0xffff {
					t.Fatal("IPv4 total length or header checksum wrong")
				}
			} else if binary.BigEndian.Uint16(pkt[4:]) != uint16(len(pkt)-40) {
				t.Fatal("IPv6 payload length wrong")
			}
			tcp := pkt[iphLen:]
			if tcp[13] != tcpFlagACK|tcpFlagPSH {
				t.Fatalf("flags %#x, want ACK|PSH", tcp[13])
			}
			// With CHECKSUM_PARTIAL the field holds the folded pseudo
			// header sum, which the kernel completes.
			ps := uint32(refChecksum(append(fam.src.Addr().AsSlice(), fam.dst.Addr().AsSlice()...), 0)) + unix.IPPROTO_TCP + uint32(len(tcp))
			if got, want := binary.BigEndian.Uint16(tcp[16:]), refChecksum(nil, ps); got != want {
				t.Fatalf("TCP checksum field %#04x, want the pseudo-header sum %#04x", got, want)
			}
			if !bytes.Equal(tcp[20:], append(append(pay(1000, 'a'), pay(1000, 'b')...), pay(1000, 'c')...)) {
				t.Fatal("payload is not a, b, c in order")
			}
			// A flow of one packet goes as it is, with an empty header.
			alone := gathered(w.flows[1].finish(pkts[2], testOffset))
			if !bytes.Equal(alone[:VirtioNetHdrLen], make([]byte, VirtioNetHdrLen)) || !bytes.Equal(alone[VirtioNetHdrLen:], pkts[2][testOffset:]) {
				t.Fatal("a single packet was changed")
			}
		})
	}
}

// FuzzGROPlan: whatever the batch, every packet gets one role, the flows
// stay within a packet's limits and carry exactly the payloads merged.
func FuzzGROPlan(f *testing.F) {
	src, dst := netip.MustParseAddrPort("192.0.2.2:4000"), netip.MustParseAddrPort("192.0.2.1:5001")
	seed := func(pkts ...[]byte) []byte {
		var b []byte
		for _, p := range pkts {
			p = p[testOffset:]
			b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
			b = append(b, p...)
		}
		return b
	}
	f.Add(seed(tcpSeg(src, dst, 1, 2, tcpFlagACK, make([]byte, 100)), tcpSeg(src, dst, 101, 2, tcpFlagACK, make([]byte, 100))))
	f.Add(seed(tcpSeg(netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::2]:2"), 1, 2, tcpFlagACK|tcpFlagPSH, make([]byte, 3))))
	f.Add([]byte{0, 1, 0x45})
	f.Fuzz(func(t *testing.T, data []byte) {
		var pkts [][]byte
		for len(data) >= 2 && len(pkts) < 128 {
			n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
			buf := make([]byte, testOffset, testOffset+n)
			pkts = append(pkts, append(buf, data[2:2+n]...))
			data = data[2+n:]
		}
		w := newGROWriter()
		w.plan(pkts, testOffset)
		if len(w.role) != len(pkts) {
			t.Fatalf("%d roles for %d packets", len(w.role), len(pkts))
		}
		firsts := 0
		for _, r := range w.role {
			if r >= 0 {
				firsts++
			}
		}
		if firsts != len(w.flows) {
			t.Fatalf("%d first packets for %d flows", firsts, len(w.flows))
		}
		for k := range w.flows {
			fl := &w.flows[k]
			iov := fl.finish(pkts[fl.first], testOffset)
			if got := len(gathered(iov)) - VirtioNetHdrLen; got != fl.length || got > 1<<16-1 {
				t.Fatalf("flow %d: %d bytes, length %d", k, got, fl.length)
			}
		}
	})
}

// TCPSegment builds a TCP segment for the device tests, with the tests'
// headroom in front of it.
var TCPSegment = tcpSeg

// IPHeader is ipHeader for the device tests.
var IPHeader = ipHeader

// RefChecksum is refChecksum for the device tests.
var RefChecksum = refChecksum

// TCPHeadroom is the headroom TCPSegment leaves.
const TCPHeadroom = testOffset
