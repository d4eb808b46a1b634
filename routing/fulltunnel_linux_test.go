package routing_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/current-vpn/current/routing"
)

// TestFullTunnel installs default routes through ct0 while ct1 is the
// underlay with the main table's default route, and asks the kernel where
// packets go: unmarked ones into the tunnel, the daemon's marked ones and
// the LAN's to the underlay, and after Cleanup everything as before.
func TestFullTunnel(t *testing.T) {
	for _, mark := range []uint32{0, 0xca00} {
		t.Run(fmt.Sprintf("mark %#x", mark), func(t *testing.T) { testFullTunnel(t, mark) })
	}
}

func testFullTunnel(t *testing.T, setMark uint32) {
	mark := setMark
	if mark == 0 {
		mark = routing.FullTunnelMark
	}
	n := newVeth(t)
	n.table = int(mark)
	underlay := n.link("ct1")
	if err := n.h.AddrAdd(underlay, &netlink.Addr{IPNet: ipnet(mustPrefix("192.0.2.1/24"))}); err != nil {
		t.Fatal(err)
	}
	gw := net.ParseIP("192.0.2.254")
	if err := n.h.RouteAdd(&netlink.Route{LinkIndex: underlay.Attrs().Index, Gw: gw}); err != nil {
		t.Fatal(err)
	}
	l := n.open("ct0")
	l.SetFullTunnelMark(setMark)
	if err := l.AddAddress(mustPrefix("10.9.0.1/24")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"0.0.0.0/0", "::/0", "0.0.0.0/0"} { // the second v4 add is a no-op
		if err := l.AddRoute(mustPrefix(p)); err != nil {
			t.Fatalf("AddRoute %s: %v", p, err)
		}
	}

	internet := net.ParseIP("198.51.100.7")
	n.wantVia(internet, 0, "ct0", "unmarked traffic")
	n.wantVia(internet, mark, "ct1", "the daemon's marked traffic")
	n.wantVia(internet, mark+1, "ct0", "traffic with another mark")
	n.wantVia(net.ParseIP("192.0.2.77"), 0, "ct1", "the underlay's LAN")
	n.wantVia(net.ParseIP("2001:db8:77::1"), 0, "ct0", "unmarked IPv6")
	if got := len(n.rules()); got != 4 {
		t.Errorf("%d full-tunnel rules, want 2 per family: %v", got, n.rules())
	}
	main, err := n.h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range main {
		if r.Dst == nil && r.LinkIndex == n.link("ct0").Attrs().Index {
			t.Errorf("the tunnel's default route is in the main table: %v", r)
		}
	}

	if err := l.DelRoute(mustPrefix("::/0")); err != nil {
		t.Fatal(err)
	}
	if got := n.rules(); len(got) != 2 || got[0].Family != netlink.FAMILY_V4 {
		t.Errorf("after deleting ::/0, rules %v, want the IPv4 pair", got)
	}
	if err := l.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := n.rules(); len(got) != 0 {
		t.Errorf("rules left after Cleanup: %v", got)
	}
	n.wantVia(internet, 0, "ct1", "after Cleanup")
}

// rules lists the rules at the full tunnel's priorities, both families.
func (n *testNS) rules() []netlink.Rule {
	n.t.Helper()
	all, err := n.h.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		n.t.Fatal(err)
	}
	var out []netlink.Rule
	for _, r := range all {
		if r.Table == n.table || (r.Table == unix.RT_TABLE_MAIN && r.SuppressPrefixlen == 0) {
			out = append(out, r)
		}
	}
	return out
}

// wantVia asks the kernel for the route to dst of a packet with mark.
func (n *testNS) wantVia(dst net.IP, mark uint32, dev, what string) {
	n.t.Helper()
	routes, err := n.h.RouteGetWithOptions(dst, &netlink.RouteGetOptions{Mark: mark})
	if err != nil {
		n.t.Errorf("%s: route get %s mark %d: %v", what, dst, mark, err)
		return
	}
	want := n.link(dev).Attrs().Index
	if len(routes) == 0 || routes[0].LinkIndex != want {
		n.t.Errorf("%s: %s mark %d goes %v, want dev %s", what, dst, mark, routes, dev)
	}
}
