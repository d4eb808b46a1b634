package tunnel

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// helloTimeout bounds how long an unidentified connection may take to send
// its ClientHello, so that idle strangers cannot pile up.
const helloTimeout = 10 * time.Second

// maxUnidentified bounds connections still waiting for their ClientHello,
// and so the goroutines and buffers strangers can make us hold.
const maxUnidentified = 256

// dialTimeout bounds one outbound connection attempt.
const dialTimeout = 10 * time.Second

// acceptLoop is the listener goroutine.
func (d *Device) acceptLoop() {
	var delay time.Duration
	for {
		nc, err := d.ln.Accept()
		if err != nil {
			if d.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http
			// does instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			d.log.Warn("accept", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-d.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		host := hostOf(remoteAddr(nc))
		select {
		case d.helloSlots <- struct{}{}:
		default:
			d.guard.refuse(d.clock(), refTCPBusy, nc.RemoteAddr().String())
			nc.Close()
			continue
		}
		if !d.guard.openTCP(host) {
			<-d.helloSlots
			d.guard.refuse(d.clock(), refTCPBusy, nc.RemoteAddr().String())
			nc.Close()
			continue
		}
		d.goFunc(func() {
			defer func() { d.guard.closeTCP(host); <-d.helloSlots }()
			d.identify(nc)
		})
	}
}

// remoteAddr is a connection's remote IP address.
func remoteAddr(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// maxKeyRequests bounds the HelloKeyRequests one connection may send
// before its sealed hello.
const maxKeyRequests = 2

// identify reads the hello of an accepted connection (answering a key
// request first if it asks), opens it and hands the connection to the
// peer whose key (a ClientHello) or group (a ResumptionRequest,
// streamresume.go) is inside. Anything else is closed without a word: a
// responder does not reveal itself to strangers.
func (d *Device) identify(nc net.Conn) {
	stop := context.AfterFunc(d.ctx, func() { nc.Close() })
	defer stop()
	// One deadline for the whole hello, not per read: a slow sender
	// cannot keep its slot by trickling bytes.
	_ = nc.SetReadDeadline(time.Now().Add(helloTimeout))
	from := nc.RemoteAddr().String()
	src, _ := netip.ParseAddrPort(from)
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		src = ta.AddrPort()
	}
	hs := &helloStream{r: nc}
	var v sealedVerdict
	for requests := 0; ; requests++ {
		_, env, err := hs.next()
		if err != nil {
			d.guard.refuseErr(d.clock(), refBadHello, from, err)
			nc.Close()
			return
		}
		v = d.classifyHello(d.clock(), src, env, 0, -1)
		if v.answer == nil || requests == maxKeyRequests {
			break
		}
		_ = nc.SetWriteDeadline(time.Now().Add(helloTimeout))
		if _, err := nc.Write(bytes.Join(v.answer, nil)); err != nil {
			nc.Close()
			return
		}
	}
	if v.opened == nil {
		if v.p != nil {
			// A TCP initiator never sends one hello twice: a known
			// one on a new connection is a replay.
			d.guard.refuse(d.clock(), refHelloReplay, from)
		}
		nc.Close()
		return
	}
	_ = nc.SetReadDeadline(time.Time{})
	_ = nc.SetWriteDeadline(time.Time{})
	c := newStreamConn(nc, false, hs.raw)
	c.helloHash, c.opened = v.hash, v.opened
	if !stop() {
		nc.Close() // shutting down
		return
	}
	select {
	case v.p.conns <- c:
	case <-v.p.ctx.Done(): // shutting down, or the peer was removed
		nc.Close()
	}
}

// dial connects to a peer's endpoint and hands the connection to its
// owner, or reports the failure there.
func (d *Device) dial(p *peer, endpoint string) {
	nc, err := d.dialer.DialContext(p.ctx, "tcp", endpoint)
	res := dialResult{err: err}
	if err == nil {
		res.c = newStreamConn(nc, true, nil)
	}
	select {
	case p.dialed <- res:
	case <-p.ctx.Done():
		if nc != nil {
			nc.Close()
		}
	}
}

// resolveUDP resolves a peer's endpoint for UDP and reports it to the
// owner, which starts a datagram session (or, with probe, a UDP probe:
// probe.go).
func (d *Device) resolveUDP(p *peer, endpoint string, probe bool) {
	res := dialResult{probe: probe}
	ap, err := netip.ParseAddrPort(endpoint)
	if err != nil {
		ap, err = d.resolveEndpoint(p.ctx, endpoint)
	}
	if err == nil {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		res.ep, err = d.udp.bind.ParseEndpoint(ap.String())
	}
	res.err = err
	select {
	case p.dialed <- res:
	case <-p.ctx.Done():
	}
}

type dialResult struct {
	c   *streamConn
	ep  conn.Endpoint // a resolved UDP endpoint
	err error
	// probe: ep is for a UDP probe, not for a new connection.
	probe bool
}
