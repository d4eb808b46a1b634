package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// The UDP sockets on Linux, with system calls of our own rather than
// wireguard/conn's StdNetBind, which the data path profile showed paying
// for three things we need not:
//
//   - Sending, it copies every datagram of a batch behind the first to
//     build one UDP GSO message (13 % of the sending daemon's CPU in a
//     single TCP stream). Here a GSO message is an iovec per datagram,
//     gathered by the kernel from the buffers they were sealed in.
//   - Receiving, it splits each GRO message by copying its datagrams into
//     the batch's other buffers, which the reader then copies into pool
//     buffers. Here the reader splits a message as it copies (udpMsg).
//   - It allocates an endpoint per received datagram. Here a reader reuses
//     the last one while the source stays the same.

// socketBufferSize is what the sockets ask for, beyond net.core.rmem_max
// and wmem_max when we have CAP_NET_ADMIN (as wireguard-go does).
const socketBufferSize = 7 << 20

// maxGSOSegments is the most datagrams one UDP GSO message may carry
// (UDP_MAX_SEGMENTS in kernels before 6.9; later ones allow more).
const maxGSOSegments = 64

const (
	// The largest UDP payload of one message, segments included.
	maxUDP4Payload = 1<<16 - 1 - 20 - 8
	maxUDP6Payload = 1<<16 - 1 - 8
)

var (
	// sendCtrlSize fits a sticky source (IPv6 is the larger) and a GSO
	// segment size.
	sendCtrlSize = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(2)
	// recvCtrlSize fits the packet info and a GRO segment size (an int).
	recvCtrlSize = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(4)
)

// mmsghdr is struct mmsghdr; Go pads it to the kernel's size.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// udpSock is one of the two sockets.
type udpSock struct {
	uc  *net.UDPConn
	rc  syscall.RawConn
	is6 bool
	// gso: UDP_SEGMENT works here; cleared for good when a send finds
	// that the device cannot checksum for it.
	gso atomic.Bool
	gro bool // the kernel coalesces what we receive (UDP_GRO)
}

type linuxBind struct {
	v4, v6 *udpSock
	// scratch and smallScratch hold *sendScratch: writers and owners send
	// concurrently. A scratch for maxBatch datagrams is 19 KiB, and a hub
	// whose thousand owners each send a keepalive or a batch of one at once
	// would hold a thousand of them; sends of at most smallSend datagrams
	// take a scratch their size.
	scratch, smallScratch sync.Pool
	closeOnce             sync.Once
	closeErr              error
}

func openUDPBind(port uint16) (udpBind, []udpReader, uint16, error) {
	b := &linuxBind{}
	b.scratch.New = func() any { return newSendScratch(maxBatch) }
	b.smallScratch.New = func() any { return newSendScratch(smallSend) }
	for tries := 0; ; tries++ {
		v4, p, err := listenUDP("udp4", port)
		if err != nil && !errors.Is(err, syscall.EAFNOSUPPORT) {
			return nil, nil, 0, err
		}
		if v4 == nil {
			p = int(port)
		}
		v6, p6, err := listenUDP("udp6", uint16(p))
		if port == 0 && v4 != nil && errors.Is(err, syscall.EADDRINUSE) && tries < 100 {
			// The port the kernel chose for IPv4 is taken for IPv6.
			v4.uc.Close()
			continue
		}
		if err != nil && !errors.Is(err, syscall.EAFNOSUPPORT) {
			if v4 != nil {
				v4.uc.Close()
			}
			return nil, nil, 0, err
		}
		if v4 == nil && v6 == nil {
			return nil, nil, 0, syscall.EAFNOSUPPORT
		}
		if v4 == nil {
			p = p6
		}
		b.v4, b.v6 = v4, v6
		var readers []udpReader
		for _, s := range []*udpSock{v4, v6} {
			if s != nil {
				readers = append(readers, newLinuxReader(s))
			}
		}
		return b, readers, uint16(p), nil
	}
}

