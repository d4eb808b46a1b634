package tunnel

import (
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"
)

// The UDP sockets' interface, whatever implements it: on Linux a bind of
// our own over recvmmsg/sendmmsg (bind_linux.go), elsewhere wireguard/conn's
// StdNetBind (bind_other.go).

// udpBind sends on the device's UDP sockets (one IPv4, one IPv6, on the
// same port). Send may be called from several goroutines at once.
type udpBind interface {
	// Send sends bufs, one datagram each, to ep, in order.
	Send(bufs [][]byte, ep conn.Endpoint) error
	// ParseEndpoint parses "addr:port".
	ParseEndpoint(s string) (conn.Endpoint, error)
	SetMark(mark uint32) error
	Close() error
}

// udpReader reads from one socket; only one goroutine may use it.
type udpReader interface {
	// read receives up to len(bufs) messages, message i into bufs[i],
	// and describes them in msgs. It blocks until at least one arrives,
	// and fails with an error wrapping net.ErrClosed once the bind is
	// closed.
	read(bufs [][]byte, msgs []udpMsg) (int, error)
	// batch is how many messages one read fills at most.
	batch() int
}

// udpMsg is one received message: n bytes, which are datagrams of seg bytes
// each (the last may be shorter) when the kernel coalesced them (UDP GRO),
// else one datagram (seg 0), all from ep.
type udpMsg struct {
	n, seg int
	ep     conn.Endpoint
}

// datagrams calls f for each datagram in msg, which was read into buf.
func (m *udpMsg) datagrams(buf []byte, f func(dgram []byte)) {
	data := buf[:max(min(m.n, len(buf)), 0)]
	step := m.seg
	if step <= 0 || step > len(data) {
		step = len(data)
	}
	for len(data) > 0 {
		k := min(step, len(data))
		f(data[:k])
		data = data[k:]
	}
}

// udpEndpoint is a remote address and the local address and interface the
// datagram from it arrived on, to which replies stick (so that a
// multi-homed host answers from the address it was asked on). Endpoints
// are shared by the datagrams of one source, and never changed.
type udpEndpoint struct {
	dst     netip.AddrPort
	src     netip.Addr // invalid: let the kernel choose
	ifindex int32
}

// ClearSrc is a no-op: endpoints are shared, and a caller that wants no
// sticky source makes an endpoint without one (dgramCarrier.unstick).
func (e *udpEndpoint) ClearSrc()           {}
func (e *udpEndpoint) SrcToString() string { return e.src.String() }
func (e *udpEndpoint) DstToString() string { return e.dst.String() }
func (e *udpEndpoint) DstIP() netip.Addr   { return e.dst.Addr() }
func (e *udpEndpoint) SrcIP() netip.Addr   { return e.src }
func (e *udpEndpoint) DstToBytes() []byte {
	b, _ := e.dst.MarshalBinary()
	return b
}

// endpointParts returns where ep sends to, and its sticky source if any.
func endpointParts(ep conn.Endpoint) (dst netip.AddrPort, src netip.Addr, ifindex int32) {
	switch e := ep.(type) {
	case *udpEndpoint:
		return e.dst, e.src, e.ifindex
	case *conn.StdNetEndpoint:
		return e.AddrPort, e.SrcIP(), 0
	}
	dst, _ = netip.ParseAddrPort(ep.DstToString())
	return dst, netip.Addr{}, 0
}
