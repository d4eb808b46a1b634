package main

import (
	"log/slog"

	"github.com/current-vpn/current/routing"
	"github.com/current-vpn/current/tunnel"
)

// primeEndpoints and followEndpoints have nothing to do on Linux: the
// full tunnel's policy rules let the daemon's marked packets out by the
// underlay wherever its peers are (routing/fulltunnel_linux.go).
func primeEndpoints(*routing.Link, []tunnel.PeerConfig, *slog.Logger) {}

func followEndpoints(*tunnel.Device, *routing.Link, *slog.Logger) (stop func()) { return func() {} }
