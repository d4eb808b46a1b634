package routing

import (
	"net/netip"
	"reflect"
	"testing"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func TestPlanEndpointRoutes(t *testing.T) {
	gw4 := gatewayOf{Addr: netip.MustParseAddr("192.168.1.1")}
	gw6 := gatewayOf{Addr: netip.MustParseAddr("fe80::1%4")}
	eps := addrs("203.0.113.9", "::ffff:198.51.100.7", "2001:db8::5", "203.0.113.9", "127.0.0.1", "::", "fe80::9%4")
	for _, tc := range []struct {
		name         string
		full4, full6 bool
		gw4, gw6     gatewayOf
		want         []endpointRoute
	}{
		{"no full tunnel", false, false, gw4, gw6, nil},
		{"v4 only", true, false, gw4, gw6, []endpointRoute{
			{Dst: netip.MustParseAddr("198.51.100.7"), Via: gw4},
			{Dst: netip.MustParseAddr("203.0.113.9"), Via: gw4},
		}},
		{"both", true, true, gw4, gw6, []endpointRoute{
			{Dst: netip.MustParseAddr("198.51.100.7"), Via: gw4},
			{Dst: netip.MustParseAddr("203.0.113.9"), Via: gw4},
			{Dst: netip.MustParseAddr("2001:db8::5"), Via: gw6},
			{Dst: netip.MustParseAddr("fe80::9"), Via: gw6},
		}},
		{"no v6 underlay: blackholed", false, true, gw4, gatewayOf{}, []endpointRoute{
			{Dst: netip.MustParseAddr("2001:db8::5"), Blackhole: true},
			{Dst: netip.MustParseAddr("fe80::9"), Blackhole: true},
		}},
		{"point-to-point underlay", true, false, gatewayOf{Link: 3}, gw6, []endpointRoute{
			{Dst: netip.MustParseAddr("198.51.100.7"), Via: gatewayOf{Link: 3}},
			{Dst: netip.MustParseAddr("203.0.113.9"), Via: gatewayOf{Link: 3}},
		}},
	} {
		got := planEndpointRoutes(eps, tc.full4, tc.full6, tc.gw4, tc.gw6)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// TestDiffEndpointRoutes follows a roaming peer and a new gateway, the
// two events wg-quick's route monitor handles.
func TestDiffEndpointRoutes(t *testing.T) {
	home := gatewayOf{Addr: netip.MustParseAddr("192.168.1.1")}
	cafe := gatewayOf{Addr: netip.MustParseAddr("10.20.0.1")}
	a, b, c := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
	have := []endpointRoute{{Dst: a, Via: home}, {Dst: b, Via: home}}

	// b roamed to c.
	del, add := diffEndpointRoutes(have, []endpointRoute{{Dst: a, Via: home}, {Dst: c, Via: home}})
	if !reflect.DeepEqual(del, []endpointRoute{{Dst: b, Via: home}}) || !reflect.DeepEqual(add, []endpointRoute{{Dst: c, Via: home}}) {
		t.Errorf("roam: del %+v add %+v", del, add)
	}
	// The laptop moved to another network: every route is replaced.
	want := []endpointRoute{{Dst: a, Via: cafe}, {Dst: b, Via: cafe}}
	del, add = diffEndpointRoutes(have, want)
	if !reflect.DeepEqual(del, have) || !reflect.DeepEqual(add, want) {
		t.Errorf("new gateway: del %+v add %+v", del, add)
	}
	// Nothing changed: nothing to do.
	if del, add := diffEndpointRoutes(have, have); del != nil || add != nil {
		t.Errorf("no change: del %+v add %+v", del, add)
	}
}

func TestEndpointRouteMsg(t *testing.T) {
	dst4 := netip.MustParseAddr("203.0.113.9")
	for _, tc := range []struct {
		name string
		r    endpointRoute
		want routeMsg
	}{
		{"via gateway", endpointRoute{Dst: dst4, Via: gatewayOf{Addr: netip.MustParseAddr("192.168.1.1")}},
			routeMsg{Type: rtmAdd, Flags: rtfUp | rtfStatic | rtfProto1 | rtfHost | rtfGateway, Dst: dst4, Gateway: netip.MustParseAddr("192.168.1.1"), Mask: -1}},
		{"via link", endpointRoute{Dst: dst4, Via: gatewayOf{Link: 3}},
			routeMsg{Type: rtmAdd, Flags: rtfUp | rtfStatic | rtfProto1 | rtfHost, Dst: dst4, GatewayLink: 3, Mask: -1}},
		{"blackhole v4", endpointRoute{Dst: dst4, Blackhole: true},
			routeMsg{Type: rtmAdd, Flags: rtfUp | rtfStatic | rtfProto1 | rtfHost | rtfGateway | rtfBlackhole, Dst: dst4, Gateway: netip.MustParseAddr("127.0.0.1"), Mask: -1}},
		{"blackhole v6", endpointRoute{Dst: netip.MustParseAddr("2001:db8::1"), Blackhole: true},
			routeMsg{Type: rtmAdd, Flags: rtfUp | rtfStatic | rtfProto1 | rtfHost | rtfGateway | rtfBlackhole, Dst: netip.MustParseAddr("2001:db8::1"), Gateway: netip.IPv6Loopback(), Mask: -1}},
	} {
		if got := endpointRouteMsg(rtmAdd, tc.r); !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, *got, tc.want)
		}
	}
}

func TestInterfaceRouteMsg(t *testing.T) {
	got := interfaceRouteMsg(rtmAdd, netip.MustParsePrefix("10.0.0.0/24"), 7)
	want := routeMsg{Type: rtmAdd, Flags: rtfUp | rtfStatic | rtfProto1, Dst: netip.MustParseAddr("10.0.0.0"), GatewayLink: 7, Mask: 24}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("net route:\n got %+v\nwant %+v", *got, want)
	}
	got = interfaceRouteMsg(rtmDelete, netip.MustParsePrefix("fd00::1/128"), 7)
	want = routeMsg{Type: rtmDelete, Flags: rtfUp | rtfStatic | rtfProto1 | rtfHost, Dst: netip.MustParseAddr("fd00::1"), GatewayLink: 7, Mask: -1}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("host route:\n got %+v\nwant %+v", *got, want)
	}
}

// TestGatewayFrom reads RTM_GET answers about the default route.
func TestGatewayFrom(t *testing.T) {
	const tun = 9
	gw := netip.MustParseAddr("192.168.1.1")
	for _, tc := range []struct {
		name string
		m    *routeMsg
		want gatewayOf
	}{
		{"gateway", &routeMsg{Index: 4, Flags: rtfUp | rtfGateway, Gateway: gw}, gatewayOf{Addr: gw}},
		{"link gateway", &routeMsg{Index: 4, Flags: rtfUp, GatewayLink: 4}, gatewayOf{Link: 4}},
		{"interface only", &routeMsg{Index: 5, Flags: rtfUp}, gatewayOf{Link: 5}},
		{"through the tunnel", &routeMsg{Index: tun, Flags: rtfUp, GatewayLink: tun}, gatewayOf{}},
		{"error", &routeMsg{Errno: 3}, gatewayOf{}},
		{"none", nil, gatewayOf{}},
	} {
		if got := gatewayFrom(tc.m, tun); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