// listenUDP opens one socket on port (0: any) and returns it with its port.
func listenUDP(network string, port uint16) (*udpSock, int, error) {
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var err error
		cerr := c.Control(func(fd uintptr) {
			s := int(fd)
			// Best effort, as for wireguard-go: smaller buffers only
			// cost throughput on fast links.
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBufferSize)
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBufferSize)
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBufferSize)
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBufferSize)
			// The packet info of what arrives is the sticky source of
			// the replies.
			if network == "udp4" {
				err = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			} else {
				err = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
				if err == nil {
					err = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
				}
			}
			// Without GRO every datagram is a message of its own.
			_ = unix.SetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_GRO, 1)
		})
		return errors.Join(cerr, err)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, ":"+strconv.Itoa(int(port)))
	if err != nil {
		return nil, 0, err
	}
	uc := pc.(*net.UDPConn)
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, 0, err
	}
	s := &udpSock{uc: uc, rc: rc, is6: network == "udp6"}
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		s.gso.Store(err == nil)
		v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO)
		s.gro = err == nil && v == 1
	})
	return s, uc.LocalAddr().(*net.UDPAddr).Port, nil
}

func (b *linuxBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return &udpEndpoint{dst: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

func (b *linuxBind) SetMark(mark uint32) error {
	for _, s := range []*udpSock{b.v4, b.v6} {
		if s == nil {
			continue
		}
		var err error
		if cerr := s.rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); cerr != nil {
			return cerr
		}
		if err != nil {
			return os.NewSyscallError("setsockopt SO_MARK", err)
		}
	}
	return nil
}

func (b *linuxBind) Close() error {
	b.closeOnce.Do(func() {
		for _, s := range []*udpSock{b.v4, b.v6} {
			if s != nil {
				b.closeErr = errors.Join(b.closeErr, s.uc.Close())
			}
		}
	})
	return b.closeErr
}

func (b *linuxBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	if len(bufs) == 0 {
		return nil
	}
	dst, src, ifindex := endpointParts(ep)
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	s := b.v4
	if dst.Addr().Is6() {
		s = b.v6
	}
	if s == nil || !dst.IsValid() {
		return fmt.Errorf("UDP send to %v: %w", dst, syscall.EAFNOSUPPORT)
	}
	pool := &b.scratch
	if len(bufs) <= smallSend {
		pool = &b.smallScratch
	}
	sc := pool.Get().(*sendScratch)
	defer pool.Put(sc)
	sc.setDst(dst, src, ifindex)
	for len(bufs) > 0 {
		k := min(len(bufs), len(sc.msgs))
		if err := s.sendBatch(sc, bufs[:k]); err != nil {
			return err
		}
		bufs = bufs[k:]
	}
	return nil
}

// sendBatch sends at most maxBatch datagrams: with GSO as few messages as
// runs of equal sizes allow, falling back to one message per datagram when
// the kernel refuses segmentation.
func (s *udpSock) sendBatch(sc *sendScratch, bufs [][]byte) error {
	gso := s.gso.Load()
	maxPayload := maxUDP4Payload
	if s.is6 {
		maxPayload = maxUDP6Payload
	}
	for {
		nm := sc.build(bufs, gso, maxPayload)
		sent, err := s.sendmmsg(sc.msgs[:nm])
		if err == nil || !gso || sent == nm {
			return err
		}
		if errors.Is(err, unix.EIO) {
			// The device cannot checksum for UDP_SEGMENT (see
			// udp(7)); it will not learn to.
			s.gso.Store(false)
		} else if !errors.Is(err, unix.EINVAL) {
			return err
		}
		// EINVAL: a segment larger than the path MTU, which the kernel
		// would fragment as a datagram of its own. Send the rest
		// without segmenting.
		bufs = bufs[sc.firstOf(sent):]
		gso = false
	}
}

// sendmmsg sends msgs and returns how many went; err is the error of the
// first that did not.
func (s *udpSock) sendmmsg(msgs []mmsghdr) (int, error) {
	done := 0
	var errno syscall.Errno
	err := s.rc.Write(func(fd uintptr) bool {
		for done < len(msgs) {
			n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&msgs[done])), uintptr(len(msgs)-done), 0, 0, 0)
			switch e {
			case 0:
				done += int(n)
			case unix.EINTR:
			case unix.EAGAIN:
				return false // wait until the socket is writable
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err != nil {
		return done, err
	}
	if errno != 0 {
		return done, os.NewSyscallError("sendmmsg", errno)
	}
	return done, nil
}

// sendScratch is one Send's messages, iovecs and control data, pointing at
// each other and at the caller's buffers.
type sendScratch struct {
	msgs  []mmsghdr
	iovs  []unix.Iovec
	ctrl  []byte
	first []int // the first buffer of each message
	sa4   unix.RawSockaddrInet4
	sa6   unix.RawSockaddrInet6
	name  *byte
	nlen  uint32
	src   []byte // the sticky source control message, if any
	srcb  [64]byte
}

// smallSend is the most datagrams a small send scratch takes.
const smallSend = 8

// newSendScratch returns a scratch for sends of up to n datagrams.
func newSendScratch(n int) *sendScratch {
	return &sendScratch{
		msgs:  make([]mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		ctrl:  make([]byte, n*sendCtrlSize),
		first: make([]int, n),
	}
}

// setDst fills in the destination and sticky source of the next build.
func (sc *sendScratch) setDst(dst netip.AddrPort, src netip.Addr, ifindex int32) {
	sc.src = sc.srcb[:0]
	if dst.Addr().Is4() {
		sc.sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Addr().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sc.sa4.Port))[:], dst.Port())
		sc.name, sc.nlen = (*byte)(unsafe.Pointer(&sc.sa4)), unix.SizeofSockaddrInet4
		if src.Is4() || src.Is4In6() {
			info := unix.Inet4Pktinfo{Ifindex: ifindex, Spec_dst: src.Unmap().As4()}
			sc.src = putCmsg(sc.src, unix.IPPROTO_IP, unix.IP_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&info)), unix.SizeofInet4Pktinfo))
		}
		return
	}
	sc.sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.Addr().As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sc.sa6.Port))[:], dst.Port())
	sc.name, sc.nlen = (*byte)(unsafe.Pointer(&sc.sa6)), unix.SizeofSockaddrInet6
	if src.Is6() && !src.Is4In6() {
		info := unix.Inet6Pktinfo{Addr: src.As16(), Ifindex: uint32(ifindex)}
		sc.src = putCmsg(sc.src, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&info)), unix.SizeofInet6Pktinfo))
	}
}

