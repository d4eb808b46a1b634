package hostdns

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Settings are what a tunnel asks of the host's resolver.
type Settings struct {
	Servers []netip.Addr
	Search  []string
	// FullTunnel sends every query to Servers, not only those for
	// Search: the tunnel carries the default route.
	FullTunnel bool
}

const (
	backendResolvconf = "resolvconf"
	backendResolved   = "systemd-resolved"
)

// Backend is one way of configuring the host's resolver for a link.
type Backend interface {
	// Name identifies the backend in logs and in the state record.
	Name() string
	// Record says what Apply for ifname will leave on the host, for a
	// successor to undo should this process die before reverting.
	Record(ifname string) Record
	// Apply configures s for the link ifname (kernel index ifindex).
	Apply(ifname string, ifindex int, s Settings) (Applied, error)
}

// Applied is a configuration in force; Revert undoes it.
type Applied interface {
	Revert() error
}

// ErrUnavailable is returned by Detect when neither systemd-resolved nor
// resolvconf can be used.
var ErrUnavailable = errors.New("neither systemd-resolved nor resolvconf is available")

// bounded trims program output kept for error messages and logs.
func bounded(b []byte) string {
	const max = 512
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

// resolvConfText is the resolv.conf fragment of s, as wg-quick writes it.
func resolvConfText(s Settings) string {
	var b strings.Builder
	for _, a := range s.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if len(s.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(s.Search, " "))
	}
	return b.String()
}
