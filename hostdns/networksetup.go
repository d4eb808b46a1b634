package hostdns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// Networksetup configures the resolver on macOS as wg-quick's darwin
// backend does: networksetup(8) sets the tunnel's servers and search
// domains on every enabled network service, after noting what each had,
// and Revert puts that back. Every query then goes to the tunnel's
// servers, full tunnel or not: macOS has no per-link routing domain that
// networksetup could set. The notes go into the state record, so that a
// successor restores them after a crash (Recover).
//
// The parsing and the argument lists are plain functions, tested on any
// host; the program only runs on macOS (detect_darwin.go).
type Networksetup struct {
	// Path is the networksetup program.
	Path string

	// saved is what Record found, which Apply changes and Revert
	// restores; saveErr is why it could not be found.
	saved   []ServiceDNS
	saveErr error
}

// ServiceDNS is one network service's resolver settings as found before
// Apply (empty lists: none set, DHCP's are used).
type ServiceDNS struct {
	Name    string   `json:"name"`
	Servers []string `json:"servers,omitempty"`
	Search  []string `json:"search,omitempty"`
}

const (
	backendNetworksetup = "networksetup"
	networksetupTimeout = 10 * time.Second

	// Bounds on what a record may hold, far above what a Mac has.
	maxServices      = 16
	maxServiceName   = 64
	maxSavedServers  = 8
	maxSavedSearches = 8
)

// networksetupPath is the system's networksetup; a variable so that
// tests can put a fake in its place.
var networksetupPath = "/usr/sbin/networksetup"

// NewNetworksetup returns the backend with the system's networksetup.
func NewNetworksetup() *Networksetup { return &Networksetup{Path: networksetupPath} }

func (n *Networksetup) Name() string { return backendNetworksetup }

// Record notes every enabled service's settings as they are now; Apply
// changes exactly those services.
func (n *Networksetup) Record(string) Record {
	n.saved, n.saveErr = n.snapshot()
	return Record{Backend: backendNetworksetup, Services: n.saved}
}

func (n *Networksetup) snapshot() ([]ServiceDNS, error) {
	out, err := n.run("-listallnetworkservices")
	if err != nil {
		return nil, err
	}
	var saved []ServiceDNS
	for _, svc := range parseServices(out) {
		servers, err := n.run("-getdnsservers", svc)
		if err != nil {
			return nil, err
		}
		search, err := n.run("-getsearchdomains", svc)
		if err != nil {
			return nil, err
		}
		saved = append(saved, ServiceDNS{Name: svc, Servers: parseSetting(servers), Search: parseSetting(search)})
	}
	if err := checkServices(saved); err != nil {
		return nil, err
	}
	return saved, nil
}

func (n *Networksetup) Apply(_ string, _ int, s Settings) (Applied, error) {
	if n.saveErr != nil {
		return nil, n.saveErr
	}
	servers := make([]string, len(s.Servers))
	for i, a := range s.Servers {
		servers[i] = a.String()
	}
	applied := &networksetupApplied{n: n}
	for _, svc := range n.saved {
		applied.changed = append(applied.changed, svc)
		for _, args := range setArgs(ServiceDNS{Name: svc.Name, Servers: servers, Search: s.Search}) {
			if _, err := n.run(args...); err != nil {
				return nil, errors.Join(err, applied.Revert())
			}
		}
	}
	return applied, nil
}

type networksetupApplied struct {
	n       *Networksetup
	changed []ServiceDNS
}

func (a *networksetupApplied) Revert() error { return a.n.restore(a.changed) }

// restore puts the noted settings back, going on past failures.
func (n *Networksetup) restore(saved []ServiceDNS) error {
	var errs []error
	for _, svc := range saved {
		for _, args := range setArgs(svc) {
			if _, err := n.run(args...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (n *Networksetup) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), networksetupTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.Path, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("networksetup %s: %v: %s", strings.Join(args, " "), err, bounded(out))
	}
	return string(out), nil
}

// parseServices reads `networksetup -listallnetworkservices`: a note
// line, then one service per line, disabled ones marked with '*'.
func parseServices(out string) []string {
	var svcs []string
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "*") || strings.HasPrefix(line, "An asterisk (*)") {
			continue
		}
		svcs = append(svcs, line)
	}
	return svcs
}

// parseSetting reads `networksetup -getdnsservers` or
// `-getsearchdomains`: one value per line, or a sentence saying there
// are none.
func parseSetting(out string) []string {
	var vals []string
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, " ") {
			// "There aren't any DNS Servers set on Wi-Fi."
			continue
		}
		vals = append(vals, line)
	}
	return vals
}

// setArgs are the networksetup calls that give svc its servers and
// search domains; "Empty" clears a list.
func setArgs(svc ServiceDNS) [][]string {
	servers, search := svc.Servers, svc.Search
	if len(servers) == 0 {
		servers = []string{"Empty"}
	}
	if len(search) == 0 {
		search = []string{"Empty"}
	}
	return [][]string{
		append([]string{"-setdnsservers", svc.Name}, servers...),
		append([]string{"-setsearchdomains", svc.Name}, search...),
	}
}

// checkServices keeps a record to what networksetup could have said:
// its values are passed back to networksetup as arguments.
func checkServices(svcs []ServiceDNS) error {
	if len(svcs) > maxServices {
		return fmt.Errorf("%d network services, more than %d", len(svcs), maxServices)
	}
	for _, s := range svcs {
		if s.Name == "" || len(s.Name) > maxServiceName || strings.HasPrefix(s.Name, "-") || strings.HasPrefix(s.Name, "*") ||
			strings.ContainsFunc(s.Name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return fmt.Errorf("bad network service name %q", s.Name)
		}
		if len(s.Servers) > maxSavedServers || len(s.Search) > maxSavedSearches {
			return fmt.Errorf("service %q: too many servers or search domains", s.Name)
		}
		for _, a := range s.Servers {
			if _, err := netip.ParseAddr(a); err != nil {
				return fmt.Errorf("service %q: server %q is not an address", s.Name, a)
			}
		}
		for _, d := range s.Search {
			if !searchDomain(d) {
				return fmt.Errorf("service %q: bad search domain %q", s.Name, d)
			}
		}
	}
	return nil
}

// searchDomain accepts a DNS name of letters, digits, '-', '_' and dots.
func searchDomain(d string) bool {
	if d == "" || len(d) > 253 || d[0] == '-' || d[0] == '.' {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
