package routing

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RouteProtocol is the rtnetlink protocol number on every route a Link
// installs ("proto 117" in `ip route`). A protocol of our own means a route
// is only ever deleted if we made it: never the kernel's prefix route for
// an address (proto kernel) or one an administrator added (proto boot or
// static), even when they have the same destination and device. It also
// lets an operator clear what a crashed daemon left with
// `ip route flush proto 117`. 117 is unassigned in rtnetlink.h and in
// iproute2's rt_protos.
const RouteProtocol netlink.RouteProtocol = 117

// ErrClosed is returned by the methods of a Link after Close.
var ErrClosed = errors.New("routing: link closed")

// Link configures one network interface through netlink and remembers what
// it installed, so that Cleanup can take away exactly that.
//
// Idempotence: adding an address or route that is already there with the
// same parameters succeeds, but the Link does not take ownership of it (it
// was not ours), so Cleanup leaves it alone. Deleting something that is not
// there succeeds. Something present with different parameters (the same
// IPv6 address with another prefix length, a route to the same destination
// via another device) is an error, because silently accepting it would
// leave traffic going somewhere the daemon did not ask for.
//
// Link state and MTU are not undone by Cleanup: the daemon owns the TUN
// interface, and its state goes with it.
//
// A Link is safe for concurrent use.
type Link struct {
	mu     sync.Mutex
	h      *netlink.Handle
	link   netlink.Link
	name   string
	owned  []owned // in the order installed
	closed bool
	// fullMark is the full tunnel's mark and table; 0 for FullTunnelMark.
	fullMark uint32
}

// owned is one thing a Link installed: exactly one of addr, route and
// rule.
type owned struct {
	prefix netip.Prefix
	addr   *netlink.Addr
	route  *netlink.Route
	rule   *netlink.Rule
}

// Open returns a Link for the interface called name in the caller's
// network namespace.
func Open(name string) (*Link, error) {
	return OpenAt(netns.None(), name)
}

// OpenAt returns a Link for the interface called name in namespace ns. The
// netlink socket is created inside ns, so every later call acts there
// whichever thread or namespace the caller is in.
func OpenAt(ns netns.NsHandle, name string) (*Link, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open link %s: netlink: %w", name, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("open link %s: %w", name, err)
	}
	return &Link{h: h, link: l, name: name}, nil
}

// Name returns the interface name the Link was opened with.
func (l *Link) Name() string { return l.name }

// Index returns the interface index. The Link addresses the interface by
// index, so a rename does not redirect it to another interface.
func (l *Link) Index() int { return l.link.Attrs().Index }

func (l *Link) lock() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// SetMTU sets the interface MTU.
func (l *Link) SetMTU(mtu int) error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	if mtu <= 0 {
		return fmt.Errorf("set mtu %d dev %s: invalid MTU", mtu, l.name)
	}
	if err := l.h.LinkSetMTU(l.link, mtu); err != nil {
		return fmt.Errorf("set mtu %d dev %s: %w", mtu, l.name, err)
	}
	return nil
}

// MTU returns the interface MTU as the kernel has it now.
func (l *Link) MTU() (int, error) {
	if err := l.lock(); err != nil {
		return 0, err
	}
	defer l.mu.Unlock()
	cur, err := l.h.LinkByIndex(l.Index())
	if err != nil {
		return 0, fmt.Errorf("get mtu dev %s: %w", l.name, err)
	}
	return cur.Attrs().MTU, nil
}

// Up sets the interface administratively up. IPv4 routes cannot be added
// through an interface that is down, so call Up before AddRoute.
func (l *Link) Up() error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	if err := l.h.LinkSetUp(l.link); err != nil {
		return fmt.Errorf("set dev %s up: %w", l.name, err)
	}
	return nil
}

