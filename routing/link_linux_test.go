package routing_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/current-vpn/current/routing"
	"github.com/current-vpn/current/routing/nstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Every address below is from the documentation ranges and lives only in
// a namespace the test creates.

type testNS struct {
	t  *testing.T
	ns netns.NsHandle
	h  *netlink.Handle // for looking and for making "someone else's" state
	// table is the full tunnel's routing table, listed by routes.
	table int
}

// newVeth makes a namespace holding a veth pair ct0/ct1, both up. (A dummy
// interface would do, but not every kernel has the module; veth is common.)
func newVeth(t *testing.T) *testNS {
	t.Helper()
	ns := nstest.New(t)
	h := nstest.Handle(t, ns)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ct0"}, PeerName: "ct1"}
	if err := h.LinkAdd(veth); err != nil {
		t.Skipf("needs veth interfaces: %v", err)
	}
	for _, name := range []string{"ct0", "ct1"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return &testNS{t: t, ns: ns, h: h}
}

func (n *testNS) link(name string) netlink.Link {
	n.t.Helper()
	l, err := n.h.LinkByName(name)
	if err != nil {
		n.t.Fatal(err)
	}
	return l
}

func (n *testNS) open(name string) *routing.Link {
	n.t.Helper()
	l, err := routing.OpenAt(n.ns, name)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { l.Close() })
	return l
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// addresses returns the addresses on dev, global scope only (IPv6
// link-local addresses come and go with the kernel's mood).
func (n *testNS) addresses(dev string) map[netip.Prefix]bool {
	n.t.Helper()
	addrs, err := n.h.AddrList(n.link(dev), netlink.FAMILY_ALL)
	if err != nil {
		n.t.Fatal(err)
	}
	m := map[netip.Prefix]bool{}
	for _, a := range addrs {
		if a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		m[netip.PrefixFrom(ip.Unmap(), ones)] = true
	}
	return m
}

type routeKey struct {
	dst   netip.Prefix
	dev   string
	proto netlink.RouteProtocol
}

func (n *testNS) routes() map[routeKey]bool {
	n.t.Helper()
	rs, err := n.h.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		n.t.Fatal(err)
	}
	// A full tunnel's default routes are in a table of their own.
	table := n.table
	if table == 0 {
		table = routing.FullTunnelMark
	}
	full, err := n.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		n.t.Fatal(err)
	}
	rs = append(rs, full...)
	m := map[routeKey]bool{}
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		if ip.IsLinkLocalUnicast() {
			continue // the kernel adds fe80::/64 whenever it gets round to it
		}
		l, err := n.h.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		m[routeKey{netip.PrefixFrom(ip.Unmap(), ones), l.Attrs().Name, r.Protocol}] = true
	}
	return m
}

