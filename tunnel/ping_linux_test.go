package tunnel

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The end-to-end test pings from inside a network namespace. Rather than
// depend on ping(8), it runs this test binary there (ip netns exec) with
// $CURRENT_TEST_PING set, and TestPingHelper does the echo exchange.

const pingEnv = "CURRENT_TEST_PING"

// nsPing sends count echo requests to addr from inside ns and fails unless
// every one is answered.
func nsPing(ns, addr string, count int) (string, error) {
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestPingHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", pingEnv, addr, count))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPingHelper(t *testing.T) {
	arg := os.Getenv(pingEnv)
	if arg == "" {
		t.Skip("helper process for the end-to-end test")
	}
	var addrS string
	var count int
	if _, err := fmt.Sscanf(arg, "%s", &addrS); err != nil {
		t.Fatal(err)
	}
	for i := len(arg) - 1; i >= 0; i-- {
		if arg[i] == ',' {
			addrS = arg[:i]
			fmt.Sscanf(arg[i+1:], "%d", &count)
			break
		}
	}
	addr := netip.MustParseAddr(addrS)
	network, laddr, proto := "ip4:icmp", "0.0.0.0", 1
	var req, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if addr.Is6() {
		network, laddr, proto = "ip6:ipv6-icmp", "::", 58
		req, reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	c, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		m := icmp.Message{Type: req, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("current e2e ping")}}
		b, err := m.Marshal(nil) // the kernel fills in the ICMPv6 checksum
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := c.WriteTo(b, &net.IPAddr{IP: addr.AsSlice()}); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatalf("seq %d: no reply from %s: %v", seq, addr, err)
			}
			rm, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || rm.Type != reply {
				continue
			}
			if e, ok := rm.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq {
				fmt.Printf("reply from %s: seq=%d time=%v\n", addr, seq, time.Since(start).Round(time.Microsecond))
				break
			}
		}
	}
}
