package tunnel

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/current-vpn/current/session"
)

// The UDP attacks of TestAttackHelper, run from namespace X against B's
// listener. Each source port is a connected socket that reads what B
// answers: a CookieChallenge is echoed in every later datagram of that
// port, as a real attacker who can receive at its address would.

// udpFlow is one attacker source port.
type udpFlow struct {
	c       *net.UDPConn
	sender  uint32 // our sender_index: challenges come back to it
	cookie  atomic.Pointer[[]byte]
	cookies atomic.Int64 // CookieChallenges received, for any index
	back    atomic.Int64 // bytes of every datagram received
}

func openFlows(target string, n int) ([]*udpFlow, error) {
	raddr, err := net.ResolveUDPAddr("udp4", target)
	if err != nil {
		return nil, err
	}
	var flows []*udpFlow
	for range n {
		c, err := net.DialUDP("udp4", nil, raddr)
		if err != nil {
			closeFlows(flows)
			return nil, err
		}
		// Let the kernel fragment 65 KB datagrams instead of refusing
		// them for the link's MTU.
		if rc, err := c.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DONT)
			})
		}
		c.SetWriteBuffer(1 << 20)
		f := &udpFlow{c: c, sender: mrand.Uint32() | 1}
		flows = append(flows, f)
		go f.read()
	}
	return flows, nil
}

func closeFlows(flows []*udpFlow) {
	for _, f := range flows {
		f.c.Close()
	}
}

func (f *udpFlow) read() {
	buf := make([]byte, 1<<16)
	for {
		n, err := f.c.Read(buf)
		if err != nil {
			if attackIgnoreRefused(err) {
				continue
			}
			return // closed
		}
		f.back.Add(int64(n))
		d := buf[:n]
		if n > 6 && d[0] == session.DatagramCookie && int(d[5]) == n-6 {
			f.cookies.Add(1)
			if binary.BigEndian.Uint32(d[1:]) == f.sender {
				ck := slices.Clone(d[6:])
				f.cookie.Store(&ck)
			}
		}
	}
}

func (f *udpFlow) currentCookie() []byte {
	if p := f.cookie.Load(); p != nil {
		return *p
	}
	return nil
}

// send writes one datagram and returns its length, 0 if it failed.
func (f *udpFlow) send(d []byte) int64 {
	if _, err := f.c.Write(d); err != nil {
		return 0
	}
	return int64(len(d))
}

