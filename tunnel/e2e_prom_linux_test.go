package tunnel

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/current-vpn/current/metrics/metricstest"
	dto "github.com/prometheus/client_model/go"
	"github.com/vishvananda/netns"
)

// End-to-end test of the Prometheus endpoint (issue 17): two real
// daemons, A serving per-peer series on 127.0.0.1 inside its namespace,
// B aggregates only on a unix socket; both scraped over HTTP and parsed
// with the exposition-format parser.

// withMetrics adds lines to the [interface] table of the configuration
// file at path.
func withMetrics(t *testing.T, path string, lines ...string) {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(text), "[interface]\n", "[interface]\n"+strings.Join(lines, "\n")+"\n", 1)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dialIn connects to addr from inside the network namespace ns: the
// socket is created there and keeps working after the thread returns to
// its own namespace.
func dialIn(ns, network, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	c, dialErr := net.DialTimeout(network, addr, 5*time.Second)
	if err := netns.Set(orig); err != nil {
		// The thread stays locked, so it dies with its goroutine
		// instead of running others in the wrong namespace.
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("back to the test's namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return c, dialErr
}

// metricsClient is an HTTP client whose every connection is dial().
func metricsClient(dial func() (net.Conn, error)) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext:       func(context.Context, string, string) (net.Conn, error) { return dial() },
		},
	}
}

// promScrape fetches url and parses it with the text parser.
func promScrape(t *testing.T, c *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s %v\n%s", url, resp.Status, err, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	return metricstest.Parse(t, string(body))
}

func TestE2EPrometheus(t *testing.T) {
	start := time.Now()
	dir, bin, nsA, nsB, _, _ := e2eSetup(t)
	ctlBin := buildCurrentctl(t, dir)
	ka, kb := writeKey(t, dir, "a"), writeKey(t, dir, "b")
	cfgA := writeConfigT(t, dir, "a", "10.99.0.1/24", "fd99::1/64", kb, "192.0.2.2:51900", "10.99.0.2/32", "fd99::2/128", "udp")
	cfgB := writeConfigT(t, dir, "b", "10.99.0.2/24", "fd99::2/64", ka, "192.0.2.1:51900", "10.99.0.1/32", "fd99::1/128", "udp")
	const addrA = "127.0.0.1:9586"
	sockB := filepath.Join(dir, "b-metrics.sock")
	withMetrics(t, cfgA, fmt.Sprintf("metrics_listen = %q", addrA))
	withMetrics(t, cfgB, fmt.Sprintf("metrics_listen = \"unix:%s\"", sockB), "metrics_per_peer = false")
	a := startDaemon(t, dir, nsA, bin, cfgA)
	b := startDaemon(t, dir, nsB, bin, cfgB)
	a.waitNotify(t, "READY=1")
	b.waitNotify(t, "READY=1")
	e2ePing(t, nsA, "10.99.0.2")

	clientA := metricsClient(func() (net.Conn, error) { return dialIn(nsA, "tcp", addrA) })
	clientB := metricsClient(func() (net.Conn, error) { return net.Dial("unix", sockB) })
	urlA := "http://" + addrA + "/metrics"

	// A: per-peer series.
	fams := promScrape(t, clientA, urlA)
	peer := map[string]string{"interface": "cur0", "peer": "peer"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for pk, pv := range peer {
			m[pk] = pv
		}
		return m
	}
	if v := metricstest.Value(t, fams, "current_peer_handshakes_total", with("outcome", "established")); v < 1 {
		t.Errorf("handshakes established = %v with the tunnel up", v)
	}
	if v := metricstest.Value(t, fams, "current_handshake_duration_seconds", map[string]string{"interface": "cur0"}); v < 1 {
		t.Errorf("handshake duration count = %v", v)
	}
	for name, want := range map[string]float64{"current_peer_up": 1, "current_peers": 1} {
		if v := metricstest.Value(t, fams, name, map[string]string{"interface": "cur0"}); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := metricstest.Value(t, fams, "current_peer_transport", with("transport", "udp")); v != 1 {
		t.Errorf("transport udp = %v", v)
	}
	if v := metricstest.Value(t, fams, "current_peer_epoch_age_seconds", peer); v < 0 || v > time.Since(start).Seconds()+1 {
		t.Errorf("epoch age %v, not within the test", v)
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Error("no Go runtime or process families")
	}
	// Every family of `currentctl metrics` is on the endpoint with the
	// same type and help, and the endpoint has no current_ family the
	// control socket lacks: dashboards work with either.
	sockA := filepath.Join(ctlDir(dir, nsA), "cur0.sock")
	ctlFams := metricstest.Parse(t, ctlMust(t, ctlBin, sockA, "metrics"))
	for name, cf := range ctlFams {
		f := fams[name]
		if f == nil || f.GetType() != cf.GetType() || f.GetHelp() != cf.GetHelp() {
			t.Errorf("%s: endpoint has %v, currentctl metrics %v %q", name, f, cf.GetType(), cf.GetHelp())
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "current_") && ctlFams[name] == nil {
			t.Errorf("%s is on the endpoint but not in currentctl metrics", name)
		}
	}
	// Nothing but /metrics.
	for _, path := range []string{"/", "/metrics/", "/debug/pprof/"} {
		resp, err := clientA.Get("http://" + addrA + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
	}

	// B: aggregates only, over its unix socket.
	if fi, err := os.Stat(sockB); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("metrics socket: %v %v", fi.Mode(), err)
	}
	aggr := promScrape(t, clientB, "http://current/metrics")
	for name, f := range aggr {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "peer" || l.GetName() == "public_key" {
					t.Errorf("%s has label %s in aggregate-only mode", name, l.GetName())
				}
			}
		}
	}
	ifl := map[string]string{"interface": "cur0"}
	if v := metricstest.Value(t, aggr, "current_peer_up", ifl); v != 1 {
		t.Errorf("aggregate peers up = %v", v)
	}
	if hs := metricstest.Value(t, aggr, "current_peer_handshakes_total", map[string]string{"outcome": "established"}); hs < 1 {
		t.Errorf("aggregate handshakes established = %v", hs)
	}
	if v := metricstest.Value(t, aggr, "current_peer_rx_packets_total", ifl); v < 1 {
		t.Errorf("aggregate rx packets = %v after pings", v)
	}
	if aggr["current_peer_epoch"] != nil {
		t.Error("current_peer_epoch in aggregate-only mode")
	}

	stopDaemon(t, a)
	stopDaemon(t, b)
	if _, err := os.Stat(sockB); !os.IsNotExist(err) {
		t.Errorf("metrics socket left after the daemon stopped: %v", err)
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}
