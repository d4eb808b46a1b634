package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TCP coalescing on write (GRO), of our own. wireguard/tun coalesces the
// segments of a flow by copying each one's payload behind the first (after
// zeroing the room for it), and keys its flows by a map; on the receiving
// side of a TCP stream that was a fifth of the daemon's CPU. Here a
// coalesced super-packet is handed to the kernel as an iovec per segment
// (writev), so its payload is never copied by us, and the few flows of a
// batch are found by a linear search.
//
// What may be coalesced follows the kernel's own GRO rules, as
// wireguard/tun does: consecutive sequence numbers, one ACK number, equal
// TCP options and IP header fields that must not change within a flow (TOS
// or traffic class, TTL or hop limit, DF), flags ACK (and PSH on the last
// segment only), equal segment sizes with a shorter last one. Every
// segment's checksum is verified before it is merged, since the merged
// packet goes to the kernel with only a pseudo-header checksum
// (CHECKSUM_PARTIAL) and the kernel would no longer see a bad one.
// Everything else (UDP, whose coalescing stays with wireguard/tun, TCP
// that does not qualify) is written as it comes.

const (
	// maxGROFlows is how many flows one Write coalesces at once; packets
	// of further flows are written one by one.
	maxGROFlows = 8
	// maxGROSegments bounds the iovecs of one super-packet.
	maxGROSegments = 64
	tcpFlagFIN     = 0x01
	tcpFlagPSH     = 0x08
	tcpFlagACK     = 0x10
)

// groFlow is a super-packet being built: the first packet (headers and
// payload) and the payloads merged behind it.
type groFlow struct {
	first   int // index of the first packet in the batch
	iphLen  int
	tcphLen int
	v6      bool
	gsoSize int    // payload size of the first segment
	length  int    // total length of the super-packet
	nextSeq uint32 // sequence number the next segment must have
	segs    int
	psh     bool // the last merged segment had PSH: nothing may follow
	short   bool // the last merged segment was shorter: nothing may follow
	iov     []unix.Iovec
}

// groWriter coalesces and writes batches; one Write at a time uses it.
type groWriter struct {
	flows []groFlow
	// role of each packet of the batch: the index of the flow it is the
	// first packet of, or roleMerged, or roleAlone.
	role   []int
	run    [][]byte // consecutive packets written as they are
	iovBuf []unix.Iovec
}

const (
	roleMerged = -1 // behind the first packet of its flow
	roleAlone  = -2 // not coalesced here
)

func newGROWriter() *groWriter {
	return &groWriter{
		flows:  make([]groFlow, 0, maxGROFlows),
		iovBuf: make([]unix.Iovec, maxGROFlows*(maxGROSegments+1)),
	}
}

// write writes the packets pkts[i][offset:] (offset >= VirtioNetHdrLen):
// coalesced TCP super-packets with writev to rc, the other packets through
// alone (wireguard/tun's Write, which coalesces UDP), in the order of
// each super-packet's first packet. It tries every packet; the error is
// that of every write that failed.
func (w *groWriter) write(rc syscall.RawConn, pkts [][]byte, offset int, alone func([][]byte) error) error {
	if offset < VirtioNetHdrLen {
		return errGROOffset
	}
	w.plan(pkts, offset)
	var errs error
	flush := func() {
		if len(w.run) > 0 {
			errs = errors.Join(errs, alone(w.run))
			clear(w.run)
			w.run = w.run[:0]
		}
	}
	for i, r := range w.role {
		switch {
		case r == roleAlone:
			w.run = append(w.run, pkts[i])
		case r >= 0:
			flush()
			if err := writev(rc, w.flows[r].finish(pkts[i], offset)); err != nil {
				if errors.Is(err, os.ErrClosed) {
					return err
				}
				errs = errors.Join(errs, err)
			}
		}
	}
	flush()
	// The iovecs point into the caller's buffers, which are its again.
	for k := range w.flows {
		clear(w.flows[k].iov)
	}
	return errs
}

// tcpCandidate parses pkt as a TCP segment that may be coalesced and
// returns its header lengths, or ok == false.
func tcpCandidate(pkt []byte) (iphLen, tcphLen int, v6, ok bool) {
	if len(pkt) < 20 {
		return 0, 0, false, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if pkt[0]&0x0f != 5 || pkt[9] != unix.IPPROTO_TCP || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) {
			return 0, 0, false, false
		}
		if pkt[6]&0x3f != 0 || pkt[7] != 0 { // MF or a fragment offset
			return 0, 0, false, false
		}
		iphLen = 20
	case 6:
		if len(pkt) < 40 || pkt[6] != unix.IPPROTO_TCP || int(binary.BigEndian.Uint16(pkt[4:]))+40 != len(pkt) {
			return 0, 0, false, false
		}
		iphLen, v6 = 40, true
	default:
		return 0, 0, false, false
	}
	if len(pkt) < iphLen+20 {
		return 0, 0, false, false
	}
	tcphLen = int(pkt[iphLen+12]>>4) * 4
	if tcphLen < 20 || len(pkt) <= iphLen+tcphLen {
		return 0, 0, false, false // no payload: nothing to coalesce
	}
	if f := pkt[iphLen+13]; f != tcpFlagACK && f != tcpFlagACK|tcpFlagPSH {
		return 0, 0, false, false
	}
	return iphLen, tcphLen, v6, true
}