// Down sets the interface administratively down. The kernel then drops the
// routes through it and, unless net.ipv6.conf.*.keep_addr_on_down is set,
// its IPv6 addresses: they do not come back with Up, so re-add them. Cleanup
// tolerates their absence.
func (l *Link) Down() error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	if err := l.h.LinkSetDown(l.link); err != nil {
		return fmt.Errorf("set dev %s down: %w", l.name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// AddAddress adds prefix as an address of the interface: the address is
// prefix.Addr() and the kernel adds the route for the masked prefix, as
// `ip address add 10.0.0.1/24 dev current0` does. IPv6 addresses are added
// without duplicate address detection (see below); even so the kernel
// installs an IPv6 address's local route from a work queue, so for a moment
// after Up packets to it are dropped although binding to it works.
func (l *Link) AddAddress(prefix netip.Prefix) error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	fail := func(err error) error {
		return fmt.Errorf("add address %v dev %s: %w", prefix, l.name, err)
	}
	if err := kernelPrefix(prefix); err != nil {
		return fail(err)
	}
	a := &netlink.Addr{IPNet: ipNet(prefix)}
	if prefix.Addr().Is6() {
		// A tunnel is point to point: duplicate address detection could
		// only ever find the peer, and while it runs (asynchronously, even
		// when the kernel skips it) the address is tentative and binding a
		// socket to it fails. NODAD makes the address usable as soon as
		// the interface is up.
		a.Flags = unix.IFA_F_NODAD
	}
	err := l.h.AddrAdd(l.link, a)
	if errors.Is(err, unix.EEXIST) {
		// IPv4 says EEXIST only for the same address and length; IPv6
		// says it for the same address whatever the length.
		have, lerr := l.addressPrefix(prefix.Addr())
		switch {
		case lerr != nil:
			return fail(fmt.Errorf("%w (and listing addresses: %v)", err, lerr))
		case have == prefix:
			return nil
		case have.IsValid():
			return fail(fmt.Errorf("%w (present as %v)", err, have))
		}
	}
	if err != nil {
		return fail(err)
	}
	l.owned = append(l.owned, owned{prefix: prefix, addr: a})
	return nil
}

// addressPrefix returns how a is configured on the interface, or the zero
// Prefix if it is not.
func (l *Link) addressPrefix(a netip.Addr) (netip.Prefix, error) {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return l.h.AddrList(l.link, family(a)) })
	if err != nil {
		return netip.Prefix{}, err
	}
	nets := make([]*net.IPNet, 0, len(addrs))
	for _, x := range addrs {
		if x.IPNet != nil {
			nets = append(nets, x.IPNet)
		}
	}
	return configuredAs(a, nets), nil
}

// DelAddress removes an address from the interface, whoever added it.
// Removing an address that is not there is not an error.
func (l *Link) DelAddress(prefix netip.Prefix) error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	if err := kernelPrefix(prefix); err != nil {
		return fmt.Errorf("del address %v dev %s: %w", prefix, l.name, err)
	}
	err := l.h.AddrDel(l.link, &netlink.Addr{IPNet: ipNet(prefix)})
	if err != nil && !gone(err) {
		return fmt.Errorf("del address %v dev %s: %w", prefix, l.name, err)
	}
	l.disown(func(o owned) bool { return o.addr != nil && o.prefix == prefix })
	return nil
}

// route is the route AddRoute installs for p: directly via the interface,
// in the main table (a default route in the full tunnel's table), with the
// kernel's default metric for the family.
func (l *Link) route(p netip.Prefix) *netlink.Route {
	r := &netlink.Route{
		LinkIndex: l.Index(),
		Dst:       ipNet(p),
		Table:     l.tableFor(p),
		Protocol:  RouteProtocol,
	}
	if p.Addr().Is4() {
		// What `ip route add ... dev X` uses for a route without a
		// gateway: the destination is on the link.
		r.Scope = netlink.SCOPE_LINK
	}
	return r
}

// AddRoute routes prefix (host bits cleared) via the interface, like
// `ip route add 10.0.0.0/24 dev current0`. A default route (0.0.0.0/0,
// ::/0) goes into the full tunnel's table instead, with its policy rules
// (fulltunnel.go).
func (l *Link) AddRoute(prefix netip.Prefix) error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	p := prefix.Masked()
	fail := func(err error) error {
		return fmt.Errorf("add route %v dev %s: %w", p, l.name, err)
	}
	if err := kernelPrefix(prefix); err != nil {
		return fail(err)
	}
	r := l.route(p)
	err := l.h.RouteAdd(r)
	if errors.Is(err, unix.EEXIST) {
		// A route to p with the same metric exists. If it goes straight
		// out of this interface, what we asked for holds: for example the
		// kernel's own route for an address's prefix.
		via, lerr := l.routeVia(p)
		switch {
		case lerr != nil:
			return fail(fmt.Errorf("%w (and listing routes: %v)", err, lerr))
		case via != "":
			return fail(fmt.Errorf("%w (route via %s)", err, via))
		}
	} else if err != nil {
		return fail(err)
	} else {
		l.owned = append(l.owned, owned{prefix: p, route: r})
	}
	if p.Bits() == 0 {
		if err := l.addFullTunnelRules(p); err != nil {
			return fail(err)
		}
	}
	return nil
}

