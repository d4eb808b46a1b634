package main

import (
	"net"
	"strings"
	"testing"

	"github.com/current-vpn/current/config"
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
