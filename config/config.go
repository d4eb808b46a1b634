package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// Defaults for keys a file may leave out.
const (
	DefaultInterfaceName = "current0"
	DefaultListenPort    = 51900
	DefaultStateDir      = "/var/lib/current"
	DefaultRekeyInterval = 120 * time.Second
	DefaultRekeyBytes    = 1 << 30
	// DefaultDeadPeerTimeout is session.DefaultGiveUp.
	DefaultDeadPeerTimeout = 60 * time.Second
	DefaultTransport       = TransportUDP
)

// Limits the configuration enforces.
const (
	// MinMTU is the IPv6 minimum link MTU (RFC 8200): the tunnel always
	// carries IPv6, whatever the addresses, so it never goes below.
	MinMTU = 1280
	MaxMTU = 65535
	// MinRekeyInterval keeps a typo ("10ms") from turning the tunnel into
	// a stream of MLS commits, each of which costs a KEM and a signature
	// per side.
	MinRekeyInterval = 10 * time.Second
	// A session whose epoch update goes unanswered is given up after the
	// dead peer timeout; below a few retransmissions' worth (0.5 s
	// doubling) a lossy link would lose sessions that are alive.
	MinDeadPeerTimeout = 5 * time.Second
	// Keepalives are for NAT and stateful firewall mappings, which live
	// from tens of seconds to minutes; outside 1s..1h a value is a mistake.
	MinKeepalive = time.Second
	MaxKeepalive = time.Hour
	// MaxPeerNameLen bounds peer names, which appear in ctl commands and
	// log lines.
	MaxPeerNameLen = 64
)

// Config is a parsed and validated configuration file.
type Config struct {
	Interface Interface
	Peers     []Peer
}

// Interface is the [interface] table: the local end of every tunnel.
type Interface struct {
	// Name is the Linux network interface name.
	Name string
	// PrivateKeyFile is an absolute path. Relative paths are refused
	// rather than resolved: a daemon's working directory is an accident.
	PrivateKeyFile string
	// ListenPort is the UDP and TCP port; 0 lets the kernel pick one,
	// which suits a host that only initiates (peers cannot reach it first).
	ListenPort uint16
	// Addresses are the interface's own addresses, with the prefix length
	// of the attached subnet (host bits set, unlike AllowedIPs).
	Addresses []netip.Prefix
	// MTU is the tunnel MTU; 0 derives it per endpoint from the route's
	// MTU minus our overhead, never below MinMTU.
	MTU int
	// Suite is the MLS cipher suite of every session.
	Suite mls.CipherSuiteID
	// StateDir holds persisted MLS group state for resumption.
	StateDir string
	// ManualRoutes (routes = false) leaves the routes of the peers'
	// allowed IPs to the administrator: a routing daemon on a router, or
	// policy routing of one's own. The allowed IPs still decide which
	// peer a packet goes to and which sources a peer may use.
	ManualRoutes bool
	// Fwmark marks the daemon's sockets and numbers the routing table of
	// a full tunnel (a peer with a /0 allowed prefix); 0 means the
	// daemon's default, 51900. Change it only if that mark means
	// something else on the host.
	Fwmark uint32
	// A session rekeys (an MLS commit with an UpdatePath) after
	// RekeyInterval or after RekeyBytes of traffic, whichever comes first.
	RekeyInterval time.Duration
	RekeyBytes    uint64
	// DeadPeerTimeout is how long an epoch update (or any other control
	// message) the peer does not answer is retried before the session is
	// dropped: the longest a hub keeps the session of a laptop that went
	// to sleep. Zero means DefaultDeadPeerTimeout.
	DeadPeerTimeout time.Duration
	// MetricsListen is where the Prometheus endpoint listens; zero for
	// none. An address other hosts can reach needs MetricsListenPublic.
	MetricsListen       MetricsListen
	MetricsListenPublic bool
	// MetricsAggregateOnly (metrics_per_peer = false) sums the per-peer
	// series over all peers, for hubs with too many peers to scrape.
	MetricsAggregateOnly bool

	// DNS are the resolvers the host uses while the tunnel is up, and
	// DNSSearch its search domains (see host.go and hostdns).
	DNS       []netip.Addr
	DNSSearch []string
	// Hooks run around the tunnel's lifetime, each for at most
	// HookTimeout.
	Hooks       Hooks
	HookTimeout time.Duration

	// PrivateKey is the key read from PrivateKeyFile by Load. Parse leaves
	// it zero; it is never written by Marshal.
	PrivateKey PrivateKey
}

