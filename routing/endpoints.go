package routing

import (
	"net/netip"
	"slices"
)

// Endpoint routes (macOS, FreeBSD). With the default route split into two
// halves through the tunnel (plan.go), packets to a peer's endpoint would
// go into the tunnel too. Each endpoint of a family that is fully tunneled
// therefore gets a host route via the underlay's default route, which the
// split leaves in place; when that changes (another network, another
// gateway) or an endpoint roams, the routes are replaced. Without any
// default route on the underlay the endpoint is blackholed rather than
// looped through the tunnel, as wg-quick does. Everything here is data;
// link_bsd.go installs it.

// gatewayOf is where the underlay's default route of one family goes:
// a gateway address, or an interface (a point-to-point underlay), or
// nowhere (no default route, or only the tunnel's).
type gatewayOf struct {
	Addr netip.Addr
	Link uint16
}

func (g gatewayOf) valid() bool { return g.Addr.IsValid() || g.Link != 0 }

// endpointRoute is the host route that keeps one endpoint on the underlay.
type endpointRoute struct {
	Dst netip.Addr
	Via gatewayOf
	// Blackhole drops packets to Dst: there is no underlay route.
	Blackhole bool
}

// planEndpointRoutes returns the host routes for endpoints, sorted and
// without duplicates: only for the families with a full tunnel (full4,
// full6), via that family's underlay default route gw4 or gw6.
func planEndpointRoutes(endpoints []netip.Addr, full4, full6 bool, gw4, gw6 gatewayOf) []endpointRoute {
	var out []endpointRoute
	for _, e := range endpoints {
		e = e.Unmap().WithZone("")
		if !e.IsValid() || e.IsUnspecified() || e.IsLoopback() {
			continue
		}
		full, gw := full4, gw4
		if e.Is6() {
			full, gw = full6, gw6
		}
		if !full {
			continue
		}
		out = append(out, endpointRoute{Dst: e, Via: gw, Blackhole: !gw.valid()})
	}
	slices.SortFunc(out, func(a, b endpointRoute) int { return a.Dst.Compare(b.Dst) })
	return slices.CompactFunc(out, func(a, b endpointRoute) bool { return a.Dst == b.Dst })
}

// diffEndpointRoutes returns the routes of have that want no longer has,
// to delete first, and those of want that are new, to add then. A route
// whose gateway changed is in both.
func diffEndpointRoutes(have, want []endpointRoute) (del, add []endpointRoute) {
	for _, r := range have {
		if !slices.Contains(want, r) {
			del = append(del, r)
		}
	}
	for _, r := range want {
		if !slices.Contains(have, r) {
			add = append(add, r)
		}
	}
	return del, add
}

// The messages the BSD Link writes, as data.

// ownRouteFlags are on every route a Link adds.
const ownRouteFlags = rtfUp | rtfStatic | rtfProto1

// interfaceRouteMsg is an RTM_ADD or RTM_DELETE (typ) of the route to p
// via interface ifindex, as `route add -net p -interface tun0` makes it.
func interfaceRouteMsg(typ uint8, p netip.Prefix, ifindex uint16) *routeMsg {
	m := &routeMsg{Type: typ, Flags: ownRouteFlags, Dst: p.Addr(), GatewayLink: ifindex, Mask: p.Bits()}
	if p.IsSingleIP() {
		m.Flags |= rtfHost
		m.Mask = -1
	}
	return m
}

// endpointRouteMsg is an RTM_ADD or RTM_DELETE (typ) of r.
func endpointRouteMsg(typ uint8, r endpointRoute) *routeMsg {
	m := &routeMsg{Type: typ, Flags: ownRouteFlags | rtfHost, Dst: r.Dst, Mask: -1}
	switch {
	case r.Blackhole:
		// A blackhole route still needs a gateway; loopback, as route(8)
		// users write it.
		m.Flags |= rtfBlackhole | rtfGateway
		m.Gateway = netip.IPv6Loopback()
		if r.Dst.Is4() {
			m.Gateway = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	case r.Via.Addr.IsValid():
		m.Flags |= rtfGateway
		m.Gateway = r.Via.Addr
	default:
		m.GatewayLink = r.Via.Link
	}
	return m
}

// getRouteMsg asks for the route the kernel would use to reach dst
// (bits < 0) or for the route to exactly the prefix dst/bits.
func getRouteMsg(dst netip.Addr, bits int) *routeMsg {
	return &routeMsg{Type: rtmGet, Flags: rtfUp, Dst: dst, Mask: bits}
}

// gatewayFrom reads an RTM_GET answer about a default route: the
// gateway, unless the route goes through the tunnel itself (then the
// tunnel is all there is, and there is no underlay gateway).
func gatewayFrom(m *routeMsg, tunIndex uint16) gatewayOf {
	if m == nil || m.Errno != 0 || m.Index == tunIndex && tunIndex != 0 {
		return gatewayOf{}
	}
	if m.Flags&rtfGateway != 0 && m.Gateway.IsValid() {
		return gatewayOf{Addr: m.Gateway}
	}
	if m.GatewayLink != 0 && m.GatewayLink != tunIndex {
		return gatewayOf{Link: m.GatewayLink}
	}
	if m.Index != 0 && m.Index != tunIndex {
		return gatewayOf{Link: m.Index}
	}
	return gatewayOf{}
}
