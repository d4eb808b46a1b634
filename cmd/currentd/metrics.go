package main

import (
	"log/slog"
	"net"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/metrics"
)

// metricsEndpoint is the Prometheus endpoint of metrics_listen; a nil one
// (no metrics_listen) does nothing.
type metricsEndpoint struct {
	ln            net.Listener
	aggregateOnly bool
	srv           *metrics.Server
}

// listenMetrics opens the endpoint's socket before the tunnel starts, as
// listenControl does, so that a taken port stops the daemon early.
func listenMetrics(ifc *config.Interface) (*metricsEndpoint, error) {
	if ifc.MetricsListen.IsZero() {
		return nil, nil
	}
	ln, err := metrics.Listen(ifc.MetricsListen)
	if err != nil {
		return nil, err
	}
	return &metricsEndpoint{ln: ln, aggregateOnly: ifc.MetricsAggregateOnly}, nil
}

// serve answers scrapes with b's status: the same families as
// `currentctl metrics`.
func (m *metricsEndpoint) serve(b *backend, log *slog.Logger) error {
	if m == nil {
		return nil
	}
	c := &metrics.Collector{
		Families:      func() []ctl.Family { return ctl.Families(b.Status(), b.Version()) },
		AggregateOnly: m.aggregateOnly,
	}
	h, err := metrics.Handler(c, log)
	if err != nil {
		return err
	}
	m.srv = metrics.Serve(m.ln, h, log)
	return nil
}

// Close stops the endpoint; it may be called more than once.
func (m *metricsEndpoint) Close() {
	if m == nil {
		return
	}
	if m.srv != nil {
		m.srv.Close() // closes ln too
	} else if m.ln != nil {
		m.ln.Close()
	}
	m.srv, m.ln = nil, nil
}