// Peer is one [[peer]] table.
type Peer struct {
	// Name identifies the peer to currentctl and in logs; unique.
	Name string
	// PublicKey is the peer's pinned MLS signature key; unique.
	PublicKey PublicKey
	// Endpoint is where to reach the peer; zero when the peer always
	// initiates (the daemon then learns its address from its packets).
	Endpoint Endpoint
	// AllowedIPs are the prefixes routed to this peer and accepted from
	// it. Each prefix belongs to one peer, but a prefix may contain another
	// peer's (10.0.0.0/8 to a hub, 10.1.0.0/16 to a site): the longest
	// match wins, as in any routing table, which is what hub-and-spoke and
	// site-to-site setups with a default route need. None may be exactly
	// one of Interface.Addresses (see ownAddress).
	AllowedIPs []netip.Prefix
	// PersistentKeepalive is 0 (off) or the interval of keepalives.
	PersistentKeepalive time.Duration
	Transport           Transport
}

// Transport says how to carry a peer's tunnel.
type Transport uint8

const (
	// TransportUDP carries datagram records over UDP; it is the zero value
	// because it is the default.
	TransportUDP Transport = iota
	// TransportTCP carries stream records over TCP, for networks that
	// block or throttle UDP.
	TransportTCP
	// TransportAuto tries UDP, falls back to TCP, and returns to UDP
	// when a background probe gets through.
	TransportAuto
)

var transportNames = [...]string{TransportUDP: "udp", TransportTCP: "tcp", TransportAuto: "auto"}

func (t Transport) String() string {
	if int(t) < len(transportNames) {
		return transportNames[t]
	}
	return fmt.Sprintf("transport(%d)", t)
}

// ParseTransport parses "udp", "tcp" or "auto".
func ParseTransport(s string) (Transport, error) {
	for i, n := range transportNames {
		if s == n {
			return Transport(i), nil
		}
	}
	return 0, fmt.Errorf("%q is not a transport (want udp, tcp or auto)", s)
}

// Endpoint is a peer's address as configured. Host may be a name: it is
// resolved by the daemon, and again when the peer stops answering, so a
// dynamic DNS name keeps working. Nothing here touches DNS.
type Endpoint struct {
	Host string // IP literal (without brackets) or DNS name
	Port uint16
}

// ParseEndpoint parses host:port, with an IPv6 literal in brackets:
// "vpn.example.net:51900", "192.0.2.1:51900", "[2001:db8::1]:51900". The
// port must be numeric: a service name would need a lookup.
func ParseEndpoint(s string) (Endpoint, error) {
	host, port, ok := splitHostPort(s)
	if !ok {
		if !strings.HasPrefix(s, "[") && strings.Count(s, ":") > 1 {
			i := strings.LastIndex(s, ":")
			return Endpoint{}, fmt.Errorf("%q: an IPv6 address must be in brackets, e.g. \"[%s]:%s\"", s, s[:i], s[i+1:])
		}
		return Endpoint{}, fmt.Errorf("%q is not host:port (e.g. \"vpn.example.net:%d\" or \"[2001:db8::1]:%d\")", s, DefaultListenPort, DefaultListenPort)
	}
	p, err := parsePort(port)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%q: %v", s, err)
	}
	e := Endpoint{Host: host, Port: p}
	if err := e.check(); err != nil {
		return Endpoint{}, fmt.Errorf("%q: %v", s, err)
	}
	return e, nil
}

// splitHostPort is net.SplitHostPort without its leniencies: brackets are
// only for IPv6 literals, and an unbracketed host has no colon.
func splitHostPort(s string) (host, port string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", false
	}
	host, port = s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", "", false
		}
		host = host[1 : len(host)-1]
		if !strings.Contains(host, ":") {
			return "", "", false
		}
	} else if strings.ContainsAny(host, ":[]") {
		return "", "", false
	}
	return host, port, true
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// check validates the host and port of an endpoint built in code or parsed.
func (e Endpoint) check() error {
	if e.Port == 0 {
		return fmt.Errorf("port 0 is not a peer's port")
	}
	if e.Host == "" {
		return fmt.Errorf("no host")
	}
	a, err := netip.ParseAddr(e.Host)
	switch {
	case err == nil:
		if a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("%s cannot be a peer's address", a)
		}
		return nil
	case strings.Contains(e.Host, ":"):
		return fmt.Errorf("%q is not an IPv6 address", e.Host)
	}
	return checkHostname(e.Host)
}

// checkHostname accepts DNS names (RFC 1123 labels, plus '_' which real
// internal zones use). A name whose last label is numeric is refused: no
// top-level domain is numeric, so "10.0.0.256" is a mistyped address, not
// a name to look up.
func checkHostname(h string) error {
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q is not a valid host name", h)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q is not a valid host name", h)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not a valid host name", h)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("%q is neither an IP address nor a host name", h)
	}
	return nil
}

