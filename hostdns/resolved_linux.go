package hostdns

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	resolvedBus     = "org.freedesktop.resolve1"
	resolvedPath    = "/org/freedesktop/resolve1"
	resolvedManager = "org.freedesktop.resolve1.Manager"
	// resolvedRunDir exists while systemd-resolved runs; resolvectl and
	// wg-quick's helpers test it first.
	resolvedRunDir = "/run/systemd/resolve"
	// busTimeout bounds each call: a bus or a service that does not
	// answer must not hang the daemon's start or its shutdown.
	busTimeout = 10 * time.Second
)

// call is one method call of the Manager, bounded by busTimeout.
func call(obj dbus.BusObject, method string, args ...any) *dbus.Call {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	return obj.CallWithContext(ctx, resolvedManager+"."+method, 0, args...)
}

// Resolved configures a link through systemd-resolved's D-Bus API
// (org.freedesktop.resolve1(5)): SetLinkDNS, SetLinkDomains and
// SetLinkDefaultRoute, undone with RevertLink.
type Resolved struct {
	conn *dbus.Conn
}

// NewResolved uses conn, a connection to the system bus, which it closes
// when the configuration is reverted.
func NewResolved(conn *dbus.Conn) *Resolved { return &Resolved{conn: conn} }

func (r *Resolved) Name() string { return backendResolved }

// Record is empty of entries: the link's settings go with the link.
func (r *Resolved) Record(string) Record { return Record{Backend: backendResolved} }

// linkDNS is the a(iay) argument of SetLinkDNS: address family and bytes.
type linkDNS struct {
	Family  int32
	Address []byte
}

// linkDomain is the a(sb) argument of SetLinkDomains.
type linkDomain struct {
	Domain      string
	RoutingOnly bool
}

// resolvedArgs maps s onto SetLinkDNS, SetLinkDomains and
// SetLinkDefaultRoute. A full tunnel gets the routing domain "~." and the
// default route: every query goes to its servers. A split tunnel keeps
// the default route only when it has no domain of its own, since its
// servers would otherwise never be asked.
func resolvedArgs(s Settings) ([]linkDNS, []linkDomain, bool) {
	dns := make([]linkDNS, 0, len(s.Servers))
	for _, a := range s.Servers {
		fam := int32(2) // AF_INET
		if a.Is6() && !a.Is4In6() {
			fam = 10 // AF_INET6
		}
		a = a.Unmap()
		dns = append(dns, linkDNS{Family: fam, Address: a.AsSlice()})
	}
	domains := make([]linkDomain, 0, len(s.Search)+1)
	for _, d := range s.Search {
		domains = append(domains, linkDomain{Domain: d})
	}
	if s.FullTunnel {
		domains = append(domains, linkDomain{Domain: ".", RoutingOnly: true})
	}
	return dns, domains, s.FullTunnel || len(s.Search) == 0
}

func (r *Resolved) Apply(ifname string, ifindex int, s Settings) (Applied, error) {
	dns, domains, defaultRoute := resolvedArgs(s)
	obj := r.conn.Object(resolvedBus, resolvedPath)
	link := &resolvedLink{conn: r.conn, obj: obj, ifname: ifname, ifindex: int32(ifindex)}
	calls := []struct {
		method string
		args   []any
	}{
		{"SetLinkDNS", []any{link.ifindex, dns}},
		{"SetLinkDomains", []any{link.ifindex, domains}},
		{"SetLinkDefaultRoute", []any{link.ifindex, defaultRoute}},
	}
	for _, c := range calls {
		if err := call(obj, c.method, c.args...).Err; err != nil {
			// Whatever was set goes; the link keeps no half-done state.
			call(obj, "RevertLink", link.ifindex)
			r.conn.Close()
			return nil, fmt.Errorf("systemd-resolved %s on %s: %w", c.method, ifname, err)
		}
	}
	return link, nil
}

type resolvedLink struct {
	conn    *dbus.Conn
	obj     dbus.BusObject
	ifname  string
	ifindex int32
}

func (l *resolvedLink) Revert() error {
	defer l.conn.Close()
	if err := call(l.obj, "RevertLink", l.ifindex).Err; err != nil {
		return fmt.Errorf("systemd-resolved RevertLink on %s: %w", l.ifname, err)
	}
	return nil
}

// resolvedRunning tells, as resolvectl does, whether systemd-resolved is
// the resolver manager: its runtime directory exists and its name has an
// owner on the bus. It returns the bus connection for NewResolved.
func resolvedRunning(runDir string) (*dbus.Conn, bool) {
	if fi, err := os.Stat(runDir); err != nil || !fi.IsDir() {
		return nil, false
	}
	conn, err := connectSystemBus()
	if err != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	var owned bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, resolvedBus).Store(&owned); err != nil || !owned {
		conn.Close()
		return nil, false
	}
	return conn, true
}

// connectSystemBus connects to the system bus within busTimeout. The
// connection's own context cannot bound the handshake: it would close the
// connection when cancelled.
func connectSystemBus() (*dbus.Conn, error) {
	type result struct {
		conn *dbus.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := dbus.ConnectSystemBus()
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.conn, r.err
	case <-time.After(busTimeout):
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("system bus: no answer within %s", busTimeout)
	}
}