// routeVia looks at the main-table routes to p that could have collided
// with ours. It returns "" if one goes directly via this interface, and
// otherwise a description of where the others go.
func (l *Link) routeVia(p netip.Prefix) (string, error) {
	filter := &netlink.Route{Dst: ipNet(p), Table: l.tableFor(p)}
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return l.h.RouteListFiltered(family(p.Addr()), filter, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return "", err
	}
	var other []string
	for _, r := range routes {
		if r.LinkIndex == l.Index() && r.Gw == nil && len(r.MultiPath) == 0 && r.Type == unix.RTN_UNICAST {
			return "", nil
		}
		other = append(other, l.describe(r))
	}
	if len(other) == 0 {
		// It vanished between our add and the listing.
		return "an unknown route", nil
	}
	return fmt.Sprint(other), nil
}

func (l *Link) describe(r netlink.Route) string {
	var s string
	if r.Gw != nil {
		s = "gateway " + r.Gw.String() + " "
	}
	if len(r.MultiPath) > 0 {
		s += "multipath "
	}
	if link, err := l.h.LinkByIndex(r.LinkIndex); err == nil {
		s += "dev " + link.Attrs().Name
	} else {
		s += "ifindex " + strconv.Itoa(r.LinkIndex)
	}
	return s
}

// DelRoute removes the route to prefix (host bits cleared) via the
// interface, whoever added it, but never the kernel's own route for an
// address's prefix: remove the address for that. Removing a route that is
// not there is not an error.
func (l *Link) DelRoute(prefix netip.Prefix) error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	p := prefix.Masked()
	if err := kernelPrefix(prefix); err != nil {
		return fmt.Errorf("del route %v dev %s: %w", p, l.name, err)
	}
	if p.Bits() == 0 {
		// The rules go first: without the route they would send
		// everything into an empty table.
		if err := l.delFullTunnelRules(p); err != nil {
			return fmt.Errorf("del route %v dev %s: %w", p, l.name, err)
		}
	}
	if err := l.delRouteAnyone(p); err != nil {
		return fmt.Errorf("del route %v dev %s: %w", p, l.name, err)
	}
	l.disown(func(o owned) bool { return o.route != nil && o.prefix == p })
	return nil
}

// delRouteAnyone deletes the route to p via the interface, ours or
// another's. A route we added goes in one request by its protocol. Only
// another's needs the listing of delRoute(p, 0), which dumps the whole
// table: done for every route, a hub removing 10,000 peers' routes spent
// minutes there. The kernel keys a route by table, destination and
// metric, not protocol, so when ours is found there is no other; when it
// is not (replaced by someone since), the listing finds theirs.
func (l *Link) delRouteAnyone(p netip.Prefix) error {
	if slices.ContainsFunc(l.owned, func(o owned) bool { return o.route != nil && o.prefix == p }) {
		err := l.h.RouteDel(l.routeOf(p, RouteProtocol))
		if !gone(err) {
			return err
		}
	}
	return l.delRoute(p, 0)
}

// routeOf is the route to p via the interface of protocol proto, as a
// delete request: RT_SCOPE_NOWHERE matches a route of any scope; the
// default (universe) would miss an IPv4 link-scope route.
func (l *Link) routeOf(p netip.Prefix, proto netlink.RouteProtocol) *netlink.Route {
	return &netlink.Route{LinkIndex: l.Index(), Dst: ipNet(p), Table: l.tableFor(p), Protocol: proto, Scope: netlink.SCOPE_NOWHERE}
}

// delRoute deletes a route to p via the interface of protocol proto (0 for
// any but the kernel's), tolerating its absence.
func (l *Link) delRoute(p netip.Prefix, proto netlink.RouteProtocol) error {
	if proto == 0 {
		// The kernel's prefix route would match a protocol-less delete;
		// delete the others one by one instead.
		filter := &netlink.Route{Dst: ipNet(p), Table: l.tableFor(p), LinkIndex: l.Index()}
		routes, err := retryDump(func() ([]netlink.Route, error) {
			return l.h.RouteListFiltered(family(p.Addr()), filter, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
		})
		if err != nil {
			return err
		}
		for _, x := range routes {
			if x.Protocol == unix.RTPROT_KERNEL || x.Gw != nil {
				continue
			}
			if err := l.delRoute(p, x.Protocol); err != nil {
				return err
			}
		}
		return nil
	}
	if err := l.h.RouteDel(l.routeOf(p, proto)); err != nil && !gone(err) {
		return err
	}
	return nil
}

func (l *Link) disown(match func(owned) bool) {
	l.owned = slices.DeleteFunc(l.owned, match)
}

// gone reports whether err says that what we meant to delete is already
// gone: deleted by someone else, flushed with the interface going down, or
// the interface itself destroyed (a TUN closed before Cleanup).
func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) ||
		errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV)
}

