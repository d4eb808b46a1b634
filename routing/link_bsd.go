//go:build darwin || freebsd

package routing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by the methods of a Link after Close.
var ErrClosed = errors.New("routing: link closed")

// ifconfigTimeout bounds one run of ifconfig.
const ifconfigTimeout = 10 * time.Second

// Link configures one network interface on macOS or FreeBSD: addresses,
// MTU and state through ifconfig(8) (ifconfig.go), routes through the
// routing socket (rtmsg.go). Like the Linux Link it remembers what it
// installed and Cleanup removes exactly that; routes it adds carry
// RTF_PROTO1, as Linux's carry RouteProtocol. A default route becomes the
// two halves of plan.go, and SetEndpoints keeps the peers' endpoints on
// the underlay.
//
// A Link is safe for concurrent use.
type Link struct {
	mu     sync.Mutex
	name   string
	index  int
	owned  []owned // in the order installed
	closed bool

	// full says which families have a default route through the tunnel.
	full4, full6 bool
	// endpoints are the peers' endpoint addresses last given, and
	// epRoutes the host routes installed for them.
	endpoints []netip.Addr
	epRoutes  []endpointRoute
}

// owned is one address or route a Link installed.
type owned struct {
	prefix netip.Prefix
	addr   bool
}

// Open returns a Link for the interface called name.
func Open(name string) (*Link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("open link %s: %w", name, err)
	}
	return &Link{name: name, index: ifi.Index}, nil
}

// Name returns the interface name the Link was opened with.
func (l *Link) Name() string { return l.name }

// Index returns the interface index.
func (l *Link) Index() int { return l.index }

// SetFullTunnelMark does nothing here: neither system has Linux's socket
// mark and policy rules, and the full tunnel uses endpoint routes
// instead (plan.go).
func (l *Link) SetFullTunnelMark(uint32) {}

func (l *Link) lock() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// ifconfig runs ifconfig with args, bounded in time, and returns its
// output as the error's text on failure.
func ifconfig(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ifconfigTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, ifconfigPath, args...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 256 {
			msg = msg[:256]
		}
		return fmt.Errorf("ifconfig %s: %w: %s", strings.Join(args, " "), err, msg)
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
	return ifconfig(ifconfigMTU(l.name, mtu))
}

// MTU returns the interface MTU as the kernel has it now.
func (l *Link) MTU() (int, error) {
	if err := l.lock(); err != nil {
		return 0, err
	}
	defer l.mu.Unlock()
	ifi, err := net.InterfaceByIndex(l.index)
	if err != nil {
		return 0, fmt.Errorf("get mtu dev %s: %w", l.name, err)
	}
	return ifi.MTU, nil
}

// Up sets the interface administratively up.
func (l *Link) Up() error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	return ifconfig(ifconfigUp(l.name))
}

// Down sets the interface administratively down.
func (l *Link) Down() error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	return ifconfig(ifconfigDown(l.name))
}

// addressPrefix returns how a is configured on the interface, or the zero
// Prefix if it is not.
func (l *Link) addressPrefix(a netip.Addr) (netip.Prefix, error) {
	ifi, err := net.InterfaceByIndex(l.index)
	if err != nil {
		return netip.Prefix{}, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Prefix{}, err
	}
	var nets []*net.IPNet
	for _, x := range addrs {
		if ipn, ok := x.(*net.IPNet); ok {
			nets = append(nets, ipn)
		}
	}
	return configuredAs(a, nets), nil
}

// AddAddress adds prefix as an address of the interface. On macOS, whose
// utun is point to point, it also routes the prefix's subnet to the
// interface, which Linux and FreeBSD do by themselves.
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
	have, err := l.addressPrefix(prefix.Addr())
	switch {
	case err != nil:
		return fail(err)
	case have == prefix:
		return nil
	case have.IsValid():
		return fail(fmt.Errorf("present as %v", have))
	}
	if err := ifconfig(ifconfigAddAddress(platform, l.name, prefix)); err != nil {
		return fail(err)
	}
	l.owned = append(l.owned, owned{prefix: prefix, addr: true})
	if !addressRoutesSubnet(platform) && !prefix.IsSingleIP() {
		if err := l.addInterfaceRoute(prefix.Masked()); err != nil {
			return fail(err)
		}
	}
	return nil
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
	if err := l.delAddress(prefix); err != nil {
		return err
	}
	if !addressRoutesSubnet(platform) && !prefix.IsSingleIP() {
		if err := l.delOwnRoute(prefix.Masked()); err != nil {
			return fmt.Errorf("del address %v dev %s: %w", prefix, l.name, err)
		}
	}
	return nil
}

