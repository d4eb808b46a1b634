package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/metrics/metricstest"
)

// TestListenMetrics: no metrics_listen is no endpoint (and a nil one is
// safe to close); a taken port is an error before the tunnel starts.
func TestListenMetrics(t *testing.T) {
	m, err := listenMetrics(&config.Interface{})
	if m != nil || err != nil {
		t.Fatalf("without metrics_listen: %v, %v", m, err)
	}
	m.Close()
	if err := m.serve(nil, nil); err != nil {
		t.Fatal(err)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	at, err := config.ParseMetricsListen(taken.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listenMetrics(&config.Interface{MetricsListen: at}); err == nil || !strings.Contains(err.Error(), "metrics_listen") {
		t.Errorf("on a taken port: %v", err)
	}
	taken.Close()
	m, err = listenMetrics(&config.Interface{MetricsListen: at})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	m.Close()
}

// TestMetricsEndpoint serves the endpoint of an in-process daemon whose
// peer is connected, and checks it against the control socket's metrics:
// the same current_ families with the same types and help, and the
// handshake counted.
func TestMetricsEndpoint(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfgA, devA, _ := tcpPair(t, log)
	dir := t.TempDir()
	ctlc, err := listenControl(filepath.Join(dir, "run"), cfgA, filepath.Join(dir, "a.toml"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctlc.Close)
	ctlc.serve(devA)
	// Port 0 is no valid metrics_listen, but lets the test run anywhere.
	ifc := cfgA.Interface
	ifc.MetricsListen = config.MetricsListen{Network: "tcp", Address: "127.0.0.1:0"}
	m, err := listenMetrics(&ifc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	url := "http://" + m.ln.Addr().String() + "/metrics"
	if err := m.serve(ctlc.b, log); err != nil {
		t.Fatal(err)
	}

	scrape := func() map[string]*dto.MetricFamily {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %v", resp.Status, err)
		}
		return metricstest.Parse(t, string(body))
	}
	established := func(fams map[string]*dto.MetricFamily) float64 {
		for _, s := range fams["current_peer_handshakes_total"].GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == "established" {
					return s.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	fams := scrape()
	for deadline := time.Now().Add(10 * time.Second); established(fams) < 1; fams = scrape() {
		if time.Now().After(deadline) {
			t.Fatalf("no established handshake in the metrics: %v", fams["current_peer_handshakes_total"])
		}
		time.Sleep(20 * time.Millisecond)
	}

	c, err := ctl.Dial(ctlc.srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	text, err := c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	viaSocket := metricstest.Parse(t, text)
	for name, f := range viaSocket {
		if g := fams[name]; g == nil || g.GetType() != f.GetType() || g.GetHelp() != f.GetHelp() {
			t.Errorf("%s: endpoint %v, control socket %v %q", name, g, f.GetType(), f.GetHelp())
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "current_") && viaSocket[name] == nil {
			t.Errorf("%s only on the endpoint", name)
		}
	}
}