// Cleanup removes the addresses and routes this Link added, newest first,
// and nothing else. It goes on past failures and returns them all; what it
// failed to remove stays on record for a later Cleanup.
func (l *Link) Cleanup() error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	return l.cleanup()
}

func (l *Link) cleanup() error {
	var errs []error
	var kept []owned
	for i := len(l.owned) - 1; i >= 0; i-- {
		o := l.owned[i]
		var err error
		switch {
		case o.addr != nil:
			err = l.h.AddrDel(l.link, &netlink.Addr{IPNet: ipNet(o.prefix)})
			if err != nil && !gone(err) {
				err = fmt.Errorf("del address %v dev %s: %w", o.prefix, l.name, err)
			} else {
				err = nil
			}
		case o.rule != nil:
			err = l.delRule(o.rule)
		default:
			err = l.delRoute(o.prefix, RouteProtocol)
			if err != nil {
				err = fmt.Errorf("del route %v dev %s: %w", o.prefix, l.name, err)
			}
		}
		if err != nil {
			errs = append(errs, err)
			kept = append(kept, o)
		}
	}
	slices.Reverse(kept)
	l.owned = kept
	return errors.Join(errs...)
}

// Close runs Cleanup and releases the netlink socket. Later calls to the
// Link return ErrClosed; closing again does nothing.
func (l *Link) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	err := l.cleanup()
	l.closed = true
	// After Close, a netlink.Handle silently falls back to sockets in the
	// calling thread's namespace; closed keeps us from ever using it so.
	l.h.Close()
	return err
}

// retryDump retries a netlink dump that the kernel reports as interrupted
// by a concurrent change, which would make its result unreliable.
func retryDump[T any](f func() ([]T, error)) ([]T, error) {
	for range 5 {
		v, err := f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return f()
}

// RouteMTU returns the MTU of the path the kernel would use now to reach
// dst from the caller's namespace: the smaller of the route's MTU (a route
// metric or a learned path MTU) and the MTU of its outgoing interface.
// A zone on dst picks the outgoing interface, as it does for a socket.
//
// The daemon derives the tunnel MTU from it (mtu = 0 in the configuration)
// by subtracting its own per-packet overhead. The lookup is made without a
// socket mark, so if the daemon's UDP socket is marked to escape a default
// route through the tunnel, ask before that route is installed or use
// the mark-free underlay's answer with care.
func RouteMTU(dst netip.Addr) (int, error) {
	return RouteMTUAt(netns.None(), dst)
}

// RouteMTUAt is RouteMTU in namespace ns.
func RouteMTUAt(ns netns.NsHandle, dst netip.Addr) (int, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return 0, fmt.Errorf("route mtu %v: netlink: %w", dst, err)
	}
	defer h.Close()
	return routeMTU(h, dst)
}

func routeMTU(h *netlink.Handle, dst netip.Addr) (int, error) {
	if !dst.IsValid() {
		return 0, errors.New("route mtu: invalid address")
	}
	// An IPv4-mapped destination is reached over IPv4.
	dst = dst.Unmap()
	opts := &netlink.RouteGetOptions{}
	if zone := dst.Zone(); zone != "" {
		if idx, err := strconv.Atoi(zone); err == nil {
			opts.OifIndex = idx
		} else {
			opts.Oif = zone
		}
	}
	routes, err := h.RouteGetWithOptions(dst.WithZone("").AsSlice(), opts)
	if err != nil {
		return 0, fmt.Errorf("route mtu %v: %w", dst, err)
	}
	if len(routes) == 0 {
		return 0, fmt.Errorf("route mtu %v: no route", dst)
	}
	r := routes[0]
	link, err := h.LinkByIndex(r.LinkIndex)
	if err != nil {
		return 0, fmt.Errorf("route mtu %v: outgoing interface %d: %w", dst, r.LinkIndex, err)
	}
	mtu := link.Attrs().MTU
	// The kernel lets a route's MTU exceed its interface's, but packets
	// that size would not leave; the daemon needs what actually fits.
	if r.MTU > 0 && r.MTU < mtu {
		mtu = r.MTU
	}
	return mtu, nil
}