func (l *Link) delAddress(prefix netip.Prefix) error {
	have, err := l.addressPrefix(prefix.Addr())
	if err != nil {
		return fmt.Errorf("del address %v dev %s: %w", prefix, l.name, err)
	}
	if have.IsValid() {
		if err := ifconfig(ifconfigDelAddress(l.name, prefix)); err != nil {
			return fmt.Errorf("del address %v dev %s: %w", prefix, l.name, err)
		}
	}
	l.disown(owned{prefix: prefix, addr: true})
	return nil
}

// AddRoute routes prefix (host bits cleared) via the interface. A default
// route becomes the two halves of the plan (plan.go), and the family's
// endpoint routes are installed with it.
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
	plan, err := planFullTunnel(platform, p, 0)
	if err != nil {
		return l.addInterfaceRoute(p)
	}
	// The endpoints leave by the underlay before the halves take the
	// rest.
	l.setFull(p, true)
	if err := l.syncEndpoints(); err != nil {
		return fail(err)
	}
	for _, half := range plan.Routes {
		if err := l.addInterfaceRoute(half); err != nil {
			return fail(err)
		}
	}
	return nil
}

func (l *Link) setFull(p netip.Prefix, on bool) {
	if p.Addr().Is4() {
		l.full4 = on
	} else {
		l.full6 = on
	}
}

// addInterfaceRoute adds the route to p via the interface and takes
// ownership of it; a route to p that already goes via the interface is
// accepted and left alone (l.mu held).
func (l *Link) addInterfaceRoute(p netip.Prefix) error {
	err := writeRoute(interfaceRouteMsg(rtmAdd, p, uint16(l.index)))
	if errors.Is(err, unix.EEXIST) {
		got, gerr := getRoute(getRouteMsg(p.Addr(), p.Bits()))
		switch {
		case gerr != nil:
			return fmt.Errorf("add route %v dev %s: %w (and looking it up: %v)", p, l.name, err, gerr)
		case int(got.Index) == l.index || int(got.GatewayLink) == l.index:
			return nil
		case got.Gateway.IsValid():
			return fmt.Errorf("add route %v dev %s: %w (route via gateway %v)", p, l.name, err, got.Gateway)
		default:
			return fmt.Errorf("add route %v dev %s: %w (route via ifindex %d)", p, l.name, err, got.Index)
		}
	}
	if err != nil {
		return fmt.Errorf("add route %v dev %s: %w", p, l.name, err)
	}
	l.owned = append(l.owned, owned{prefix: p})
	return nil
}

// DelRoute removes the route to prefix (host bits cleared) via the
// interface, whoever added it, but never one the kernel made for an
// address (those are not RTF_STATIC). Removing a route that is not there
// is not an error.
func (l *Link) DelRoute(prefix netip.Prefix) error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	p := prefix.Masked()
	fail := func(err error) error {
		return fmt.Errorf("del route %v dev %s: %w", p, l.name, err)
	}
	if err := kernelPrefix(prefix); err != nil {
		return fail(err)
	}
	plan, err := planFullTunnel(platform, p, 0)
	if err != nil {
		if err := l.delOwnRoute(p); err != nil {
			return fail(err)
		}
		return nil
	}
	for _, half := range plan.Routes {
		if err := l.delOwnRoute(half); err != nil {
			return fail(err)
		}
	}
	l.setFull(p, false)
	if err := l.syncEndpoints(); err != nil {
		return fail(err)
	}
	return nil
}

// delOwnRoute deletes the static route to p via the interface, if there
// is one, and forgets it; on failure it stays on record for a later
// Cleanup (l.mu held).
func (l *Link) delOwnRoute(p netip.Prefix) error {
	got, err := getRoute(getRouteMsg(p.Addr(), p.Bits()))
	switch {
	case gone(err):
	case err != nil:
		return err
	case (int(got.Index) == l.index || int(got.GatewayLink) == l.index) && got.Flags&rtfStatic != 0:
		if err := writeRoute(interfaceRouteMsg(rtmDelete, p, uint16(l.index))); err != nil && !gone(err) {
			return err
		}
	}
	l.disown(owned{prefix: p})
	return nil
}

func (l *Link) disown(o owned) {
	l.owned = slices.DeleteFunc(l.owned, func(x owned) bool { return x == o })
}

// gone reports whether err says that what we meant to delete is already
// gone.
func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) ||
		errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENXIO)
}