// sameFlow reports whether b belongs to the flow whose first packet is a
// and may join it as far as its headers go: addresses, ports, ACK number,
// TCP options, and the IP fields GRO keeps.
func sameFlow(a, b []byte, iphLen, tcphLen int, v6 bool) bool {
	if v6 {
		if a[0] != b[0] || a[1]>>4 != b[1]>>4 || a[7] != b[7] || !bytes.Equal(a[8:40], b[8:40]) {
			return false
		}
	} else if a[1] != b[1] || a[6]>>5 != b[6]>>5 || a[8] != b[8] || !bytes.Equal(a[12:20], b[12:20]) {
		return false
	}
	ta, tb := a[iphLen:], b[iphLen:]
	return int(tb[12]>>4)*4 == tcphLen &&
		bytes.Equal(ta[0:4], tb[0:4]) && // ports
		bytes.Equal(ta[8:12], tb[8:12]) && // ACK number
		bytes.Equal(ta[20:tcphLen], tb[20:tcphLen]) // options
}

// plan sorts the packets pkts[i][offset:] into flows and the others.
func (w *groWriter) plan(pkts [][]byte, offset int) {
	w.flows = w.flows[:0]
	w.role = w.role[:0]
	iovs := w.iovBuf
	for i, b := range pkts {
		pkt := b[offset:]
		iphLen, tcphLen, v6, ok := tcpCandidate(pkt)
		switch {
		case !ok:
			w.role = append(w.role, roleAlone)
			continue
		case w.merge(pkts, offset, pkt, iphLen, tcphLen, v6):
			w.role = append(w.role, roleMerged)
			continue
		case len(w.flows) == maxGROFlows:
			w.role = append(w.role, roleAlone)
			continue
		}
		w.role = append(w.role, len(w.flows))
		payload := len(pkt) - iphLen - tcphLen
		w.flows = append(w.flows, groFlow{
			first: i, iphLen: iphLen, tcphLen: tcphLen, v6: v6,
			gsoSize: payload, length: len(pkt), segs: 1,
			nextSeq: binary.BigEndian.Uint32(pkt[iphLen+4:]) + uint32(payload),
			psh:     pkt[iphLen+13]&tcpFlagPSH != 0,
			iov:     iovs[: 1 : maxGROSegments+1], // [0]: the head, set by finish
		})
		iovs = iovs[maxGROSegments+1:]
	}
}

// merge appends pkt to the flow it continues, if there is one and the
// rules allow; it reports whether it did.
func (w *groWriter) merge(pkts [][]byte, offset int, pkt []byte, iphLen, tcphLen int, v6 bool) bool {
	// Newest first: a flow that had to start anew (a packet out of
	// order) continues in the newer super-packet, which is written after
	// the older one.
	for k := len(w.flows) - 1; k >= 0; k-- {
		f := &w.flows[k]
		head := pkts[f.first][offset:]
		if f.v6 != v6 || f.iphLen != iphLen || !sameFlow(head, pkt, iphLen, tcphLen, v6) {
			continue
		}
		payload := len(pkt) - iphLen - tcphLen
		seq := binary.BigEndian.Uint32(pkt[iphLen+4:])
		if f.psh || f.short || seq != f.nextSeq || payload > f.gsoSize ||
			f.segs == maxGROSegments || f.length+payload > 1<<16-1 {
			// Out of order, or it cannot follow: the flow's packets
			// so far go first, this one on its own after them.
			return false
		}
		if f.segs == 1 && !tcpChecksumValid(head, iphLen, v6) {
			return false
		}
		if !tcpChecksumValid(pkt, iphLen, v6) {
			return false
		}
		f.iov = append(f.iov, iovecOf(pkt[iphLen+tcphLen:]))
		f.segs++
		f.length += payload
		f.nextSeq = seq + uint32(payload)
		f.psh = pkt[iphLen+13]&tcpFlagPSH != 0
		f.short = payload < f.gsoSize
		return true
	}
	return false
}

// iovecOf points an iovec at b (not empty).
func iovecOf(b []byte) unix.Iovec {
	iov := unix.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	return iov
}

