package tunnel

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestE2EFullTunnel runs a full tunnel: A's peer B has the allowed IPs
// 0.0.0.0/0 and ::/0, while A's own default routes go over the veth to B,
// which also carries the tunnel. Addresses on B's loopback stand for the
// internet and for B's public address, beyond A's gateway; B has no
// endpoint for A, so A's packets must reach it. Pings to them must travel through the tunnel (the kernel says
// so, and a loop of the tunnel's own packets would make them fail), over
// UDP and over TCP; after a clean stop no rule or route of the full
// tunnel is left in A.
func TestE2EFullTunnel(t *testing.T) {
	for _, c := range []struct {
		transport string
		fwmark    int // 0: the default
	}{{"udp", 0}, {"tcp", 0}, {"udp", 0xca00}} {
		transport, mark := c.transport, c.fwmark
		if mark == 0 {
			mark = 51900
		}
		t.Run(fmt.Sprintf("%s mark %#x", transport, mark), func(t *testing.T) {
			dir, bin, nsA, nsB, vA, _ := e2eSetup(t)
			mustRun(t, "ip", "-n", nsA, "route", "add", "default", "via", "192.0.2.2")
			mustRun(t, "ip", "-n", nsA, "-6", "route", "add", "default", "via", "2001:db8::2")
			mustRun(t, "ip", "-n", nsB, "addr", "add", "198.51.100.1/32", "dev", "lo")
			// B's public address, beyond A's default gateway as a real
			// hub would be: only the mark keeps A's packets to it out
			// of the tunnel.
			mustRun(t, "ip", "-n", nsB, "addr", "add", "203.0.113.2/32", "dev", "lo")
			mustRun(t, "ip", "-n", nsB, "addr", "add", "2001:db8:100::1/128", "dev", "lo")

			ka, kb := writeKey(t, dir, "a"), writeKey(t, dir, "b")
			cfgA := writeConfigT(t, dir, "a", "10.99.0.1/24", "fd99::1/64", kb, "203.0.113.2:51900", "0.0.0.0/0", "::/0", transport)
			cfgB := writeConfigT(t, dir, "b", "10.99.0.2/24", "fd99::2/64", ka, "", "10.99.0.1/32", "fd99::1/128", transport)
			if c.fwmark != 0 {
				text, err := os.ReadFile(cfgA)
				if err != nil {
					t.Fatal(err)
				}
				text = bytes.Replace(text, []byte("listen_port = 51900\n"), fmt.Appendf(nil, "listen_port = 51900\nfwmark = %d\n", c.fwmark), 1)
				if err := os.WriteFile(cfgA, text, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			a := startDaemon(t, dir, nsA, bin, cfgA)
			b := startDaemon(t, dir, nsB, bin, cfgB)
			a.waitNotify(t, "READY=1")
			b.waitNotify(t, "READY=1")

			m := strconv.Itoa(mark)
			for _, c := range []struct{ dst, mark, dev string }{
				{"198.51.100.1", "", "cur0"},
				{"2001:db8:100::1", "", "cur0"},
				{"198.51.100.1", m, vA},
				{"203.0.113.2", m, vA},
				{"192.0.2.2", "", vA}, // the underlay's own subnet stays on it
			} {
				args := []string{"-n", nsA, "route", "get", c.dst}
				if c.mark != "" {
					args = append(args, "mark", c.mark)
				}
				out, err := exec.Command("ip", args...).CombinedOutput()
				if err != nil || !strings.Contains(string(out), " dev "+c.dev+" ") {
					t.Errorf("ip %s: %s (%v), want dev %s", strings.Join(args, " "), out, err, c.dev)
				}
			}
			if out, err := exec.Command("ip", "-n", nsA, "rule", "show").CombinedOutput(); err == nil {
				t.Logf("A's IPv4 rules:\n%s", out)
			}
			e2ePing(t, nsA, "198.51.100.1")
			e2ePing(t, nsA, "2001:db8:100::1")
			e2ePing(t, nsA, "10.99.0.2")

			stopDaemon(t, a)
			for _, fam := range []string{"-4", "-6"} {
				out, err := exec.Command("ip", "-n", nsA, fam, "rule", "show").CombinedOutput()
				if err != nil || strings.Contains(string(out), "lookup "+m) || strings.Contains(string(out), "suppress_prefixlength") {
					t.Errorf("ip %s rules after stop (%v):\n%s", fam, err, out)
				}
			}
			out, _ := exec.Command("ip", "-n", nsA, "route", "show", "table", m).CombinedOutput()
			if strings.TrimSpace(string(out)) != "" {
				t.Errorf("routes left in table %s:\n%s", m, out)
			}
			if out, err := exec.Command("ip", "-n", nsA, "route", "get", "198.51.100.1").CombinedOutput(); err != nil || !strings.Contains(string(out), " dev "+vA+" ") {
				t.Errorf("after stop, 198.51.100.1 goes %s (%v), want the underlay", out, err)
			}
		})
	}
}
