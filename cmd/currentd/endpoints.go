package main

import (
	"net/netip"

	"github.com/current-vpn/current/tunnel"
)

// Endpoint routes: on macOS and FreeBSD a full tunnel keeps each peer's
// endpoint on the underlay with a host route (routing.Link.SetEndpoints),
// so the daemon tells its Link where the peers are: first the endpoints
// the configuration gives as addresses, then, while it runs, the
// addresses the peers are actually reached at, which roam
// (endpoints_bsd.go). On Linux the socket mark does this and nothing is
// followed (endpoints_linux.go).

// configEndpoints are the endpoints of peers given as address:port.
func configEndpoints(peers []tunnel.PeerConfig) []netip.Addr {
	var out []netip.Addr
	for _, p := range peers {
		if ap, err := netip.ParseAddrPort(p.Endpoint); err == nil {
			out = append(out, ap.Addr().Unmap())
		}
	}
	return out
}

// peerEndpoints are the addresses of every peer: where its connection
// goes now and, for a peer not connected, its configured endpoint if
// that is an address (a name is resolved when the peer dials).
func peerEndpoints(status []tunnel.PeerStatus) []netip.Addr {
	var out []netip.Addr
	for _, st := range status {
		if ap, err := netip.ParseAddrPort(st.RemoteAddress); err == nil {
			out = append(out, ap.Addr().Unmap())
		}
		if ap, err := netip.ParseAddrPort(st.Endpoint); err == nil {
			out = append(out, ap.Addr().Unmap())
		}
	}
	return out
}