// putCmsg appends one control message to b (without allocating when b
// has the room, as the send scratch does).
func putCmsg(b []byte, level, typ int32, data []byte) []byte {
	start := len(b)
	b = slices.Grow(b, unix.CmsgSpace(len(data)))[:start+unix.CmsgSpace(len(data))]
	clear(b[start:])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[start+unix.CmsgLen(0):], data)
	return b
}

// build turns bufs (at most maxBatch) into messages and returns how many.
// With gso a message takes a run of datagrams of one size, of which the
// last may be shorter (the kernel's rule for UDP_SEGMENT), up to
// maxGSOSegments and maxPayload bytes.
func (sc *sendScratch) build(bufs [][]byte, gso bool, maxPayload int) int {
	nm := 0
	for i := 0; i < len(bufs); nm++ {
		size := len(bufs[i])
		j, total := i+1, size
		if gso && size > 0 {
			for j < len(bufs) && j-i < maxGSOSegments && len(bufs[j]) <= size && total+len(bufs[j]) <= maxPayload {
				total += len(bufs[j])
				j++
				if len(bufs[j-1]) < size {
					break
				}
			}
		}
		for k := i; k < j; k++ {
			iov := &sc.iovs[k]
			iov.Base = nil
			if len(bufs[k]) > 0 {
				iov.Base = &bufs[k][0]
			}
			iov.SetLen(len(bufs[k]))
		}
		ctrl := sc.ctrl[nm*sendCtrlSize : nm*sendCtrlSize : (nm+1)*sendCtrlSize]
		ctrl = append(ctrl, sc.src...)
		if j-i > 1 {
			var seg [2]byte
			binary.NativeEndian.PutUint16(seg[:], uint16(size))
			ctrl = putCmsg(ctrl, unix.SOL_UDP, unix.UDP_SEGMENT, seg[:])
		}
		h := &sc.msgs[nm].hdr
		*h = unix.Msghdr{Name: sc.name, Namelen: sc.nlen, Iov: &sc.iovs[i]}
		h.SetIovlen(j - i)
		if len(ctrl) > 0 {
			h.Control = &ctrl[0]
			h.SetControllen(len(ctrl))
		}
		sc.msgs[nm].n = 0
		sc.first[nm] = i
		i = j
	}
	return nm
}

