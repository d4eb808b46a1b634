package config

import (
	"net/netip"
	"strings"
	"time"
)

// The host settings of [interface]: the resolvers the host uses while the
// tunnel is up, and the commands run around bringing it up and down.

// Defaults and limits of the host settings.
const (
	DefaultHookTimeout = 30 * time.Second
	MinHookTimeout     = time.Second
	MaxHookTimeout     = time.Hour
	// MaxDNS bounds dns and dns_search: each entry becomes a line of
	// resolv.conf or an element of a D-Bus call, and a list of hundreds
	// is a generated file gone wrong, not a setup.
	MaxDNS = 16
	// MaxHooks bounds each hook list and MaxHookLen each command, for
	// the same reason.
	MaxHooks   = 32
	MaxHookLen = 4096
)

// Hooks are the commands run around the tunnel's lifetime, in order, by
// /bin/sh -c with %i replaced by the interface name.
type Hooks struct {
	PreUp    []string // before the device exists; a failure aborts the start
	PostUp   []string // once the tunnel is up; a failure aborts the start
	PreDown  []string // before the tunnel is taken down; failures are logged
	PostDown []string // after it is gone; failures are logged
}

// lists names the hook lists as the file spells them.
func (h *Hooks) lists() []struct {
	key  string
	list *[]string
} {
	return []struct {
		key  string
		list *[]string
	}{{"pre_up", &h.PreUp}, {"post_up", &h.PostUp}, {"pre_down", &h.PreDown}, {"post_down", &h.PostDown}}
}

// hostFields decodes the host settings of [interface].
func (d *decoder) hostFields(ifc *Interface) []field {
	fs := []field{
		{"dns", func(v any, at keyPath) { ifc.DNS = d.addrs(v, at) }},
		{"dns_search", func(v any, at keyPath) { ifc.DNSSearch = d.strings(v, at, "corp.example") }},
		{"hook_timeout", func(v any, at keyPath) { d.duration(v, at, &ifc.HookTimeout) }},
	}
	for _, l := range ifc.Hooks.lists() {
		fs = append(fs, field{l.key, func(v any, at keyPath) { *l.list = d.strings(v, at, "iptables -A ...") }})
	}
	return fs
}

// strings decodes an array of strings, reporting each bad element at its
// own line. A single string is refused with a hint: one spelling per value.
func (d *decoder) strings(v any, at keyPath, example string) []string {
	arr, ok := v.([]any)
	if !ok {
		if s, isStr := v.(string); isStr {
			d.fail(at, at, "must be an array of strings, e.g. [%q]", s)
			return nil
		}
		d.fail(at, at, "must be an array of strings such as [%q], not %s", example, typeName(v))
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			d.fail(at, at.index(i), "element %d must be a string, not %s", i, typeName(e))
			return nil
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// addrs decodes an array of IP addresses (no prefix length).
func (d *decoder) addrs(v any, at keyPath) []netip.Addr {
	strs := d.strings(v, at, "10.77.0.1")
	if strs == nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(strs))
	bad := false
	for i, s := range strs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			if p, perr := netip.ParsePrefix(s); perr == nil {
				d.fail(at, at.index(i), "%q is a prefix; a resolver is an address (did you mean %q?)", s, p.Addr().String())
			} else {
				d.fail(at, at.index(i), "%q is not an IP address, such as \"10.77.0.1\" or \"fd77::1\"", s)
			}
			bad = true
			continue
		}
		out = append(out, a)
	}
	if bad {
		return nil
	}
	return out
}

