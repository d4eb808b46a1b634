package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Reading super-packets, split straight into the caller's buffers.
// wireguard/tun's Read splits a super-packet into buffers the caller must
// hold before the read, while it waits; a reader that must not sit on pool
// buffers while the link idles (the daemon's, see tunnel/readers.go) then
// copies every packet once more. ReadSegments reads first and asks for
// buffers once it knows how many segments there are.

// RawReadSize is the smallest raw buffer ReadSegments takes: a
// virtio-net header and the largest packet.
const RawReadSize = VirtioNetHdrLen + 1<<16 - 1

// ReadSegments reads one packet or super-packet into raw and splits it
// into buffers from get(n), n the number of segments, each packet starting
// offset bytes in and sizes[i] long; get may return fewer buffers (the
// segments without one are dropped; the error then wraps
// wgtun.ErrTooManySegments and is not fatal), each must hold offset plus
// one segment. It returns how many buffers it filled, always a prefix of
// what get returned. Errors otherwise are those of Read. It is not to be
// called concurrently with itself or Read.
func (d *Device) ReadSegments(raw []byte, get func(n int) [][]byte, sizes []int, offset int) (int, error) {
	return d.readSegments(raw, get, sizes, offset, true)
}

// ReadSegmentsNow is ReadSegments without the wait: when the device has
// nothing queued it returns ErrNothingWaiting at once. A reader that has
// just read uses it to take what queued meanwhile into the same batch, so
// that a busy link costs one hand-off per several super-packets instead
// of one each, and an idle one still costs a single extra read per batch.
// Without offloads it never reads (wireguard/tun's Read always waits) and
// always returns ErrNothingWaiting.
func (d *Device) ReadSegmentsNow(raw []byte, get func(n int) [][]byte, sizes []int, offset int) (int, error) {
	if d.kernel.rc == nil {
		return 0, ErrNothingWaiting
	}
	return d.readSegments(raw, get, sizes, offset, false)
}

func (d *Device) readSegments(raw []byte, get func(n int) [][]byte, sizes []int, offset int, wait bool) (int, error) {
	if len(raw) < RawReadSize || offset < 0 {
		return 0, fmt.Errorf("tun %s: read: raw buffer of %d bytes, offset %d", d.name, len(raw), offset)
	}
	if d.kernel.rc == nil {
		// Without offloads wireguard/tun reads plain packets.
		n, err := d.Read([][]byte{raw}, sizes[:1], 0)
		if n == 0 || err != nil {
			return 0, err
		}
		bufs := get(1)
		if len(bufs) == 0 {
			return 0, nil
		}
		sizes[0] = copy(bufs[0][offset:], raw[:sizes[0]])
		return 1, nil
	}
	n, err := d.readRaw(raw, wait)
	if err != nil {
		return 0, err
	}
	k, err := splitVirtio(raw[:n], get, sizes, offset)
	if err != nil && !errors.Is(err, wgtun.ErrTooManySegments) {
		err = fmt.Errorf("tun %s: read: %w", d.name, err)
	}
	return k, err
}

// readRaw reads what the device has next, virtio-net header first; with
// wait false, ErrNothingWaiting if there is nothing.
func (d *Device) readRaw(raw []byte, wait bool) (int, error) {
	var n int
	var errno syscall.Errno
	err := d.kernel.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := unix.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&raw[0])), uintptr(len(raw)))
			switch e {
			case 0:
				n = int(r)
				return true
			case unix.EINTR:
			case unix.EAGAIN:
				if !wait {
					errno = e
				}
				return !wait
			default:
				errno = e
				return true
			}
		}
	})
	if err == nil && errno == unix.EAGAIN {
		return 0, ErrNothingWaiting
	}
	if err == nil && errno != 0 {
		err = os.NewSyscallError("read", errno)
	}
	if err != nil && (d.closed.Load() || errors.Is(err, unix.EBADFD)) {
		return 0, fmt.Errorf("tun %s: %w", d.name, os.ErrClosed)
	}
	return n, err
}

// virtioHdr is struct virtio_net_hdr, in the host's byte order.
type virtioHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

