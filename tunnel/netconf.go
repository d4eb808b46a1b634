package tunnel

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Link is the host side of the TUN device: its addresses, MTU, state and
// the routes through it. Package routing implements it with netlink; tests
// use a recording fake. Deleting something that is already gone must not be
// an error worth failing a shutdown over, but may be reported.
type Link interface {
	SetMTU(mtu int) error
	Up() error
	AddAddress(p netip.Prefix) error
	DelAddress(p netip.Prefix) error
	AddRoute(p netip.Prefix) error
	DelRoute(p netip.Prefix) error
}

// netConfig remembers what was installed so that exactly that is removed,
// even if the configuration changed in between.
type netConfig struct {
	link    Link
	addrs   []netip.Prefix
	routes  map[netip.Prefix]bool
	covered []netip.Prefix // address subnets, routed by the kernel
}

// install configures the link: MTU, addresses, up, then the routes.
func (n *netConfig) install(mtu int, addrs []netip.Prefix, routes []netip.Prefix) error {
	n.routes = map[netip.Prefix]bool{}
	if mtu > 0 {
		if err := n.link.SetMTU(mtu); err != nil {
			return fmt.Errorf("set MTU %d: %w", mtu, err)
		}
	}
	for _, a := range addrs {
		if err := n.link.AddAddress(a); err != nil {
			return fmt.Errorf("add address %s: %w", a, err)
		}
		n.addrs = append(n.addrs, a)
		n.covered = append(n.covered, a.Masked())
	}
	if err := n.link.Up(); err != nil {
		return fmt.Errorf("link up: %w", err)
	}
	return n.syncRoutes(routes)
}

// wantedRoutes is one route per allowed-IPs prefix of any peer, or none
// with ManualRoutes.
func (c *Config) wantedRoutes() []netip.Prefix {
	if c.ManualRoutes {
		return nil
	}
	var out []netip.Prefix
	for _, p := range c.Peers {
		for _, r := range p.AllowedIPs {
			out = append(out, r.Masked())
		}
	}
	return out
}

// syncRoutes adds the routes in want that are missing and deletes those
// installed but no longer wanted. The subnets of our own addresses are
// skipped: the kernel routes them to the link itself, and adding the same
// route again fails with EEXIST.
func (n *netConfig) syncRoutes(want []netip.Prefix) error {
	if n.link == nil {
		return nil
	}
	set := map[netip.Prefix]bool{}
	for _, r := range want {
		if !slices.Contains(n.covered, r) {
			set[r] = true
		}
	}
	var errs []error
	for r := range n.routes {
		if !set[r] {
			if err := n.link.DelRoute(r); err != nil {
				errs = append(errs, fmt.Errorf("delete route %s: %w", r, err))
			}
			delete(n.routes, r)
		}
	}
	for _, r := range slices.SortedFunc(maps.Keys(set), comparePrefix) {
		if n.routes[r] {
			continue
		}
		if err := n.link.AddRoute(r); err != nil {
			errs = append(errs, fmt.Errorf("add route %s: %w", r, err))
			continue
		}
		n.routes[r] = true
	}
	return errors.Join(errs...)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// remove deletes the routes, then the addresses, and reports every
// failure.
func (n *netConfig) remove() error {
	if n.link == nil {
		return nil
	}
	var errs []error
	if err := n.syncRoutes(nil); err != nil {
		errs = append(errs, err)
	}
	for i := len(n.addrs) - 1; i >= 0; i-- {
		if err := n.link.DelAddress(n.addrs[i]); err != nil {
			errs = append(errs, fmt.Errorf("delete address %s: %w", n.addrs[i], err))
		}
	}
	n.addrs, n.covered = nil, nil
	return errors.Join(errs...)
}
