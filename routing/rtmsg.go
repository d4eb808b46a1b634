package routing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Routing socket messages (macOS, FreeBSD). A route is added, deleted or
// looked up by writing a struct rt_msghdr followed by sockaddrs to an
// AF_ROUTE socket, and the kernel answers and announces changes in the
// same format. Encoding and decoding live here, in a file built on every
// platform, so that the tests check the bytes against the layouts of the
// platforms' <net/route.h> on the Linux machines that run them;
// golang.org/x/net/route, which builds only on the BSDs, could not be
// tested here. The numbers are the headers'; layout_darwin.go and
// layout_freebsd.go make the compiler compare them with
// golang.org/x/sys/unix's.
//
// All four targets (amd64 and arm64 of both systems) are little-endian.

// Message types, rt_msghdr flags and sockaddr bits of <net/route.h>; the
// values are the same on macOS and FreeBSD.
const (
	rtmVersion = 5

	rtmAdd     = 0x1
	rtmDelete  = 0x2
	rtmChange  = 0x3
	rtmGet     = 0x4
	rtmNewAddr = 0xc
	rtmDelAddr = 0xd
	rtmIfInfo  = 0xe

	rtfUp        = 0x1
	rtfGateway   = 0x2
	rtfHost      = 0x4
	rtfStatic    = 0x800
	rtfBlackhole = 0x1000
	// rtfProto1 marks the routes a Link installs, as RouteProtocol does
	// on Linux: only a route that carries it is ever deleted by Cleanup.
	rtfProto1 = 0x8000

	rtaDst     = 0x1
	rtaGateway = 0x2
	rtaNetmask = 0x4
	rtaIfp     = 0x10
	// rtaMax is the number of sockaddr slots (RTAX_MAX).
	rtaMax = 8

	afInet = 2
	afLink = 18

	sizeofSockaddrInet4 = 16
	sizeofSockaddrInet6 = 28
)

// rtLayout is what differs between the platforms' routing messages.
type rtLayout struct {
	// hdrLen is sizeof(struct rt_msghdr), mtuOff the offset of
	// rtm_rmx.rmx_mtu in it and mtuSize its size.
	hdrLen, mtuOff, mtuSize int
	// align is what each sockaddr's length is rounded up to (ROUNDUP in
	// macOS's route.c, SA_SIZE in FreeBSD's), and the space an empty one
	// takes.
	align int
	// af6 is AF_INET6, dlLen sizeof(struct sockaddr_dl).
	af6   byte
	dlLen int
}

// The layouts' numbers, from <net/route.h>, <net/if_dl.h> and
// <sys/socket.h>. macOS: rt_msghdr has nine ints after its first 8 bytes
// and a struct rt_metrics of 14 u_int32_t; FreeBSD: rtm_inits and the 14
// rt_metrics fields are u_long, 8 bytes on amd64 and arm64.
const (
	darwinHdrLen, darwinMTUOff, darwinMTUSize = 92, 40, 4
	darwinAlign, darwinAF6, darwinDLLen       = 4, 30, 20

	freebsdHdrLen, freebsdMTUOff, freebsdMTUSize = 152, 48, 8
	freebsdAlign, freebsdAF6, freebsdDLLen       = 8, 28, 54
)

var (
	darwinLayout    = rtLayout{hdrLen: darwinHdrLen, mtuOff: darwinMTUOff, mtuSize: darwinMTUSize, align: darwinAlign, af6: darwinAF6, dlLen: darwinDLLen}
	freebsd64Layout = rtLayout{hdrLen: freebsdHdrLen, mtuOff: freebsdMTUOff, mtuSize: freebsdMTUSize, align: freebsdAlign, af6: freebsdAF6, dlLen: freebsdDLLen}
)

// routeMsg is one routing message, decoded. Addresses that are not
// valid are absent from the message.
type routeMsg struct {
	Type  uint8
	Index uint16 // rtm_index: the interface
	Flags uint32
	Pid   int32
	Seq   int32
	Errno int32
	MTU   uint64 // rmx_mtu, 0 for none

	Dst     netip.Addr
	Gateway netip.Addr
	// GatewayLink is the interface index of a gateway that is an
	// interface (a sockaddr_dl), 0 otherwise.
	GatewayLink uint16
	// Mask is the prefix length of the netmask, -1 without one (a host
	// route).
	Mask int
	// IfpLink is the interface index of an RTA_IFP sockaddr_dl, 0 if
	// absent.
	IfpLink uint16
}

