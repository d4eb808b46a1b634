//go:build darwin || freebsd

package main

import (
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/current-vpn/current/routing"
	"github.com/current-vpn/current/tunnel"
)

// endpointPoll is how often the peers' addresses are looked at between
// route changes: a peer that roams is followed within it.
const endpointPoll = 2 * time.Second

// primeEndpoints gives link the configured endpoints before the tunnel
// installs its routes, so that a default route through the tunnel never
// catches the first handshake.
func primeEndpoints(link *routing.Link, peers []tunnel.PeerConfig, log *slog.Logger) {
	if err := link.SetEndpoints(configEndpoints(peers)); err != nil {
		log.Warn("endpoint routes", "err", err)
	}
}

// followEndpoints keeps link's endpoint routes on the peers' current
// addresses and on the underlay's current default route, as wg-quick's
// route monitor does on these systems, until stop is called.
func followEndpoints(dev *tunnel.Device, link *routing.Link, log *slog.Logger) (stop func()) {
	quit := make(chan struct{})
	changed := make(chan struct{}, 1)
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	watchDone, err := routing.WatchRoutes(quit, signal)
	if err != nil {
		log.Warn("route changes will be noticed within the poll interval only", "err", err, "interval", endpointPoll)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(endpointPoll)
		defer tick.Stop()
		var have []netip.Addr
		var lastErr string
		for {
			routesChanged := false
			select {
			case <-quit:
				return
			case <-changed:
				routesChanged = true
			case <-tick.C:
			}
			want := peerEndpoints(dev.PeerStatus())
			slices.SortFunc(want, func(a, b netip.Addr) int { return a.Compare(b) })
			want = slices.Compact(want)
			var err error
			switch {
			case !slices.Equal(want, have):
				err = link.SetEndpoints(want)
				have = want
			case routesChanged:
				err = link.RefreshEndpoints()
			}
			// Logged when it changes, not at every poll.
			if msg := errText(err); msg != lastErr {
				if err != nil {
					log.Warn("endpoint routes", "err", err)
				}
				lastErr = msg
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		if watchDone != nil {
			<-watchDone
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
