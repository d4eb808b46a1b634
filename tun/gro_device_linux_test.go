package tun_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/current-vpn/current/routing"
	"github.com/current-vpn/current/tun"
)

// tcpFrom parses an IP/TCP packet: ports, sequence and ACK numbers, flags.
func tcpFrom(p []byte) (src, dst uint16, seq, ack uint32, flags byte, ok bool) {
	iph := 0
	switch {
	case len(p) >= 40 && p[0]>>4 == 4 && p[9] == 6:
		iph = int(p[0]&0xf) * 4
	case len(p) >= 60 && p[0]>>4 == 6 && p[6] == 6:
		iph = 40
	default:
		return 0, 0, 0, 0, 0, false
	}
	t := p[iph:]
	return binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:]), binary.BigEndian.Uint32(t[4:]), binary.BigEndian.Uint32(t[8:]), t[13], true
}

// TestDeviceTCPCoalescing plays the far end of a TCP connection to a
// listener behind the device: after the handshake, 40 segments go in one
// Write, which coalesces them (with offloads) into super-packets whose
// checksum the kernel completes. The listener must read every byte, and
// the kernel must acknowledge them all, so none was dropped. (A local
// listener does not check what CHECKSUM_PARTIAL leaves in the checksum
// field, which matters once the kernel forwards the packet: TestGROPlan
// checks it.)
func TestDeviceTCPCoalescing(t *testing.T) {
	f := newFixture(t)
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			f.t = t
			var ln net.Listener
			if err := routing.InNamespace(f.ns, func() error {
				var err error
				ln, err = net.Listen("tcp", netip.AddrPortFrom(fam.local, 0).String())
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			me := ln.Addr().(*net.TCPAddr).AddrPort()
			me = netip.AddrPortFrom(me.Addr().Unmap(), me.Port())
			peer := netip.AddrPortFrom(fam.remote, 40000)
			const ack = 0x10
			write := func(pkts ...[]byte) {
				t.Helper()
				if n, err := f.dev.Write(pkts, tun.TCPHeadroom); err != nil || n != len(pkts) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			fromListener := func(want func(seq, ack uint32, flags byte) bool) func([]byte) bool {
				return func(p []byte) bool {
					s, d, sq, ak, fl, ok := tcpFrom(p)
					return ok && s == me.Port() && d == peer.Port() && want(sq, ak, fl)
				}
			}

			iss := uint32(7_000_000)
			write(tun.TCPSegment(peer, me, iss, 0, 0x02, nil)) // SYN
			var theirs uint32
			for _, p := range f.next(fromListener(func(_, _ uint32, fl byte) bool { return fl == 0x12 })) {
				if _, _, sq, _, fl, ok := tcpFrom(p); ok && fl == 0x12 {
					theirs = sq + 1
				}
			}
			write(tun.TCPSegment(peer, me, iss+1, theirs, ack, nil))
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- c
			}()

			const segs, size = 40, 1000
			var want []byte
			var pkts [][]byte
			seq := iss + 1
			for i := range segs {
				pl := bytes.Repeat([]byte{byte(i)}, size)
				want = append(want, pl...)
				pkts = append(pkts, tun.TCPSegment(peer, me, seq, theirs, ack, pl))
				seq += size
			}
			write(pkts...)

			var c net.Conn
			select {
			case c = <-accepted:
			case <-time.After(5 * time.Second):
			}
			if c == nil {
				t.Fatal("no connection accepted")
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("listener read: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("listener read other bytes than were written")
			}
			f.next(fromListener(func(_, a uint32, fl byte) bool { return fl&ack != 0 && a == seq }))
			t.Logf("offloads %+v: %d segments of %d bytes arrived and were acknowledged", f.dev.Offloads(), segs, size)
		})
	}
	f.t = t
}
