package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/metrics/metricstest"
)

func testFamilies() []ctl.Family {
	peer := func(name string) []ctl.Label {
		return []ctl.Label{{Name: "interface", Value: "cur0"}, {Name: ctl.PeerLabel, Value: name}, {Name: ctl.PublicKeyLabel, Value: "key-" + name}}
	}
	return []ctl.Family{
		{Name: "current_peers", Type: ctl.GaugeType, Help: "Peers.", Samples: []ctl.Sample{{Labels: []ctl.Label{{Name: "interface", Value: "cur0"}}, Value: 2}}},
		{Name: "current_peer_rx_bytes_total", Type: ctl.CounterType, Help: "Bytes.", Aggregate: ctl.Sum,
			Samples: []ctl.Sample{{Labels: peer("a"), Value: 10}, {Labels: peer("b"), Value: 32}}},
		{Name: "current_peer_epoch", Type: ctl.GaugeType, Help: "Epoch.", Aggregate: ctl.Omit,
			Samples: []ctl.Sample{{Labels: peer("a"), Value: 3}}},
		{Name: "current_handshake_duration_seconds", Type: ctl.HistogramType, Help: "Durations.",
			Samples: []ctl.Sample{{Labels: []ctl.Label{{Name: "interface", Value: "cur0"}}, Histogram: &ctl.Histogram{Bounds: []float64{0.1, 1}, Counts: []uint64{2, 3}, Count: 5, Sum: 9}}}},
	}
}

// serveTest serves c on a loopback port and returns its base URL.
func serveTest(t *testing.T, c *Collector) string {
	t.Helper()
	ln, err := Listen(config.MetricsListen{Network: "tcp", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := Handler(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := Serve(ln, h, slog.New(slog.DiscardHandler))
	t.Cleanup(s.Close)
	return "http://" + s.Addr().String()
}

func scrape(t *testing.T, client *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s\n%s", url, resp.Status, body)
	}
	return metricstest.Parse(t, string(body))
}

func TestEndpoint(t *testing.T) {
	base := serveTest(t, &Collector{Families: testFamilies})
	fams := scrape(t, http.DefaultClient, base+Path)
	rx := fams["current_peer_rx_bytes_total"]
	if rx.GetType() != dto.MetricType_COUNTER || len(rx.GetMetric()) != 2 || rx.GetHelp() != "Bytes." {
		t.Errorf("rx family %v", rx)
	}
	h := fams["current_handshake_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 5 || h.GetSampleSum() != 9 || h.GetBucket()[0].GetCumulativeCount() != 2 {
		t.Errorf("histogram %v", h)
	}
	for _, name := range []string{"go_goroutines", "process_open_fds", "current_peer_epoch", "current_peers"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	for path, want := range map[string]int{"/": 404, "/metrics/": 404, "/metricsx": 404, "/debug/pprof/": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, want)
		}
	}
	resp, err := http.Post(base+Path, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}
}

func TestEndpointAggregateOnly(t *testing.T) {
	base := serveTest(t, &Collector{Families: testFamilies, AggregateOnly: true})
	fams := scrape(t, http.DefaultClient, base+Path)
	rx := fams["current_peer_rx_bytes_total"].GetMetric()
	if len(rx) != 1 || rx[0].GetCounter().GetValue() != 42 || len(rx[0].GetLabel()) != 1 {
		t.Errorf("aggregated rx %v", rx)
	}
	if fams["current_peer_epoch"] != nil {
		t.Error("epoch is not aggregated away")
	}
}

// TestEndpointBadSample: a sample the client library refuses is an error
// of the scrape that names it, and the rest is still served.
func TestEndpointBadSample(t *testing.T) {
	bad := func() []ctl.Family {
		return append(testFamilies(), ctl.Family{Name: "current_broken", Type: ctl.HistogramType, Help: "Broken.",
			Samples: []ctl.Sample{{Histogram: &ctl.Histogram{Bounds: []float64{1}}}}})
	}
	base := serveTest(t, &Collector{Families: bad})
	fams := scrape(t, http.DefaultClient, base+Path)
	if fams["current_broken"] != nil || fams["current_peers"] == nil {
		t.Errorf("families %v", fams)
	}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.sock")
	at := config.MetricsListen{Network: "unix", Address: path}
	// A socket file nobody listens on (a daemon that was killed) is
	// replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	ln, err := Listen(at)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
	if _, err := Listen(at); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Listen: %v", err)
	}
	h, err := Handler(&Collector{Families: testFamilies}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := Serve(ln, h, slog.New(slog.DiscardHandler))
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	if fams := scrape(t, client, "http://current"+Path); fams["current_peers"] == nil {
		t.Error("no current_peers over the unix socket")
	}
	client.CloseIdleConnections()
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
}

// TestSlowClient: a client that never finishes its headers is cut off
// after ReadHeaderTimeout instead of holding a connection.
func TestSlowClient(t *testing.T) {
	base := serveTest(t, &Collector{Families: testFamilies})
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n")
	c.SetReadDeadline(time.Now().Add(readHeaderTimeout + 5*time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the server did not close the connection: %v", err)
	}
}
