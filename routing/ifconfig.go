package routing

import (
	"net/netip"
	"strconv"
)

// Interface settings on macOS and FreeBSD go through ifconfig(8), as
// wg-quick's darwin and freebsd backends do: its ioctls (SIOCAIFADDR with
// struct in_aliasreq or in6_aliasreq, SIOCSIFMTU, SIOCSIFFLAGS) differ
// between the two systems in layout and in what they imply, and ifconfig
// is the one interface both document and keep stable. The argument lists
// are data, tested on any host.

// ifconfigPath is where both systems install ifconfig.
const ifconfigPath = "/sbin/ifconfig"

// ifconfigAddAddress is the argument list that adds p to interface name
// on goos. A macOS utun is point to point and wants a destination, which
// wg-quick sets to the address itself.
func ifconfigAddAddress(goos, name string, p netip.Prefix) []string {
	if p.Addr().Is6() {
		return []string{name, "inet6", p.String(), "alias"}
	}
	if goos == platformDarwin {
		return []string{name, "inet", p.String(), p.Addr().String(), "alias"}
	}
	return []string{name, "inet", p.String(), "alias"}
}

// ifconfigDelAddress is the argument list that removes p's address.
func ifconfigDelAddress(name string, p netip.Prefix) []string {
	if p.Addr().Is6() {
		return []string{name, "inet6", p.Addr().String(), "-alias"}
	}
	return []string{name, "inet", p.Addr().String(), "-alias"}
}

// ifconfigMTU sets the MTU, ifconfigUp and ifconfigDown the state.
func ifconfigMTU(name string, mtu int) []string { return []string{name, "mtu", strconv.Itoa(mtu)} }
func ifconfigUp(name string) []string           { return []string{name, "up"} }
func ifconfigDown(name string) []string         { return []string{name, "down"} }
