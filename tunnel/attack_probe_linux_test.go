package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/current-vpn/current/session/record"
)

// The adversarial test's observers, run by TestAttackHelper: a pinger that
// counts lost echoes through the tunnel during an attack, and a capture of
// genuine tunnel records for the replay attack.

// attackPort is the daemons' listen port (writeConfigT).
const attackPort = 51900

// attackPingTimeout: an echo not answered within this long is lost, as
// ping(8) counts one not answered before it exits.
const attackPingTimeout = time.Second

// attackPing sends spec.Rate ICMP echoes a second to spec.Target for
// spec.Duration and counts the answers.
func attackPing(spec attackSpec) (attackResult, error) {
	dst, err := netip.ParseAddr(spec.Target)
	if err != nil || !dst.Is4() || spec.Rate <= 0 {
		return nil, fmt.Errorf("ping: target %q rate %d", spec.Target, spec.Rate)
	}
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	interval := time.Second / time.Duration(spec.Rate)
	n := int(spec.Duration / interval)
	id := os.Getpid() & 0xffff
	var mu sync.Mutex
	sent := make([]time.Time, n)
	rtt := make([]time.Duration, n) // 0: no answer yet
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 1500)
		for {
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			at := time.Now()
			m, err := icmp.ParseMessage(1, buf[:k])
			if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			e, ok := m.Body.(*icmp.Echo)
			if !ok || e.ID != id || e.Seq >= n {
				continue
			}
			mu.Lock()
			if rtt[e.Seq] == 0 && !sent[e.Seq].IsZero() {
				rtt[e.Seq] = max(at.Sub(sent[e.Seq]), time.Nanosecond)
			}
			mu.Unlock()
		}
	}()
	start := time.Now()
	for seq := range n {
		time.Sleep(time.Until(start.Add(time.Duration(seq) * interval)))
		m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("current attack ping")}}
		b, err := m.Marshal(nil)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		sent[seq] = time.Now()
		mu.Unlock()
		c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}) // a failed send is a lost ping
	}
	time.Sleep(attackPingTimeout)
	c.Close()
	<-readDone
	res := attackResult{"sent": int64(n)}
	var worst time.Duration
	for _, d := range rtt {
		switch {
		case d == 0:
			res["lost"]++
		case d > attackPingTimeout:
			res["lost"]++
			res["late"]++
		default:
			res["answered"]++
		}
		worst = max(worst, d)
	}
	res["max_rtt_ms"] = worst.Milliseconds()
	return res, nil
}

// attackCapture copies spec.Count protected records that spec.Src sends
// to the listen port, as they arrive on spec.Iface, into spec.Out (hex
// lines). It prints the ready line once the packet socket is bound.
func attackCapture(spec attackSpec) (attackResult, error) {
	src, err := netip.ParseAddr(spec.Src)
	if err != nil || !src.Is4() {
		return nil, fmt.Errorf("capture: source %q", spec.Src)
	}
	ifi, err := net.InterfaceByName(spec.Iface)
	if err != nil {
		return nil, err
	}
	proto := attackHtons(syscall.ETH_P_IP)
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return nil, err
	}
	tv := syscall.Timeval{Usec: 200_000}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	fmt.Println(attackReadyLine)
	var recs [][]byte
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(spec.Duration)
	for len(recs) < spec.Count && time.Now().Before(deadline) {
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ll, ok := from.(*syscall.SockaddrLinklayer); !ok || ll.Pkttype != syscall.PACKET_HOST {
			continue // our own transmissions
		}
		if rec := recordFromIPv4(buf[:n], src); rec != nil {
			recs = append(recs, slices.Clone(rec))
		}
	}
	if len(recs) < spec.Count {
		return nil, fmt.Errorf("capture: %d records of %d in %s", len(recs), spec.Count, spec.Duration)
	}
	return attackResult{"records": int64(len(recs))}, writeAttackFile(spec.Out, recs)
}

// recordFromIPv4 is the protected record in an unfragmented IPv4/UDP
// packet from src to the listen port, or nil.
func recordFromIPv4(p []byte, src netip.Addr) []byte {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != syscall.IPPROTO_UDP {
		return nil
	}
	ihl := int(p[0]&0x0f) * 4
	if binary.BigEndian.Uint16(p[6:])&0x3fff != 0 || len(p) < ihl+8 || netip.AddrFrom4([4]byte(p[12:16])) != src {
		return nil
	}
	u := p[ihl:]
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if binary.BigEndian.Uint16(u[2:]) != attackPort || ulen < 8 || ulen > len(u) {
		return nil
	}
	d := u[8:ulen]
	if len(d) < record.DatagramOverhead || d[0] != record.DatagramTypeRecord {
		return nil
	}
	return d
}

func attackHtons(v uint16) uint16 { return v<<8 | v>>8 }