// acquireCookies has every flow without a cookie send probe(f) every
// 20 ms until each has one or wait is over. All flows together exceed
// the listener's hello rate, so it is under load and challenges them.
func acquireCookies(flows []*udpFlow, probe func(*udpFlow) []byte, wait time.Duration) int64 {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		missing := 0
		for _, f := range flows {
			if f.cookie.Load() == nil {
				missing++
				f.send(probe(f))
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int64
	for _, f := range flows {
		if f.cookie.Load() != nil {
			n++
		}
	}
	return n
}

func flowTotals(flows []*udpFlow, res attackResult) {
	for _, f := range flows {
		res["cookies"] += f.cookies.Load()
		res["bytes_back"] += f.back.Load()
	}
}

// controlDatagram is a DatagramHandshake (docs/protocol.md 7.5) with
// receiver index 0, as a ClientHello is sent.
func controlDatagram(sender uint32, cookie, frag []byte) []byte {
	d := make([]byte, 0, 10+len(cookie)+len(frag))
	d = append(d, session.DatagramHandshake)
	d = binary.BigEndian.AppendUint32(d, sender)
	d = binary.BigEndian.AppendUint32(d, 0)
	d = append(d, byte(len(cookie)))
	d = append(d, cookie...)
	return append(d, frag...)
}

// controlFragment is a ControlFragment.
func controlFragment(id, total, off uint32, data []byte) []byte {
	f := make([]byte, 0, 12+len(data))
	f = binary.BigEndian.AppendUint32(f, id)
	f = binary.BigEndian.AppendUint32(f, total)
	f = binary.BigEndian.AppendUint32(f, off)
	return append(f, data...)
}

// splitHello takes a genuine ClientHello datagram apart into its
// sender_index and fragment, so that it can be resent with a cookie.
func splitHello(d []byte) (sender uint32, frag []byte, err error) {
	if len(d) < 10 || d[0] != session.DatagramHandshake || len(d) < 10+int(d[9]) {
		return 0, nil, fmt.Errorf("not a control datagram: % x", d[:min(len(d), 16)])
	}
	return binary.BigEndian.Uint32(d[1:]), d[10+int(d[9]):], nil
}

// Partial-hello memory attack: fragments of 65 KB of ClientHello-shaped
// messages with total_length 65536 that never complete (nothing but the
// cookie probe ever arrives for offset 0). Each message gets partialFrags fragments, one
// fewer than the 64 disjoint ranges at which a reassembler forgets a
// message: the most one message can make a naive listener hold.
const (
	partialTotal   = 1 << 16
	partialDataLen = 65000 // with the headers, within 65507 bytes of UDP payload
	partialFrags   = 63
)

func udpPartialHellos(spec attackSpec) (attackResult, error) {
	deadline := time.Now().Add(spec.Duration)
	flows, err := openFlows(spec.Target, spec.Ports)
	if err != nil {
		return nil, err
	}
	defer closeFlows(flows)
	res := attackResult{}
	res["ports_with_cookie"] = acquireCookies(flows, func(f *udpFlow) []byte {
		// A first fragment (offset 0) of a probe message of its own: a
		// listener challenges only a hello's first fragment.
		return controlDatagram(f.sender, f.currentCookie(), controlFragment(0, partialTotal, 0, []byte{0}))
	}, 3*time.Second)
	data := make([]byte, partialDataLen)
	rand.Read(data)
	type msg struct{ id, off uint32 }
	state := make([]msg, len(flows))
	for i := range state {
		state[i] = msg{id: 1}
	}
	res["datagrams"] = int64(attackPaced(deadline, spec.Rate, func(i int) bool {
		k := i % len(flows)
		m := &state[k]
		m.off++
		if m.off > partialFrags {
			m.id, m.off = m.id+1, 1
		}
		f := flows[k]
		res["bytes"] += f.send(controlDatagram(f.sender, f.currentCookie(), controlFragment(m.id, partialTotal, m.off, data)))
		return true
	}))
	time.Sleep(200 * time.Millisecond) // the last answers
	flowTotals(flows, res)
	return res, nil
}

// udpHelloReplay resends A's genuine ClientHello (every fragment, with
// the port's cookie) spec.Rate times a second, round robin over the
// ports.
func udpHelloReplay(spec attackSpec) (attackResult, error) {
	deadline := time.Now().Add(spec.Duration)
	raw, err := readAttackFile(spec.Hello)
	if err != nil {
		return nil, err
	}
	var sender uint32
	var frags [][]byte
	for _, d := range raw {
		s, f, err := splitHello(d)
		if err != nil {
			return nil, err
		}
		sender, frags = s, append(frags, f)
	}
	flows, err := openFlows(spec.Target, spec.Ports)
	if err != nil {
		return nil, err
	}
	defer closeFlows(flows)
	for _, f := range flows {
		f.sender = sender // the challenges answer the hello's index
	}
	res := attackResult{"hello_datagrams": int64(len(frags))}
	res["ports_with_cookie"] = acquireCookies(flows, func(f *udpFlow) []byte {
		return controlDatagram(sender, f.currentCookie(), frags[0])
	}, 3*time.Second)
	res["hellos"] = int64(attackPaced(deadline, spec.Rate, func(i int) bool {
		f := flows[i%len(flows)]
		ck := f.currentCookie()
		for _, fr := range frags {
			res["bytes"] += f.send(controlDatagram(sender, ck, fr))
			res["datagrams"]++
		}
		return true
	}))
	time.Sleep(500 * time.Millisecond) // the last answers
	flowTotals(flows, res)
	return res, nil
}