// SetEndpoints gives the Link the peers' current endpoint addresses.
// While a family has a default route through the tunnel, each endpoint of
// it has a host route via the underlay's default route (endpoints.go);
// routes of endpoints no longer given are removed.
func (l *Link) SetEndpoints(endpoints []netip.Addr) error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	l.endpoints = slices.Clone(endpoints)
	return l.syncEndpoints()
}

// RefreshEndpoints looks at the underlay's default routes again and moves
// the endpoint routes to a new gateway; call it after routes changed
// (WatchRoutes).
func (l *Link) RefreshEndpoints() error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	return l.syncEndpoints()
}

// syncEndpoints makes the installed endpoint routes the plan's (l.mu
// held). A route that fails to go in is retried at the next call.
func (l *Link) syncEndpoints() error {
	var gw4, gw6 gatewayOf
	if l.full4 {
		gw4 = l.underlayGateway(netip.IPv4Unspecified())
	}
	if l.full6 {
		gw6 = l.underlayGateway(netip.IPv6Unspecified())
	}
	want := planEndpointRoutes(l.endpoints, l.full4, l.full6, gw4, gw6)
	del, add := diffEndpointRoutes(l.epRoutes, want)
	var errs []error
	for _, r := range del {
		if err := writeRoute(endpointRouteMsg(rtmDelete, r)); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("del endpoint route %v: %w", r.Dst, err))
			continue
		}
		l.epRoutes = slices.DeleteFunc(l.epRoutes, func(x endpointRoute) bool { return x == r })
	}
	for _, r := range add {
		err := writeRoute(endpointRouteMsg(rtmAdd, r))
		if errors.Is(err, unix.EEXIST) {
			// A host route to the endpoint is there already, the
			// administrator's or a crashed run's: it keeps the endpoint
			// off the tunnel either way, and it is not ours to remove.
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("add endpoint route %v: %w", r.Dst, err))
			continue
		}
		l.epRoutes = append(l.epRoutes, r)
	}
	return errors.Join(errs...)
}

// underlayGateway is where the default route of unspec's family goes,
// looked up exactly (the halves through the tunnel are more specific and
// not what an exact lookup of /0 finds).
func (l *Link) underlayGateway(unspec netip.Addr) gatewayOf {
	got, err := getRoute(getRouteMsg(unspec, 0))
	if err != nil {
		return gatewayOf{}
	}
	return gatewayFrom(got, uint16(l.index))
}

// Cleanup removes the routes and addresses this Link added, newest first,
// the endpoint routes after the routes through the tunnel, and nothing
// else. It goes on past failures and returns them all.
func (l *Link) Cleanup() error {
	if err := l.lock(); err != nil {
		return err
	}
	defer l.mu.Unlock()
	return l.cleanup()
}

func (l *Link) cleanup() error {
	var errs []error
	for i := len(l.owned) - 1; i >= 0; i-- {
		o := l.owned[i]
		if o.addr {
			continue
		}
		if err := l.delOwnRoute(o.prefix); err != nil {
			errs = append(errs, fmt.Errorf("del route %v dev %s: %w", o.prefix, l.name, err))
		}
	}
	l.full4, l.full6 = false, false
	if err := l.syncEndpoints(); err != nil {
		errs = append(errs, err)
	}
	for i := len(l.owned) - 1; i >= 0; i-- {
		if o := l.owned[i]; o.addr {
			if err := l.delAddress(o.prefix); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Close runs Cleanup. Later calls to the Link return ErrClosed; closing
// again does nothing.
func (l *Link) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	err := l.cleanup()
	l.closed = true
	return err
}

// RouteMTU returns the MTU of the path the kernel would use now to reach
// dst: the smaller of the route's MTU (rmx_mtu, when set) and the MTU of
// its outgoing interface.
func RouteMTU(dst netip.Addr) (int, error) {
	if !dst.IsValid() {
		return 0, errors.New("route mtu: invalid address")
	}
	dst = dst.Unmap()
	got, err := getRoute(getRouteMsg(dst, -1))
	if err != nil {
		return 0, fmt.Errorf("route mtu %v: %w", dst, err)
	}
	ifi, err := net.InterfaceByIndex(int(got.Index))
	if err != nil {
		return 0, fmt.Errorf("route mtu %v: outgoing interface %d: %w", dst, got.Index, err)
	}
	mtu := ifi.MTU
	if got.MTU > 0 && got.MTU < uint64(mtu) {
		mtu = int(got.MTU)
	}
	return mtu, nil
}