// String returns host:port, with brackets around an IPv6 literal.
func (e Endpoint) String() string {
	if e.IsZero() {
		return ""
	}
	if strings.Contains(e.Host, ":") {
		return fmt.Sprintf("[%s]:%d", e.Host, e.Port)
	}
	return fmt.Sprintf("%s:%d", e.Host, e.Port)
}

// IsZero reports whether no endpoint is configured.
func (e Endpoint) IsZero() bool { return e == Endpoint{} }

// AddrPort returns the endpoint as an address when Host is an IP literal,
// so that the daemon can skip resolution.
func (e Endpoint) AddrPort() (netip.AddrPort, bool) {
	a, err := netip.ParseAddr(e.Host)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, e.Port), true
}

// checkInterfaceName applies the kernel's dev_valid_name rules (at most
// IFNAMSIZ-1 = 15 bytes, not "." or "..", no '/', ':' or white space) and
// also refuses non-printable and non-ASCII bytes, which the kernel allows
// but which break ip(8) output, shell scripts and log lines.
func checkInterfaceName(n string) error {
	if n == "" {
		return fmt.Errorf("interface name is empty")
	}
	if len(n) > 15 {
		return fmt.Errorf("%q is longer than 15 bytes, the Linux limit for interface names", n)
	}
	if n == "." || n == ".." {
		return fmt.Errorf("%q is not a valid interface name", n)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == ':' {
			return fmt.Errorf("%q is not a valid interface name (no '/', ':', white space or non-ASCII)", n)
		}
	}
	return nil
}

// checkPeerName keeps names usable unquoted as currentctl arguments and in
// logs.
func checkPeerName(n string) error {
	if n == "" {
		return fmt.Errorf("peer name is empty")
	}
	if len(n) > MaxPeerNameLen {
		return fmt.Errorf("peer name is longer than %d bytes", MaxPeerNameLen)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '@') {
			return fmt.Errorf("%q is not a valid peer name (use letters, digits, '-', '_', '.', '@')", n)
		}
	}
	return nil
}

// Validate checks c as Parse would, for a Config built or changed in code.
// Its errors name keys but no lines. When c.Interface.PrivateKey is set it
// is checked too.
func (c *Config) Validate() error {
	if errs := c.validate(); len(errs) > 0 {
		return errs
	}
	return nil
}

func (c *Config) validate() ErrorList {
	var v validator
	c.Interface.validate(&v)
	c.validatePeers(&v)
	return v.errs
}

type validator struct{ errs ErrorList }

func (v *validator) add(at keyPath, format string, args ...any) {
	v.errs = append(v.errs, newError(at, at, fmt.Sprintf(format, args...), nil))
}

// addElem reports a problem with element i of the array at field.
func (v *validator) addElem(field keyPath, i int, format string, args ...any) {
	v.errs = append(v.errs, newError(field, field.index(i), fmt.Sprintf(format, args...), nil))
}

func (ifc *Interface) validate(v *validator) {
	p := keyPath{}.key("interface")
	if err := checkInterfaceName(ifc.Name); err != nil {
		v.add(p.key("name"), "%v", err)
	}
	checkAbsPath(v, p.key("private_key_file"), ifc.PrivateKeyFile)
	addrs := p.key("addresses")
	seen := map[netip.Addr]int{}
	for i, a := range ifc.Addresses {
		switch {
		case !a.IsValid():
			v.addElem(addrs, i, "invalid address")
			continue
		case a.Addr().IsUnspecified() || a.Addr().IsMulticast():
			v.addElem(addrs, i, "%s cannot be an interface address", a)
		}
		if j, dup := seen[a.Addr()]; dup {
			v.addElem(addrs, i, "%s repeats address %s", a, ifc.Addresses[j])
		} else {
			seen[a.Addr()] = i
		}
	}
	if ifc.MTU != 0 && (ifc.MTU < MinMTU || ifc.MTU > MaxMTU) {
		v.add(p.key("mtu"), "%d is out of range: use 0 (automatic) or %d..%d", ifc.MTU, MinMTU, MaxMTU)
	}
	suiteOK := knownSuite(ifc.Suite)
	if !suiteOK {
		v.add(p.key("suite"), "unsupported suite %s (known suites: %s)", SuiteName(ifc.Suite), strings.Join(SuiteNames(), ", "))
	}
	checkAbsPath(v, p.key("state_dir"), ifc.StateDir)
	if ifc.Fwmark >= 253 && ifc.Fwmark <= 255 {
		// The mark also numbers the full tunnel's routing table.
		v.add(p.key("fwmark"), "%d is a routing table the kernel reserves (default, main, local); pick another mark", ifc.Fwmark)
	}
	if ifc.RekeyInterval < MinRekeyInterval {
		v.add(p.key("rekey_interval"), "%s is too short: the minimum is %s", fmtDuration(ifc.RekeyInterval), fmtDuration(MinRekeyInterval))
	}
	if ifc.DeadPeerTimeout != 0 && ifc.DeadPeerTimeout < MinDeadPeerTimeout {
		v.add(p.key("dead_peer_timeout"), "%s is too short: the minimum is %s", fmtDuration(ifc.DeadPeerTimeout), fmtDuration(MinDeadPeerTimeout))
	}
	if ifc.RekeyBytes == 0 {
		v.add(p.key("rekey_bytes"), "must be more than 0")
	}
	ifc.validateMetrics(v, p)
	ifc.validateHost(v, p)
	if !ifc.PrivateKey.IsZero() && suiteOK && ifc.PrivateKey.Suite() != ifc.Suite {
		v.add(p.key("private_key_file"), "key file %s holds a key for suite %s, but interface.suite is %s",
			ifc.PrivateKeyFile, SuiteName(ifc.PrivateKey.Suite()), SuiteName(ifc.Suite))
	}
}

