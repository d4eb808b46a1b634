package config

import "net/netip"

// ownAddress returns the index of the interface address whose host prefix
// (/32, /128) pfx is, or -1.
//
// Only that prefix is refused, because only it is always a mistake: the
// kernel delivers our own address locally whatever the routes say, so a
// peer can never be sent traffic for it, and the entry usually stands where
// the peer's own address was meant (a copy from our [interface]). Wider
// prefixes that contain our address are legitimate and stay allowed: the
// tunnel subnet of a spoke's hub (laptop 10.77.0.10/24, hub 10.77.0.0/24),
// the rest of a corporate network behind a site (10.0.0.0/8), a full tunnel
// (0.0.0.0/0), even a prefix narrower than our own subnet, as when a spoke
// numbered into a /16 reaches the /24 it sits in through its hub. In all of
// them the local route still keeps our own address here.
func ownAddress(addrs []netip.Prefix, pfx netip.Prefix) int {
	if !pfx.IsSingleIP() {
		return -1
	}
	for i, a := range addrs {
		if a.IsValid() && a.Addr() == pfx.Addr() {
			return i
		}
	}
	return -1
}