func (l rtLayout) roundup(n int) int {
	if n == 0 {
		return l.align
	}
	return (n + l.align - 1) &^ (l.align - 1)
}

// marshal encodes m. The netmask has the family of the destination.
func (l rtLayout) marshal(m *routeMsg) ([]byte, error) {
	b := make([]byte, l.hdrLen, l.hdrLen+4*32)
	var addrs uint32
	put := func(bit uint32, sa []byte) {
		addrs |= bit
		b = append(b, sa...)
		b = append(b, make([]byte, l.roundup(len(sa))-len(sa))...)
	}
	if m.Dst.IsValid() {
		sa, err := l.sockaddr(m.Dst)
		if err != nil {
			return nil, err
		}
		put(rtaDst, sa)
	}
	switch {
	case m.Gateway.IsValid():
		sa, err := l.sockaddr(m.Gateway)
		if err != nil {
			return nil, err
		}
		put(rtaGateway, sa)
	case m.GatewayLink != 0:
		put(rtaGateway, l.linkSockaddr(m.GatewayLink))
	}
	if m.Mask >= 0 && m.Dst.IsValid() {
		if m.Mask > m.Dst.BitLen() {
			return nil, fmt.Errorf("netmask /%d for %v", m.Mask, m.Dst)
		}
		put(rtaNetmask, l.maskSockaddr(m.Dst.Is4(), m.Mask))
	}
	if m.IfpLink != 0 {
		put(rtaIfp, l.linkSockaddr(m.IfpLink))
	}
	if len(b) > 0xffff {
		return nil, errors.New("routing message too long")
	}
	le := binary.LittleEndian
	le.PutUint16(b[0:], uint16(len(b)))
	b[2] = rtmVersion
	b[3] = m.Type
	le.PutUint16(b[4:], m.Index)
	le.PutUint32(b[8:], m.Flags)
	le.PutUint32(b[12:], addrs)
	le.PutUint32(b[16:], uint32(m.Pid))
	le.PutUint32(b[20:], uint32(m.Seq))
	le.PutUint32(b[24:], uint32(m.Errno))
	if l.mtuSize == 4 {
		le.PutUint32(b[l.mtuOff:], uint32(m.MTU))
	} else {
		le.PutUint64(b[l.mtuOff:], m.MTU)
	}
	return b, nil
}

// sockaddr is a's sockaddr_in or sockaddr_in6 (with its zone, a number,
// as sin6_scope_id).
func (l rtLayout) sockaddr(a netip.Addr) ([]byte, error) {
	if a.Is4() {
		sa := make([]byte, sizeofSockaddrInet4)
		sa[0], sa[1] = sizeofSockaddrInet4, afInet
		ip := a.As4()
		copy(sa[4:], ip[:])
		return sa, nil
	}
	if a.Is4In6() {
		return nil, fmt.Errorf("IPv4-mapped address %v", a)
	}
	sa := make([]byte, sizeofSockaddrInet6)
	sa[0], sa[1] = sizeofSockaddrInet6, l.af6
	ip := a.As16()
	copy(sa[8:], ip[:])
	if z := a.Zone(); z != "" {
		var id uint32
		if _, err := fmt.Sscanf(z, "%d", &id); err != nil {
			return nil, fmt.Errorf("zone of %v: not an interface index", a)
		}
		binary.LittleEndian.PutUint32(sa[24:], id)
	}
	return sa, nil
}

// maskSockaddr is the netmask of bits ones, in full length.
func (l rtLayout) maskSockaddr(v4 bool, bits int) []byte {
	sa, off := make([]byte, sizeofSockaddrInet6), 8
	sa[0], sa[1] = sizeofSockaddrInet6, l.af6
	if v4 {
		sa, off = make([]byte, sizeofSockaddrInet4), 4
		sa[0], sa[1] = sizeofSockaddrInet4, afInet
	}
	for i := range bits {
		sa[off+i/8] |= 0x80 >> (i % 8)
	}
	return sa
}

// linkSockaddr is the sockaddr_dl of interface index: neither name nor
// link-layer address, the kernel looks the interface up by index.
func (l rtLayout) linkSockaddr(index uint16) []byte {
	sa := make([]byte, l.dlLen)
	sa[0], sa[1] = byte(l.dlLen), afLink
	binary.LittleEndian.PutUint16(sa[2:], index)
	return sa
}

