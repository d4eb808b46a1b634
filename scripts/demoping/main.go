// Command demoping sends ICMP echo requests and prints the replies, for
// scripts/demo.sh on machines without ping(8):
//
//	demoping ADDRESS [COUNT]
//
// It exits non-zero unless every request is answered within 2 seconds.
package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: demoping ADDRESS [COUNT]")
		os.Exit(2)
	}
	addr, err := netip.ParseAddr(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "demoping:", err)
		os.Exit(2)
	}
	count := 3
	if len(os.Args) == 3 {
		if count, err = strconv.Atoi(os.Args[2]); err != nil || count < 1 {
			fmt.Fprintln(os.Stderr, "demoping: bad count")
			os.Exit(2)
		}
	}
	if err := ping(addr, count); err != nil {
		fmt.Fprintln(os.Stderr, "demoping:", err)
		os.Exit(1)
	}
}

func ping(addr netip.Addr, count int) error {
	network, laddr, proto := "ip4:icmp", "0.0.0.0", 1
	var req, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if addr.Is6() {
		network, laddr, proto = "ip6:ipv6-icmp", "::", 58
		req, reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	c, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		return err
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		m := icmp.Message{Type: req, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("current demo")}}
		b, err := m.Marshal(nil)
		if err != nil {
			return err
		}
		start := time.Now()
		if _, err := c.WriteTo(b, &net.IPAddr{IP: addr.AsSlice()}); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return fmt.Errorf("no reply from %s (seq %d): %w", addr, seq, err)
			}
			rm, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || rm.Type != reply {
				continue
			}
			if e, ok := rm.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq {
				fmt.Printf("  reply from %s: seq=%d time=%v\n", addr, seq, time.Since(start).Round(time.Microsecond))
				break
			}
		}
		if seq < count {
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}