func (n *testNS) hasRoute(dst, dev string) (netlink.RouteProtocol, bool) {
	n.t.Helper()
	for k := range n.routes() {
		if k.dst == netip.MustParsePrefix(dst) && k.dev == dev {
			return k.proto, true
		}
	}
	return 0, false
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestLinkInstallAndCleanup(t *testing.T) {
	n := newVeth(t)
	// Someone else's configuration on the same interface, which Cleanup
	// must leave alone.
	if err := n.h.AddrAdd(n.link("ct0"), &netlink.Addr{IPNet: ipnet(mustPrefix("192.0.2.99/32"))}); err != nil {
		t.Fatal(err)
	}
	if err := n.h.RouteAdd(&netlink.Route{LinkIndex: n.link("ct0").Attrs().Index, Dst: ipnet(mustPrefix("203.0.113.0/24")), Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	before := n.routes()

	l := n.open("ct0")
	if l.Name() != "ct0" || l.Index() != n.link("ct0").Attrs().Index {
		t.Errorf("Name, Index = %s, %d", l.Name(), l.Index())
	}
	if err := l.SetMTU(1380); err != nil {
		t.Fatal(err)
	}
	if mtu, err := l.MTU(); err != nil || mtu != 1380 {
		t.Errorf("MTU() = %d, %v; want 1380", mtu, err)
	}
	if err := l.Up(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"192.0.2.1/24", "2001:db8::1/64"} {
		if err := l.AddAddress(mustPrefix(p)); err != nil {
			t.Fatal(err)
		}
		// Again: already there with the same parameters is not an error.
		if err := l.AddAddress(mustPrefix(p)); err != nil {
			t.Errorf("second AddAddress(%s) = %v", p, err)
		}
	}
	for _, p := range []string{"198.51.100.0/24", "2001:db8:1::/48", "0.0.0.0/0", "::/0"} {
		if err := l.AddRoute(mustPrefix(p)); err != nil {
			t.Fatal(err)
		}
		if err := l.AddRoute(mustPrefix(p)); err != nil {
			t.Errorf("second AddRoute(%s) = %v", p, err)
		}
	}
	// Host bits are cleared, as in the routing table.
	if err := l.AddRoute(mustPrefix("198.51.100.77/24")); err != nil {
		t.Errorf("AddRoute with host bits = %v", err)
	}

	addrs := n.addresses("ct0")
	for _, p := range []string{"192.0.2.1/24", "2001:db8::1/64", "192.0.2.99/32"} {
		if !addrs[mustPrefix(p)] {
			t.Errorf("address %s missing: %v", p, addrs)
		}
	}
	for _, dst := range []string{"198.51.100.0/24", "2001:db8:1::/48", "0.0.0.0/0", "::/0"} {
		proto, ok := n.hasRoute(dst, "ct0")
		if !ok || proto != routing.RouteProtocol {
			t.Errorf("route %s dev ct0: present %v proto %d", dst, ok, proto)
		}
	}

	if err := l.Cleanup(); err != nil {
		t.Fatal(err)
	}
	addrs = n.addresses("ct0")
	if len(addrs) != 1 || !addrs[mustPrefix("192.0.2.99/32")] {
		t.Errorf("addresses after Cleanup = %v, want only 192.0.2.99/32", addrs)
	}
	after := n.routes()
	for k := range after {
		if !before[k] {
			t.Errorf("route left after Cleanup: %+v", k)
		}
	}
	for k := range before {
		if !after[k] {
			t.Errorf("route removed by Cleanup that it did not add: %+v", k)
		}
	}
	// The Link stays usable, and a second Cleanup has nothing to do.
	if err := l.Cleanup(); err != nil {
		t.Errorf("second Cleanup = %v", err)
	}
	if mtu, _ := l.MTU(); mtu != 1380 {
		t.Errorf("Cleanup changed the MTU to %d", mtu)
	}
}

func TestLinkDoesNotOwnWhatExisted(t *testing.T) {
	n := newVeth(t)
	// An address added by someone else brings the kernel's route for its
	// prefix. Asking for the same address and route is satisfied by them
	// and must not make Cleanup take them away.
	if err := n.h.AddrAdd(n.link("ct0"), &netlink.Addr{IPNet: ipnet(mustPrefix("10.9.0.1/24"))}); err != nil {
		t.Fatal(err)
	}
	l := n.open("ct0")
	if err := l.AddAddress(mustPrefix("10.9.0.1/24")); err != nil {
		t.Fatalf("AddAddress of an existing address = %v", err)
	}
	if err := l.AddRoute(mustPrefix("10.9.0.0/24")); err != nil {
		t.Fatalf("AddRoute over the kernel's prefix route = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !n.addresses("ct0")[mustPrefix("10.9.0.1/24")] {
		t.Error("Close removed an address it did not add")
	}
	if proto, ok := n.hasRoute("10.9.0.0/24", "ct0"); !ok || proto != unix.RTPROT_KERNEL {
		t.Errorf("kernel prefix route after Close: present %v proto %d", ok, proto)
	}
}

func TestLinkConflicts(t *testing.T) {
	n := newVeth(t)
	if err := n.h.RouteAdd(&netlink.Route{LinkIndex: n.link("ct1").Attrs().Index, Dst: ipnet(mustPrefix("198.51.100.0/24")), Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	if err := n.h.AddrAdd(n.link("ct0"), &netlink.Addr{IPNet: ipnet(mustPrefix("2001:db8::1/48"))}); err != nil {
		t.Fatal(err)
	}
	l := n.open("ct0")

	err := l.AddRoute(mustPrefix("198.51.100.0/24"))
	if !errors.Is(err, unix.EEXIST) || !strings.HasPrefix(err.Error(), "add route 198.51.100.0/24 dev ct0: file exists") || !strings.Contains(err.Error(), "dev ct1") {
		t.Errorf("AddRoute over a route via another device = %v", err)
	}
	err = l.AddAddress(mustPrefix("2001:db8::1/64"))
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "present as 2001:db8::1/48") {
		t.Errorf("AddAddress with another prefix length = %v", err)
	}

	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"mapped address", l.AddAddress(mustPrefix("::ffff:10.0.0.1/120")), "add address ::ffff:10.0.0.1/120 dev ct0: IPv4-mapped"},
		{"mapped route", l.AddRoute(mustPrefix("::ffff:10.0.0.0/104")), "add route ::ffff:10.0.0.0/104 dev ct0: IPv4-mapped"},
		{"invalid", l.AddRoute(netip.Prefix{}), "add route invalid Prefix dev ct0: invalid prefix"},
		{"mtu", l.SetMTU(0), "set mtu 0 dev ct0: invalid MTU"},
		{"huge mtu", l.SetMTU(1 << 20), "set mtu 1048576 dev ct0: "},
	} {
		if c.err == nil || !strings.HasPrefix(c.err.Error(), c.want) {
			t.Errorf("%s: err = %v, want prefix %q", c.name, c.err, c.want)
		}
	}

	// IPv4 routes need the interface up; the error must say which route
	// and why.
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	err = l.AddRoute(mustPrefix("203.0.113.0/24"))
	if !errors.Is(err, unix.ENETDOWN) || !strings.HasPrefix(err.Error(), "add route 203.0.113.0/24 dev ct0: network is down") {
		t.Errorf("AddRoute on a down interface = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestLinkDelete(t *testing.T) {
	n := newVeth(t)
	l := n.open("ct0")
	if err := l.AddAddress(mustPrefix("192.0.2.1/24")); err != nil {
		t.Fatal(err)
	}
	// Someone else's route via our interface: DelRoute removes it (it was
	// asked to), but not the kernel's prefix route.
	if err := n.h.RouteAdd(&netlink.Route{LinkIndex: l.Index(), Dst: ipnet(mustPrefix("198.51.100.0/24")), Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_BOOT}); err != nil {
		t.Fatal(err)
	}
	if err := l.DelRoute(mustPrefix("198.51.100.0/24")); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.hasRoute("198.51.100.0/24", "ct0"); ok {
		t.Error("DelRoute left the route")
	}
	if err := l.DelRoute(mustPrefix("192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.hasRoute("192.0.2.0/24", "ct0"); !ok {
		t.Error("DelRoute removed the kernel's prefix route")
	}
	// Absent things are already deleted.
	if err := l.DelRoute(mustPrefix("198.51.100.0/24")); err != nil {
		t.Errorf("DelRoute of an absent route = %v", err)
	}
	if err := l.DelAddress(mustPrefix("192.0.2.77/24")); err != nil {
		t.Errorf("DelAddress of an absent address = %v", err)
	}
	// What we added and then deleted ourselves is no longer ours.
	if err := l.AddRoute(mustPrefix("2001:db8:5::/48")); err != nil {
		t.Fatal(err)
	}
	if err := l.DelRoute(mustPrefix("2001:db8:5::/48")); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.hasRoute("2001:db8:5::/48", "ct0"); ok {
		t.Error("DelRoute left our own route")
	}
	// Ours, replaced by someone else's since: DelRoute still removes it.
	if err := l.AddRoute(mustPrefix("2001:db8:6::/48")); err != nil {
		t.Fatal(err)
	}
	if err := n.h.RouteReplace(&netlink.Route{LinkIndex: l.Index(), Dst: ipnet(mustPrefix("2001:db8:6::/48")), Protocol: unix.RTPROT_BOOT}); err != nil {
		t.Fatal(err)
	}
	if err := l.DelRoute(mustPrefix("2001:db8:6::/48")); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.hasRoute("2001:db8:6::/48", "ct0"); ok {
		t.Error("DelRoute left the route that replaced ours")
	}
	if err := l.DelAddress(mustPrefix("192.0.2.1/24")); err != nil {
		t.Fatal(err)
	}
	if len(n.addresses("ct0")) != 0 {
		t.Errorf("addresses left: %v", n.addresses("ct0"))
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestLinkCleanupAfterInterfaceGone(t *testing.T) {
	n := newVeth(t)
	l := n.open("ct0")
	if err := l.AddAddress(mustPrefix("192.0.2.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := l.AddRoute(mustPrefix("198.51.100.0/24")); err != nil {
		t.Fatal(err)
	}
	// The daemon may close its TUN (destroying the interface and all on
	// it) before it cleans up; that is not a failure.
	if err := n.h.LinkDel(n.link("ct0")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after the interface went = %v", err)
	}
	if err := l.Up(); !errors.Is(err, routing.ErrClosed) {
		t.Errorf("Up after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestOpenMissing(t *testing.T) {
	ns := nstest.New(t)
	_, err := routing.OpenAt(ns, "nope0")
	if err == nil || !strings.HasPrefix(err.Error(), "open link nope0: ") {
		t.Errorf("OpenAt(nope0) = %v", err)
	}
}

func TestRouteMTU(t *testing.T) {
	n := newVeth(t)
	l := n.open("ct0")
	if err := l.SetMTU(1400); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"192.0.2.1/24", "2001:db8::1/64"} {
		if err := l.AddAddress(mustPrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AddRoute(mustPrefix("198.51.100.0/24")); err != nil {
		t.Fatal(err)
	}
	idx := l.Index()
	// A route that carries its own, smaller MTU, and one whose MTU the
	// interface cannot carry.
	for _, r := range []struct {
		dst string
		mtu int
	}{{"203.0.113.0/25", 1300}, {"203.0.113.128/25", 9000}, {"2001:db8:7::/48", 1280}} {
		route := &netlink.Route{LinkIndex: idx, Dst: ipnet(mustPrefix(r.dst)), MTU: r.mtu}
		if mustPrefix(r.dst).Addr().Is4() {
			route.Scope = netlink.SCOPE_LINK
		}
		if err := n.h.RouteAdd(route); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		dst  string
		want int
	}{
		{"192.0.2.9", 1400},
		{"198.51.100.7", 1400},
		{"::ffff:198.51.100.7", 1400},
		{"203.0.113.5", 1300},
		{"203.0.113.200", 1400},
		{"2001:db8::9", 1400},
		{"2001:db8:7::1", 1280},
		{"192.0.2.1", 65536}, // our own address: via lo
	} {
		got, err := routing.RouteMTUAt(n.ns, netip.MustParseAddr(c.dst))
		if err != nil || got != c.want {
			t.Errorf("RouteMTUAt(%s) = %d, %v; want %d", c.dst, got, err, c.want)
		}
	}
	// A zone picks the interface: fe80::/64 is on both ends of the pair.
	// (Added by hand: the kernel's own link-local addresses arrive late.)
	if err := n.h.LinkSetMTU(n.link("ct1"), 1300); err != nil {
		t.Fatal(err)
	}
	for dev, a := range map[string]string{"ct0": "fe80::a/64", "ct1": "fe80::b/64"} {
		if err := n.h.AddrAdd(n.link(dev), &netlink.Addr{IPNet: ipnet(mustPrefix(a))}); err != nil {
			t.Fatal(err)
		}
	}
	for dev, want := range map[string]int{"ct0": 1400, "ct1": 1300} {
		got, err := routing.RouteMTUAt(n.ns, netip.MustParseAddr("fe80::99%"+dev))
		if err != nil || got != want {
			t.Errorf("RouteMTUAt(fe80::99%%%s) = %d, %v; want %d", dev, got, err, want)
		}
	}
	_, err := routing.RouteMTUAt(n.ns, netip.MustParseAddr("100.64.0.1"))
	if err == nil || !strings.HasPrefix(err.Error(), "route mtu 100.64.0.1: ") {
		t.Errorf("RouteMTUAt with no route = %v", err)
	}
	if _, err := routing.RouteMTUAt(n.ns, netip.Addr{}); err == nil {
		t.Error("RouteMTUAt(invalid) succeeded")
	}
}
