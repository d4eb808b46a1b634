// Package routing is where current decides which peer a packet belongs to
// and where it tells the kernel to send traffic into the tunnel.
//
// The two halves meet in the daemon's configuration: every peer has a set
// of allowed prefixes. [Table] is the cryptokey routing table built from
// them: the outbound path looks up a packet's destination to pick the peer
// whose keys encrypt it, and the inbound path checks with [Table.Allowed]
// that a decrypted packet's source is one its sender may use, so that a
// peer cannot inject traffic in another peer's name. [Link] installs the
// kernel side of the same configuration (addresses, MTU, routes via the
// tunnel interface) and removes exactly what it installed when the daemon
// stops.
//
// IPv4 and IPv4-mapped IPv6 addresses are one address family here: lookups
// unmap an address before matching, because the same IPv4 host reaches the
// daemon both ways (a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d)
// and must be routed and authenticated identically.
//
// # Platform seam
//
// Everything the daemon asks of the host's network configuration is in
// this package, with the same API on every platform: [Open] and the
// methods of [Link] (addresses, MTU, state, routes, the full tunnel),
// [RouteMTU] (MTU discovery) and [WatchAddresses] (underlay changes).
// What differs is in files named for their platform:
//
//	table.go                cryptokey routing, every platform
//	plan.go                 the full tunnel as data, for every platform
//	endpoints.go            macOS/FreeBSD endpoint host routes, as data
//	rtmsg.go                routing socket messages (macOS, FreeBSD layouts)
//	ifconfig.go             ifconfig(8) argument lists (macOS, FreeBSD)
//	link_linux.go           Link over netlink
//	fulltunnel_linux.go     policy rules and the full tunnel's table
//	watch_linux.go          address changes over netlink
//	netns_linux.go          network namespaces (InNamespace, OpenAt)
//	link_bsd.go             Link over ifconfig and the routing socket
//	rtsock_bsd.go           routing socket I/O
//	watch_bsd.go            address and route changes from the routing socket
//	layout_darwin.go        macOS message layout, checked against x/sys
//	layout_freebsd.go       FreeBSD message layout, checked against x/sys
//
// The files without a platform in their name build everywhere and are
// unit-tested on Linux for every platform: the plans, the messages byte
// for byte against the layouts of <net/route.h>, the command lines. Only
// Linux is tested end to end (the *_linux_test.go files, in network
// namespaces); the macOS and FreeBSD files are built and vetted by
// `make cross` and have not been run on those systems by this project.
//
// Linux only: [OpenAt], [RouteMTUAt] and [InNamespace] take a network
// namespace. macOS and FreeBSD only: [Link.SetEndpoints],
// [Link.RefreshEndpoints] and [WatchRoutes] keep a full tunnel's endpoint
// routes current, which the socket mark makes unnecessary on Linux.
package routing