// Errors of parse.
var (
	errShortMessage = errors.New("routing message: truncated")
	errRTMVersion   = errors.New("routing message: unknown version")
)

// parse decodes one message from the front of b and returns it and the
// bytes after it. Only the header is decoded for types other than route
// messages (RTM_ADD to RTM_GET and a few more whose layout is the same
// header): their sockaddrs are skipped with the message.
func (l rtLayout) parse(b []byte) (*routeMsg, []byte, error) {
	if len(b) < 4 {
		return nil, nil, errShortMessage
	}
	le := binary.LittleEndian
	n := int(le.Uint16(b))
	if n < 4 || n > len(b) {
		return nil, nil, errShortMessage
	}
	msg, rest := b[:n], b[n:]
	if msg[2] != rtmVersion {
		return nil, rest, errRTMVersion
	}
	m := &routeMsg{Type: msg[3], Mask: -1}
	if m.Type < rtmAdd || m.Type > rtmGet {
		// Interface and address messages have other headers; the type
		// is all a watcher needs of them.
		return m, rest, nil
	}
	if n < l.hdrLen {
		return nil, rest, errShortMessage
	}
	m.Index = le.Uint16(msg[4:])
	m.Flags = le.Uint32(msg[8:])
	addrs := le.Uint32(msg[12:])
	m.Pid = int32(le.Uint32(msg[16:]))
	m.Seq = int32(le.Uint32(msg[20:]))
	m.Errno = int32(le.Uint32(msg[24:]))
	if l.mtuSize == 4 {
		m.MTU = uint64(le.Uint32(msg[l.mtuOff:]))
	} else {
		m.MTU = le.Uint64(msg[l.mtuOff:])
	}
	sas := msg[l.hdrLen:]
	var dstFamily byte
	for i := range rtaMax {
		if addrs&(1<<i) == 0 {
			continue
		}
		if len(sas) == 0 {
			return nil, rest, errShortMessage
		}
		salen := int(sas[0])
		step := l.roundup(salen)
		if step > len(sas) {
			if salen > len(sas) {
				return nil, rest, errShortMessage
			}
			// The last sockaddr's padding may be missing.
			step = len(sas)
		}
		sa := sas[:salen]
		sas = sas[step:]
		switch 1 << i {
		case rtaDst:
			m.Dst = l.inetAddr(sa)
			if len(sa) > 1 {
				dstFamily = sa[1]
			}
		case rtaGateway:
			if len(sa) >= 4 && sa[1] == afLink {
				m.GatewayLink = le.Uint16(sa[2:])
			} else {
				m.Gateway = l.inetAddr(sa)
			}
		case rtaNetmask:
			m.Mask = l.maskBits(sa, dstFamily)
		case rtaIfp:
			if len(sa) >= 4 && sa[1] == afLink {
				m.IfpLink = le.Uint16(sa[2:])
			}
		}
	}
	return m, rest, nil
}

// inetAddr decodes a sockaddr_in or sockaddr_in6, the zero Addr for
// anything else.
func (l rtLayout) inetAddr(sa []byte) netip.Addr {
	switch {
	case len(sa) >= 8 && sa[1] == afInet:
		return netip.AddrFrom4([4]byte(sa[4:8]))
	case len(sa) >= 24 && sa[1] == l.af6:
		a := netip.AddrFrom16([16]byte(sa[8:24]))
		if len(sa) >= sizeofSockaddrInet6 {
			if id := binary.LittleEndian.Uint32(sa[24:]); id != 0 {
				a = a.WithZone(fmt.Sprint(id))
			}
		}
		return a
	}
	return netip.Addr{}
}

// maskBits decodes a netmask. The kernel shortens netmasks to their last
// non-zero byte and may leave their family unset, so the destination's
// family says where the mask bytes start. A mask that is not contiguous
// ones is reported as -1, which no route of ours has.
func (l rtLayout) maskBits(sa []byte, family byte) int {
	off, size := 4, 4
	if family == l.af6 {
		off, size = 8, 16
	}
	bits, ended := 0, false
	for i := range size {
		var x byte
		if off+i < len(sa) {
			x = sa[off+i]
		}
		for j := 7; j >= 0; j-- {
			one := x&(1<<j) != 0
			switch {
			case one && ended:
				return -1
			case one:
				bits++
			default:
				ended = true
			}
		}
	}
	return bits
}
