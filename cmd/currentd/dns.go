package main

import (
	"log/slog"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/hostdns"
)

// applyDNS points the host's resolver at the configuration's dns servers
// on the link ifindex; without dns it does nothing. A full tunnel (a /0
// among the peers' allowed IPs) takes every query.
func applyDNS(cfg *config.Config, ifindex int, log *slog.Logger) (*hostdns.Active, error) {
	ifc := &cfg.Interface
	if len(ifc.DNS) == 0 {
		return nil, nil
	}
	b, err := hostdns.Detect()
	if err != nil {
		return nil, err
	}
	s := hostdns.Settings{Servers: ifc.DNS, Search: ifc.DNSSearch, FullTunnel: cfg.FullTunnel()}
	a, err := hostdns.Apply(b, ifc.StateDir, ifc.Name, ifindex, s)
	if err != nil {
		return nil, err
	}
	log.Info("DNS set", "backend", a.Backend(), "servers", ifc.DNS, "search", ifc.DNSSearch, "full_tunnel", s.FullTunnel)
	return a, nil
}
