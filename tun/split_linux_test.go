package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// superTCP is what the kernel hands a device with TSO: a virtio-net header
// and one TCP packet of n payload bytes, to be cut into segments of seg.
func superTCP(src, dst netip.AddrPort, n, seg int, flags byte) []byte {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i / seg)
	}
	pkt := tcpSeg(src, dst, 5000, 9, flags, payload)[testOffset:]
	iphLen, gsoType := 20, byte(unix.VIRTIO_NET_HDR_GSO_TCPV4)
	if src.Addr().Is6() {
		iphLen, gsoType = 40, unix.VIRTIO_NET_HDR_GSO_TCPV6
	}
	vh := make([]byte, VirtioNetHdrLen)
	vh[0], vh[1] = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType
	binary.NativeEndian.PutUint16(vh[2:], uint16(iphLen+20))
	binary.NativeEndian.PutUint16(vh[4:], uint16(seg))
	binary.NativeEndian.PutUint16(vh[6:], uint16(iphLen))
	binary.NativeEndian.PutUint16(vh[8:], 16)
	return append(vh, pkt...)
}

func testBufs(n int) func(int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, testOffset+1<<16)
	}
	return func(k int) [][]byte { return bufs[:min(k, n)] }
}

func TestSplitTCP(t *testing.T) {
	for _, fam := range []struct {
		name     string
		src, dst netip.AddrPort
	}{
		{"v4", netip.MustParseAddrPort("192.0.2.1:5001"), netip.MustParseAddrPort("192.0.2.2:4000")},
		{"v6", netip.MustParseAddrPort("[2001:db8::1]:5001"), netip.MustParseAddrPort("[2001:db8::2]:4000")},
	} {
		t.Run(fam.name, func(t *testing.T) {
			const n, seg = 4500, 1000
			in := superTCP(fam.src, fam.dst, n, seg, tcpFlagACK|tcpFlagPSH|tcpFlagFIN)
			get := testBufs(8)
			sizes := make([]int, 8)
			k, err := splitVirtio(in, get, sizes, testOffset)
			if err != nil || k != 5 {
				t.Fatalf("split = %d, %v; want 5 segments", k, err)
			}
			iphLen := 20
			if fam.src.Addr().Is6() {
				iphLen = 40
			}
			for i, buf := range get(k) {
				pkt := buf[testOffset : testOffset+sizes[i]]
				want := min(seg, n-i*seg)
				if len(pkt) != iphLen+20+want {
					t.Fatalf("segment %d: %d bytes", i, len(pkt))
				}
				if iphLen == 20 && (refChecksum(pkt[:20], 0) != 0xffff || binary.BigEndian.Uint16(pkt[2:]) != uint16(len(pkt))) {
					t.Fatalf("segment %d: IPv4 header checksum or length wrong", i)
				}
				if iphLen == 40 && binary.BigEndian.Uint16(pkt[4:]) != uint16(len(pkt)-40) {
					t.Fatalf("segment %d: IPv6 payload length wrong", i)
				}
				if !tcpChecksumValid(pkt, iphLen, iphLen == 40) {
					t.Fatalf("segment %d: bad TCP checksum", i)
				}
				tcp := pkt[iphLen:]
				if seq := binary.BigEndian.Uint32(tcp[4:]); seq != 5000+uint32(i*seg) {
					t.Fatalf("segment %d: seq %d", i, seq)
				}
				last := i == k-1
				if fin := tcp[13]&(tcpFlagFIN|tcpFlagPSH) != 0; fin != last {
					t.Fatalf("segment %d: flags %#x", i, tcp[13])
				}
				if !bytes.Equal(tcp[20:], bytes.Repeat([]byte{byte(i)}, want)) {
					t.Fatalf("segment %d: wrong payload", i)
				}
			}
			// Fewer buffers than segments: a prefix, and the error says so.
			k, err = splitVirtio(superTCP(fam.src, fam.dst, n, seg, tcpFlagACK), testBufs(2), sizes, testOffset)
			if k != 2 || !errors.Is(err, wgtun.ErrTooManySegments) {
				t.Fatalf("split into 2 buffers = %d, %v", k, err)
			}
		})
	}
}

func TestSplitNoneCompletesChecksum(t *testing.T) {
	src, dst := netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.2:2")
	pkt := tcpSeg(src, dst, 1, 2, tcpFlagACK, []byte("partial"))[testOffset:]
	// What the kernel leaves for CHECKSUM_PARTIAL: the pseudo-header sum.
	binary.BigEndian.PutUint16(pkt[36:], foldChecksum(pseudoSum(pkt[12:16], pkt[16:20], unix.IPPROTO_TCP, len(pkt)-20)))
	vh := make([]byte, VirtioNetHdrLen)
	vh[0] = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
	binary.NativeEndian.PutUint16(vh[6:], 20)
	binary.NativeEndian.PutUint16(vh[8:], 16)
	get := testBufs(1)
	sizes := make([]int, 1)
	k, err := splitVirtio(append(vh, pkt...), get, sizes, testOffset)
	if err != nil || k != 1 {
		t.Fatalf("split = %d, %v", k, err)
	}
	if out := get(1)[0][testOffset : testOffset+sizes[0]]; !tcpChecksumValid(out, 20, false) {
		t.Fatal("checksum not completed")
	}
}

// FuzzSplitVirtio: whatever the device hands over, the split fails cleanly
// or fills buffers with packets no longer than a segment plus headers.
func FuzzSplitVirtio(f *testing.F) {
	f.Add(superTCP(netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.2:2"), 3000, 1400, tcpFlagACK))
	f.Add(superTCP(netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::2]:2"), 100, 7, tcpFlagACK))
	f.Add(make([]byte, VirtioNetHdrLen+20))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > RawReadSize {
			return
		}
		get := testBufs(16)
		sizes := make([]int, 16)
		k, err := splitVirtio(bytes.Clone(in), get, sizes, testOffset)
		if k < 0 || k > 16 || (err != nil && k > 0 && !errors.Is(err, wgtun.ErrTooManySegments)) {
			t.Fatalf("split = %d, %v", k, err)
		}
		for i := range k {
			if sizes[i] < 0 || sizes[i] > len(in) {
				t.Fatalf("segment %d of %d bytes from %d", i, sizes[i], len(in))
			}
		}
	})
}