func checkAbsPath(v *validator, at keyPath, path string) {
	switch {
	case path == "":
		v.add(at, "required key is missing")
	case !filepath.IsAbs(path):
		v.add(at, "%q is not an absolute path", path)
	}
}

func (c *Config) validatePeers(v *validator) {
	type owner struct{ peer, elem int }
	names := map[string]int{}
	keys := map[string]int{}
	routes := map[netip.Prefix]owner{}
	var own string
	if !c.Interface.PrivateKey.IsZero() {
		if pub, err := c.Interface.PrivateKey.Public(); err == nil {
			own = pub.String()
		}
	}
	suiteOK := knownSuite(c.Interface.Suite)
	for i := range c.Peers {
		peer := &c.Peers[i]
		p := keyPath{}.key("peer").index(i)
		if peer.Name == "" {
			v.add(p.key("name"), "required key is missing")
		} else if err := checkPeerName(peer.Name); err != nil {
			v.add(p.key("name"), "%v", err)
		} else if j, dup := names[peer.Name]; dup {
			v.add(p.key("name"), "%q is also the name of peer[%d]; names must be unique", peer.Name, j)
		} else {
			names[peer.Name] = i
		}

		if peer.PublicKey.IsZero() {
			v.add(p.key("public_key"), "required key is missing")
		} else {
			k := peer.PublicKey.String()
			if suiteOK {
				if err := peer.PublicKey.CheckSuite(c.Interface.Suite); err != nil {
					v.add(p.key("public_key"), "%v", err)
				}
			}
			if j, dup := keys[k]; dup {
				v.add(p.key("public_key"), "same key as peer[%d] (%s); each peer needs its own key", j, c.Peers[j].Name)
			} else {
				keys[k] = i
			}
			if k == own {
				v.add(p.key("public_key"), "this is our own public key (from interface.private_key_file), not the peer's")
			}
		}

		if !peer.Endpoint.IsZero() {
			if err := peer.Endpoint.check(); err != nil {
				v.add(p.key("endpoint"), "%v", err)
			}
		}

		aips := p.key("allowed_ips")
		if len(peer.AllowedIPs) == 0 {
			v.add(aips, "required key is missing or empty: a peer needs at least one prefix to route to it")
		}
		for j, pfx := range peer.AllowedIPs {
			if !pfx.IsValid() {
				v.addElem(aips, j, "invalid prefix")
				continue
			}
			if m := pfx.Masked(); m != pfx {
				v.addElem(aips, j, "%q has host bits set (did you mean %s?)", pfx.String(), m)
				continue
			}
			if k := ownAddress(c.Interface.Addresses, pfx); k >= 0 {
				v.addElem(aips, j, "%s is our own address (interface.addresses[%d] = %s): traffic to it stays on this host, so no peer can have it (was the peer's own address meant?)", pfx, k, c.Interface.Addresses[k])
				continue
			}
			if o, dup := routes[pfx]; dup {
				if o.peer == i {
					v.addElem(aips, j, "%s is listed twice", pfx)
				} else {
					v.addElem(aips, j, "%s is already routed to peer[%d] (%s); a prefix can belong to one peer only", pfx, o.peer, c.Peers[o.peer].Name)
				}
				continue
			}
			routes[pfx] = owner{i, j}
		}

		if ka := peer.PersistentKeepalive; ka != 0 && (ka < MinKeepalive || ka > MaxKeepalive) {
			v.add(p.key("persistent_keepalive"), "%s is out of range: use 0 (off) or %s..%s", fmtDuration(ka), fmtDuration(MinKeepalive), fmtDuration(MaxKeepalive))
		}
		if int(peer.Transport) >= len(transportNames) {
			v.add(p.key("transport"), "invalid transport %d", peer.Transport)
		}
	}
}
