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
package routing