func (ifc *Interface) validateHost(v *validator, p keyPath) {
	dns := p.key("dns")
	if len(ifc.DNS) > MaxDNS {
		v.add(dns, "%d resolvers; at most %d", len(ifc.DNS), MaxDNS)
	}
	seen := map[netip.Addr]int{}
	for i, a := range ifc.DNS {
		switch {
		case !a.IsValid():
			v.addElem(dns, i, "invalid address")
			continue
		case a.Zone() != "":
			// resolv.conf and systemd-resolved's SetLinkDNS both
			// take the link from elsewhere; a zone would be dropped.
			v.addElem(dns, i, "%s: a resolver address takes no zone", a)
		case a.IsUnspecified() || a.IsMulticast():
			v.addElem(dns, i, "%s cannot be a resolver's address", a)
		}
		if j, dup := seen[a]; dup {
			v.addElem(dns, i, "%s is listed twice (also dns[%d])", a, j)
		} else {
			seen[a] = i
		}
	}
	search := p.key("dns_search")
	if len(ifc.DNSSearch) > 0 && len(ifc.DNS) == 0 {
		v.add(search, "needs dns: the search domains are resolved by the tunnel's resolvers, and none is set")
	}
	if len(ifc.DNSSearch) > MaxDNS {
		v.add(search, "%d domains; at most %d", len(ifc.DNSSearch), MaxDNS)
	}
	for i, s := range ifc.DNSSearch {
		if strings.HasPrefix(s, "~") {
			v.addElem(search, i, "%q: routing-only domains (~) are not supported; list the domain without ~ (a full tunnel routes all names to its resolvers by itself)", s)
			continue
		}
		if err := checkHostname(s); err != nil {
			v.addElem(search, i, "%q is not a domain name", s)
		}
	}
	for _, l := range ifc.Hooks.lists() {
		at := p.key(l.key)
		if len(*l.list) > MaxHooks {
			v.add(at, "%d commands; at most %d", len(*l.list), MaxHooks)
		}
		for i, c := range *l.list {
			switch {
			case strings.TrimSpace(c) == "":
				v.addElem(at, i, "empty command")
			case len(c) > MaxHookLen:
				v.addElem(at, i, "command is %d bytes long; at most %d (put a longer one in a script)", len(c), MaxHookLen)
			case strings.IndexByte(c, 0) >= 0:
				v.addElem(at, i, "command contains a NUL byte")
			}
		}
	}
	if t := ifc.HookTimeout; t != 0 && (t < MinHookTimeout || t > MaxHookTimeout) {
		v.add(p.key("hook_timeout"), "%s is out of range: use %s..%s, or 0 for the default (%s)", fmtDuration(t), fmtDuration(MinHookTimeout), fmtDuration(MaxHookTimeout), fmtDuration(DefaultHookTimeout))
	}
}

// HookTimeoutOrDefault is the time each hook may run: HookTimeout, or
// DefaultHookTimeout when that is 0 (a Config built in code).
func (ifc *Interface) HookTimeoutOrDefault() time.Duration {
	if ifc.HookTimeout == 0 {
		return DefaultHookTimeout
	}
	return ifc.HookTimeout
}

// FullTunnel reports whether some peer's allowed IPs include a default
// route (0.0.0.0/0 or ::/0): then every DNS query must go to the tunnel's
// resolvers, or it leaks to the local network's.
func (c *Config) FullTunnel() bool {
	for _, p := range c.Peers {
		for _, a := range p.AllowedIPs {
			if a.Bits() == 0 {
				return true
			}
		}
	}
	return false
}

// hostOut is the host settings in Marshal's shape.
type hostOut struct {
	DNS         []string `toml:"dns,omitempty"`
	DNSSearch   []string `toml:"dns_search,omitempty"`
	PreUp       []string `toml:"pre_up,omitempty"`
	PostUp      []string `toml:"post_up,omitempty"`
	PreDown     []string `toml:"pre_down,omitempty"`
	PostDown    []string `toml:"post_down,omitempty"`
	HookTimeout string   `toml:"hook_timeout"`
}

func (ifc *Interface) hostOut() hostOut {
	h := hostOut{
		DNSSearch:   ifc.DNSSearch,
		PreUp:       ifc.Hooks.PreUp,
		PostUp:      ifc.Hooks.PostUp,
		PreDown:     ifc.Hooks.PreDown,
		PostDown:    ifc.Hooks.PostDown,
		HookTimeout: fmtDuration(ifc.HookTimeout),
	}
	for _, a := range ifc.DNS {
		h.DNS = append(h.DNS, a.String())
	}
	return h
}