// firstOf is the index of the first buffer of message m of the last build.
func (sc *sendScratch) firstOf(m int) int { return sc.first[m] }

// linuxReader reads one socket with recvmmsg.
type linuxReader struct {
	s     *udpSock
	msgs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	ctrl  []byte
	// last is the endpoint of the last datagram: the next from the same
	// source and to the same local address gets it too.
	last *udpEndpoint
}

func newLinuxReader(s *udpSock) *linuxReader {
	// With GRO one message may hold 64 datagrams; a read then holds
	// at most a batch of them (as for wireguard-go).
	n := maxBatch
	if s.gro {
		n = maxBatch / maxGSOSegments
	}
	r := &linuxReader{
		s:     s,
		msgs:  make([]mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		ctrl:  make([]byte, n*recvCtrlSize),
	}
	return r
}

func (r *linuxReader) batch() int { return len(r.msgs) }

func (r *linuxReader) read(bufs [][]byte, out []udpMsg) (int, error) {
	k := min(len(bufs), len(out), len(r.msgs))
	if k == 0 {
		return 0, errors.New("UDP read: no buffers")
	}
	for i := range k {
		r.iovs[i].Base = &bufs[i][0]
		r.iovs[i].SetLen(len(bufs[i]))
		h := &r.msgs[i].hdr
		*h = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&r.names[i])),
			Namelen: unix.SizeofSockaddrInet6,
			Iov:     &r.iovs[i],
			Control: &r.ctrl[i*recvCtrlSize],
		}
		h.SetIovlen(1)
		h.SetControllen(recvCtrlSize)
		r.msgs[i].n = 0
	}
	var got int
	var errno syscall.Errno
	err := r.s.rc.Read(func(fd uintptr) bool {
		for {
			n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(k), 0, 0, 0)
			switch e {
			case 0:
				got = int(n)
				return true
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", errno)
	}
	for i := range got {
		m := &r.msgs[i]
		seg, src, ifindex := parseRecvCtrl(r.ctrl[i*recvCtrlSize : i*recvCtrlSize+int(m.hdr.Controllen)])
		out[i] = udpMsg{n: int(m.n), seg: seg, ep: r.endpoint(&r.names[i], src, ifindex)}
	}
	return got, nil
}

// endpoint is the endpoint of a datagram from sa to src.
func (r *linuxReader) endpoint(sa *unix.RawSockaddrInet6, src netip.Addr, ifindex int32) conn.Endpoint {
	var dst netip.AddrPort
	if sa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		dst = netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), sockPort(sa4.Port))
	} else {
		dst = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), sockPort(sa.Port))
	}
	if l := r.last; l != nil && l.dst == dst && l.src == src && l.ifindex == ifindex {
		return l
	}
	r.last = &udpEndpoint{dst: dst, src: src, ifindex: ifindex}
	return r.last
}

// sockPort reads a port in network byte order.
func sockPort(p uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p))[:])
}

// parseRecvCtrl finds the GRO segment size and the packet info in the
// control data of a received message; what it does not know it ignores.
func parseRecvCtrl(b []byte) (seg int, src netip.Addr, ifindex int32) {
	for len(b) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(b)
		if err != nil {
			return seg, src, ifindex
		}
		b = rest
		switch {
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			seg = int(binary.NativeEndian.Uint32(data))
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 2:
			seg = int(binary.NativeEndian.Uint16(data))
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			info := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			src, ifindex = netip.AddrFrom4(info.Spec_dst), info.Ifindex
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			src, ifindex = netip.AddrFrom16(info.Addr), int32(info.Ifindex)
		}
	}
	return seg, src, ifindex
}