func parseVirtioHdr(b []byte) virtioHdr {
	return virtioHdr{
		flags: b[0], gsoType: b[1],
		hdrLen:     binary.NativeEndian.Uint16(b[2:]),
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// splitVirtio splits in (virtio-net header, then the packet) into buffers
// from get.
func splitVirtio(in []byte, get func(n int) [][]byte, sizes []int, offset int) (int, error) {
	if len(in) < VirtioNetHdrLen {
		return 0, errors.New("short read")
	}
	h := parseVirtioHdr(in)
	pkt := in[VirtioNetHdrLen:]
	if h.gsoType == unix.VIRTIO_NET_HDR_GSO_NONE {
		if h.flags&unix.VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
			// CHECKSUM_PARTIAL: the field holds the pseudo-header sum,
			// the rest from csumStart on is ours to add.
			at := int(h.csumStart) + int(h.csumOffset)
			if at+2 > len(pkt) {
				return 0, fmt.Errorf("checksum at %d beyond a %d-byte packet", at, len(pkt))
			}
			init := uint64(binary.BigEndian.Uint16(pkt[at:]))
			pkt[at], pkt[at+1] = 0, 0
			binary.BigEndian.PutUint16(pkt[at:], ^foldChecksum(sumBytes(pkt[h.csumStart:], init)))
		}
		bufs := get(1)
		if len(bufs) == 0 {
			return 0, nil
		}
		if len(bufs[0]) < offset+len(pkt) {
			return 0, fmt.Errorf("a %d-byte packet overflows a %d-byte buffer", len(pkt), len(bufs[0])-offset)
		}
		sizes[0] = copy(bufs[0][offset:], pkt)
		return 1, nil
	}
	sp, err := parseSuper(h, pkt)
	if err != nil {
		return 0, err
	}
	n := (len(pkt) - sp.hdrLen + sp.gsoSize - 1) / sp.gsoSize
	bufs := get(min(n, len(sizes)))
	for i, buf := range bufs {
		if len(buf) < offset+sp.hdrLen+sp.gsoSize {
			return i, fmt.Errorf("a %d-byte segment overflows a %d-byte buffer", sp.hdrLen+sp.gsoSize, len(buf)-offset)
		}
		sizes[i] = sp.segment(pkt, i, buf[offset:])
	}
	if len(bufs) < n {
		return len(bufs), fmt.Errorf("%d of %d segments dropped: %w", n-len(bufs), n, wgtun.ErrTooManySegments)
	}
	return n, nil
}

// super is a GSO super-packet's shape.
type super struct {
	v6, tcp              bool
	iphLen, hdrLen       int // IP header; IP and transport headers
	gsoSize              int
	csumAt               int // the transport checksum
	firstSeq             uint32
	srcAt, addrLen, last int
}

// parseSuper checks what a segment copy relies on: the kernel's header
// lengths are not trusted beyond what the packet itself says.
func parseSuper(h virtioHdr, pkt []byte) (super, error) {
	var sp super
	if len(pkt) < 1 {
		return sp, errors.New("empty super-packet")
	}
	switch pkt[0] >> 4 {
	case 4:
		sp.srcAt, sp.addrLen = 12, 4
		if h.gsoType != unix.VIRTIO_NET_HDR_GSO_TCPV4 && h.gsoType != unix.VIRTIO_NET_HDR_GSO_UDP_L4 {
			return sp, fmt.Errorf("GSO type %d for IPv4", h.gsoType)
		}
	case 6:
		sp.v6, sp.srcAt, sp.addrLen = true, 8, 16
		if h.gsoType != unix.VIRTIO_NET_HDR_GSO_TCPV6 && h.gsoType != unix.VIRTIO_NET_HDR_GSO_UDP_L4 {
			return sp, fmt.Errorf("GSO type %d for IPv6", h.gsoType)
		}
	default:
		return sp, fmt.Errorf("IP version %d", pkt[0]>>4)
	}
	sp.tcp = h.gsoType != unix.VIRTIO_NET_HDR_GSO_UDP_L4
	sp.iphLen = int(h.csumStart)
	minIP := 20
	if sp.v6 {
		minIP = 40
	}
	if sp.iphLen < minIP || sp.iphLen+20 > len(pkt) {
		return sp, fmt.Errorf("transport header at %d in a %d-byte packet", sp.iphLen, len(pkt))
	}
	if sp.tcp {
		thl := int(pkt[sp.iphLen+12]>>4) * 4
		if thl < 20 {
			return sp, fmt.Errorf("TCP header of %d bytes", thl)
		}
		sp.hdrLen = sp.iphLen + thl
		sp.csumAt = sp.iphLen + 16
		sp.firstSeq = binary.BigEndian.Uint32(pkt[sp.iphLen+4:])
	} else {
		sp.hdrLen = sp.iphLen + 8
		sp.csumAt = sp.iphLen + 6
	}
	sp.gsoSize = int(h.gsoSize)
	if sp.hdrLen >= len(pkt) || sp.gsoSize == 0 {
		return sp, fmt.Errorf("headers of %d bytes, segments of %d, in a %d-byte packet", sp.hdrLen, sp.gsoSize, len(pkt))
	}
	sp.last = (len(pkt) - sp.hdrLen - 1) / sp.gsoSize
	return sp, nil
}

// segment writes segment i of pkt to out and returns its length.
func (sp *super) segment(pkt []byte, i int, out []byte) int {
	start := sp.hdrLen + i*sp.gsoSize
	end := min(start+sp.gsoSize, len(pkt))
	total := sp.hdrLen + end - start
	copy(out, pkt[:sp.hdrLen])
	copy(out[sp.hdrLen:], pkt[start:end])
	if sp.v6 {
		binary.BigEndian.PutUint16(out[4:], uint16(total-40))
	} else {
		binary.BigEndian.PutUint16(out[2:], uint16(total))
		binary.BigEndian.PutUint16(out[4:], binary.BigEndian.Uint16(pkt[4:])+uint16(i))
		out[10], out[11] = 0, 0
		binary.BigEndian.PutUint16(out[10:], ^foldChecksum(sumBytes(out[:sp.iphLen], 0)))
	}
	l4 := out[sp.iphLen:total]
	proto := uint64(unix.IPPROTO_UDP)
	if sp.tcp {
		proto = unix.IPPROTO_TCP
		binary.BigEndian.PutUint32(l4[4:], sp.firstSeq+uint32(i*sp.gsoSize))
		if i != sp.last {
			l4[13] &^= tcpFlagFIN | tcpFlagPSH
		}
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	out[sp.csumAt], out[sp.csumAt+1] = 0, 0
	src := pkt[sp.srcAt : sp.srcAt+sp.addrLen]
	dst := pkt[sp.srcAt+sp.addrLen : sp.srcAt+2*sp.addrLen]
	sum := ^foldChecksum(sumBytes(l4, pseudoSum(src, dst, proto, len(l4))))
	if !sp.tcp && sum == 0 {
		sum = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(out[sp.csumAt:], sum)
	return total
}
