package tunnel

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// Socket marks. With Config.Fwmark set, every socket the device opens
// carries that mark (SO_MARK): the UDP sockets, the TCP listener, each TCP
// dial and the DNS lookups of peers' endpoints. On Linux the policy rules
// of a full tunnel (package routing) send unmarked packets into the tunnel
// and marked ones to the underlay, so the tunnel's own packets, and the
// name lookups it needs before any session exists, never loop into it.
// macOS and FreeBSD have neither the mark nor the rules: their full tunnel
// keeps the endpoints on the underlay with host routes instead
// (routing/endpoints.go), and markControl there marks nothing
// (mark_bsd.go).

// markError explains a failed SO_MARK, nil for nil.
func markError(mark uint32, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("setting SO_MARK %d (needs CAP_NET_ADMIN): %w", mark, err)
}

// markedResolver looks names up over marked sockets (Go's own resolver:
// the C library's would open its own, unmarked ones).
func markedResolver(mark uint32) *net.Resolver {
	if mark == 0 {
		return net.DefaultResolver
	}
	d := net.Dialer{Control: markControl(mark)}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return d.DialContext(ctx, network, address)
		},
	}
}

// resolveEndpoint resolves a "host:port" endpoint for UDP with the
// device's resolver. Like net.ResolveUDPAddr it prefers an IPv4 address,
// which more networks route.
func (d *Device) resolveEndpoint(ctx context.Context, endpoint string) (netip.AddrPort, error) {
	host, service, err := net.SplitHostPort(endpoint)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := d.resolver.LookupPort(ctx, "udp", service)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if port == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: no port", endpoint)
	}
	addrs, err := d.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("%s: no address", host)
	}
	pick := addrs[0]
	for _, a := range addrs {
		if a.Unmap().Is4() {
			pick = a
			break
		}
	}
	return netip.AddrPortFrom(pick.Unmap(), uint16(port)), nil
}