// finish turns the first packet of f into the super-packet's headers,
// with the virtio-net header in the VirtioNetHdrLen bytes before it, and
// returns the iovecs to write.
func (f *groFlow) finish(buf []byte, offset int) []unix.Iovec {
	pkt := buf[offset:]
	vh := buf[offset-VirtioNetHdrLen : offset]
	clear(vh)
	f.iov[0] = iovecOf(buf[offset-VirtioNetHdrLen:])
	if f.segs == 1 {
		// Written as it is; the kernel checks its checksum.
		return f.iov
	}
	tcp := pkt[f.iphLen:]
	if f.psh {
		tcp[13] |= tcpFlagPSH
	}
	var src, dst []byte
	if f.v6 {
		binary.BigEndian.PutUint16(pkt[4:], uint16(f.length-40))
		src, dst = pkt[8:24], pkt[24:40]
		vh[1] = unix.VIRTIO_NET_HDR_GSO_TCPV6
	} else {
		binary.BigEndian.PutUint16(pkt[2:], uint16(f.length))
		pkt[10], pkt[11] = 0, 0
		binary.BigEndian.PutUint16(pkt[10:], ^foldChecksum(sumBytes(pkt[:20], 0)))
		src, dst = pkt[12:16], pkt[16:20]
		vh[1] = unix.VIRTIO_NET_HDR_GSO_TCPV4
	}
	// CHECKSUM_PARTIAL: the TCP checksum field holds the pseudo-header
	// sum, and the kernel adds the rest from csum_start on.
	vh[0] = unix.VIRTIO_NET_HDR_F_NEEDS_CSUM
	binary.NativeEndian.PutUint16(vh[2:], uint16(f.iphLen+f.tcphLen)) // hdr_len
	binary.NativeEndian.PutUint16(vh[4:], uint16(f.gsoSize))          // gso_size
	binary.NativeEndian.PutUint16(vh[6:], uint16(f.iphLen))           // csum_start
	binary.NativeEndian.PutUint16(vh[8:], 16)                         // csum_offset
	binary.BigEndian.PutUint16(tcp[16:], foldChecksum(pseudoSum(src, dst, unix.IPPROTO_TCP, f.length-f.iphLen)))
	return f.iov
}

// writev writes one packet given as iovecs to the device's file.
func writev(rc syscall.RawConn, iov []unix.Iovec) error {
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		for {
			_, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			errno = e
			return true
		}
	})
	if err != nil {
		return err
	}
	if errno == unix.EBADFD {
		return os.ErrClosed
	}
	if errno != 0 {
		return os.NewSyscallError("writev", errno)
	}
	return nil
}

var errGROOffset = errors.New("coalescing needs the virtio-net header's room before each packet")

// tcpChecksumValid verifies the TCP checksum of pkt.
func tcpChecksumValid(pkt []byte, iphLen int, v6 bool) bool {
	var src, dst []byte
	if v6 {
		src, dst = pkt[8:24], pkt[24:40]
	} else {
		src, dst = pkt[12:16], pkt[16:20]
	}
	return foldChecksum(sumBytes(pkt[iphLen:], pseudoSum(src, dst, unix.IPPROTO_TCP, len(pkt)-iphLen))) == 0xffff
}

// pseudoSum is the unfolded sum of the pseudo-header of a proto segment
// of length bytes.
func pseudoSum(src, dst []byte, proto uint64, length int) uint64 {
	s := sumBytes(src, 0)
	s = sumBytes(dst, s)
	return s + proto + uint64(length)
}

// sumBytes adds b, as big-endian 16-bit words, to the one's-complement
// sum s (unfolded). The bulk is summed as little-endian 32-bit words into
// four 64-bit accumulators: no carry chain ties one addition to the next
// (the adds run in parallel), no byte swaps, and since the one's-complement
// sum does not depend on byte order (RFC 1071, 2.B) the folded result only
// needs its two bytes swapped once. An accumulator takes 2^32 words before
// it could overflow, far beyond the 64 KiB of a packet.
func sumBytes(b []byte, s uint64) uint64 {
	if len(b) >= 32 {
		var a0, a1, a2, a3 uint64
		for len(b) >= 32 {
			a0 += uint64(binary.LittleEndian.Uint32(b)) + uint64(binary.LittleEndian.Uint32(b[16:]))
			a1 += uint64(binary.LittleEndian.Uint32(b[4:])) + uint64(binary.LittleEndian.Uint32(b[20:]))
			a2 += uint64(binary.LittleEndian.Uint32(b[8:])) + uint64(binary.LittleEndian.Uint32(b[24:]))
			a3 += uint64(binary.LittleEndian.Uint32(b[12:])) + uint64(binary.LittleEndian.Uint32(b[28:]))
			b = b[32:]
		}
		var carry uint64
		s, carry = bits.Add64(s, uint64(bits.ReverseBytes16(foldChecksum(a0+a1+a2+a3))), 0)
		s += carry
	}
	var carry uint64
	for len(b) >= 8 {
		s, carry = bits.Add64(s, binary.BigEndian.Uint64(b), 0)
		s += carry
		b = b[8:]
	}
	if len(b) >= 4 {
		s, carry = bits.Add64(s, uint64(binary.BigEndian.Uint32(b)), 0)
		s += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		s, carry = bits.Add64(s, uint64(binary.BigEndian.Uint16(b)), 0)
		s += carry
		b = b[2:]
	}
	if len(b) == 1 {
		s, carry = bits.Add64(s, uint64(b[0])<<8, 0)
		s += carry
	}
	return s
}

// foldChecksum folds a sum to 16 bits (not complemented).
func foldChecksum(s uint64) uint16 {
	s = s>>32 + s&0xffffffff
	s = s>>32 + s&0xffffffff
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return uint16(s)
}
