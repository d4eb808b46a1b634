package routing

import (
	"errors"
	"net/netip"
)

// The full tunnel as data. What the kernel is given for a default route
// through the tunnel differs by platform, and only Linux can be tested
// end to end here; so the decision is made by pure functions of the
// configuration, which the tests check for every platform on any host,
// and the platform files only carry it out.
//
// Linux: the default route goes into a table of its own, chosen by two
// policy rules per family (fulltunnel_linux.go), and the daemon's marked
// sockets fall through to the main table.
//
// macOS and FreeBSD: no policy routing that wg-quick or we could rely on,
// so, as wg-quick does there, the default is split into two halves
// (0.0.0.0/1 and 128.0.0.0/1, ::/1 and 8000::/1), each more specific than
// the underlay's default route, which stays in place; and every peer
// endpoint gets a host route via the underlay's default gateway so that
// the tunnel's own packets do not loop into it. Those host routes follow
// the endpoints and the gateway (endpoints.go).

// Platform names, as in GOOS.
const (
	platformLinux   = "linux"
	platformDarwin  = "darwin"
	platformFreeBSD = "freebsd"
)

// mainTable is the number of Linux's main routing table (RT_TABLE_MAIN in
// rtnetlink.h), here so that the plan does not need the Linux headers.
const mainTable = 254

// policyRule is a Linux policy routing rule of the full tunnel.
type policyRule struct {
	Priority int
	Table    int
	// SuppressPrefixlen is -1 for none; 0 ignores the table's default
	// route only.
	SuppressPrefixlen int
	// Mark, if not 0, selects packets with exactly this mark (all 32
	// bits); Invert makes the rule select the others.
	Mark   uint32
	Invert bool
}

// fullTunnelPlan is what a default route through the tunnel becomes.
type fullTunnelPlan struct {
	// Routes go via the tunnel interface.
	Routes []netip.Prefix
	// Table is the Linux routing table of Routes (0 elsewhere).
	Table int
	// Rules are Linux's policy rules, in the order they are added.
	Rules []policyRule
	// EndpointRoutes says that each peer endpoint of the family needs a
	// host route via the underlay's gateway (macOS, FreeBSD).
	EndpointRoutes bool
}

var errNotDefault = errors.New("not a default route")

// planFullTunnel returns the plan for the default route p (0.0.0.0/0 or
// ::/0) on platform goos, with mark the daemon's socket mark and the
// table number on Linux (0 means FullTunnelMark).
func planFullTunnel(goos string, p netip.Prefix, mark uint32) (fullTunnelPlan, error) {
	if !p.IsValid() || p.Bits() != 0 || p.Addr().Is4In6() {
		return fullTunnelPlan{}, errNotDefault
	}
	if mark == 0 {
		mark = FullTunnelMark
	}
	switch goos {
	case platformLinux:
		return fullTunnelPlan{
			Routes: []netip.Prefix{p},
			Table:  int(mark),
			Rules: []policyRule{
				{Priority: fullTunnelPriority, Table: mainTable, SuppressPrefixlen: 0},
				{Priority: fullTunnelPriority + 1, Table: int(mark), SuppressPrefixlen: -1, Mark: mark, Invert: true},
			},
		}, nil
	case platformDarwin, platformFreeBSD:
		return fullTunnelPlan{Routes: splitDefault(p), EndpointRoutes: true}, nil
	}
	return fullTunnelPlan{}, errors.New("full tunnel: unsupported platform " + goos)
}

// splitDefault returns the two halves of the default route p.
func splitDefault(p netip.Prefix) []netip.Prefix {
	if p.Addr().Is4() {
		return []netip.Prefix{
			netip.MustParsePrefix("0.0.0.0/1"),
			netip.MustParsePrefix("128.0.0.0/1"),
		}
	}
	return []netip.Prefix{
		netip.MustParsePrefix("::/1"),
		netip.MustParsePrefix("8000::/1"),
	}
}

// FullTunnelPriority and the mark rule's priority (the next one) come
// before the main table's rule (32766) on Linux.
const fullTunnelPriority = 31900

// FullTunnelMark is the default SO_MARK of the daemon's sockets and the
// default number of the full tunnel's routing table on Linux
// (SetFullTunnelMark changes both, as wg-quick's FwMark does). Other
// platforms have no socket mark and ignore it.
const FullTunnelMark = 51900

// addressRoutesSubnet says whether the kernel of goos routes an
// address's subnet to the interface when the address is added, which the
// daemon counts on (tunnel's netConfig adds no route for it). Linux does;
// FreeBSD does because wireguard/tun puts its tun into IFF_BROADCAST
// mode; macOS treats utun as point to point and routes only the address
// itself, so there the Link adds the subnet's route.
func addressRoutesSubnet(goos string) bool { return goos != platformDarwin }
