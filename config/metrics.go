package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// MetricsListen is where the Prometheus endpoint listens (metrics_listen):
// a TCP address or a unix socket. The zero value means no endpoint.
type MetricsListen struct {
	// Network is "tcp" or "unix".
	Network string
	// Address is host:port for tcp (host an IP literal or "localhost"),
	// an absolute path for unix.
	Address string
}

// unixPrefix marks a unix socket in metrics_listen.
const unixPrefix = "unix:"

// ParseMetricsListen reads "127.0.0.1:9586", "[::1]:9586",
// "localhost:9586" or "unix:/run/current/metrics.sock".
func ParseMetricsListen(s string) (MetricsListen, error) {
	if path, ok := strings.CutPrefix(s, unixPrefix); ok {
		if !filepath.IsAbs(path) {
			return MetricsListen{}, fmt.Errorf("%q: the socket path must be absolute (e.g. \"unix:/run/current/metrics.sock\")", s)
		}
		return MetricsListen{Network: "unix", Address: filepath.Clean(path)}, nil
	}
	host, port, ok := splitHostPort(s)
	if !ok {
		return MetricsListen{}, fmt.Errorf("%q is not host:port or unix:/path (e.g. \"127.0.0.1:9586\")", s)
	}
	if _, err := parsePort(port); err != nil {
		return MetricsListen{}, fmt.Errorf("%q: %v", s, err)
	}
	if host != "localhost" {
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return MetricsListen{}, fmt.Errorf("%q: the host must be an IP address or localhost", s)
		}
	}
	return MetricsListen{Network: "tcp", Address: s}, nil
}

// IsZero reports whether no endpoint is configured.
func (m MetricsListen) IsZero() bool { return m.Network == "" }

// String is the metrics_listen text ParseMetricsListen reads.
func (m MetricsListen) String() string {
	if m.Network == "unix" {
		return unixPrefix + m.Address
	}
	return m.Address
}

// Private reports whether only this host can reach the endpoint: a unix
// socket, a loopback address or localhost.
func (m MetricsListen) Private() bool {
	if m.Network == "unix" {
		return true
	}
	host, _, ok := splitHostPort(m.Address)
	if !ok {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func (d *decoder) metricsListen(v any, at keyPath, dst *MetricsListen) {
	var s string
	if !d.str(v, at, &s) {
		return
	}
	m, err := ParseMetricsListen(s)
	if err != nil {
		d.fail(at, at, "%v", err)
		return
	}
	*dst = m
}

func (d *decoder) boolean(v any, at keyPath, dst *bool) {
	b, ok := v.(bool)
	if !ok {
		d.fail(at, at, "must be true or false, not %s", typeName(v))
		return
	}
	*dst = b
}

// validateMetrics refuses an endpoint other hosts can reach unless the
// file says so: it shows every peer's name, key and traffic, and a
// typo ("0.0.0.0" for "127.0.0.1") should not publish that.
func (ifc *Interface) validateMetrics(v *validator, p keyPath) {
	if ifc.MetricsListen.IsZero() || ifc.MetricsListen.Private() || ifc.MetricsListenPublic {
		return
	}
	v.add(p.key("metrics_listen"), "%s is reachable from other hosts and the metrics name every peer; use a loopback address or unix:/path, or set metrics_listen_public = true", ifc.MetricsListen)
}
