//go:build darwin || freebsd

package routing

import (
	"net/netip"
	"testing"

	"golang.org/x/net/route"
)

// TestRouteMsgXNetRoute parses the messages the Link writes with
// golang.org/x/net/route, an independent reading of this system's
// layout. It builds everywhere `make cross` does, and runs only on macOS
// and FreeBSD.
func TestRouteMsgXNetRoute(t *testing.T) {
	m := interfaceRouteMsg(rtmAdd, netip.MustParsePrefix("10.0.0.0/24"), 7)
	m.Seq = 42
	b, err := layout.marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := route.ParseRIB(route.RIBTypeRoute, b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ParseRIB: %d messages, %v", len(msgs), err)
	}
	rm, ok := msgs[0].(*route.RouteMessage)
	if !ok {
		t.Fatalf("%T, want a RouteMessage", msgs[0])
	}
	if rm.Type != rtmAdd || rm.Seq != 42 || rm.Flags != int(m.Flags) {
		t.Errorf("header: type %d seq %d flags %#x", rm.Type, rm.Seq, rm.Flags)
	}
	dst, ok := rm.Addrs[0].(*route.Inet4Addr)
	if !ok || dst.IP != [4]byte{10, 0, 0, 0} {
		t.Errorf("destination %+v", rm.Addrs[0])
	}
	gw, ok := rm.Addrs[1].(*route.LinkAddr)
	if !ok || gw.Index != 7 {
		t.Errorf("gateway %+v", rm.Addrs[1])
	}
	mask, ok := rm.Addrs[2].(*route.Inet4Addr)
	if !ok || mask.IP != [4]byte{255, 255, 255, 0} {
		t.Errorf("netmask %+v", rm.Addrs[2])
	}
}
