package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/current-vpn/current/ctl"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hubStatus is a hub with n established peers.
func hubStatus(n int) ctl.Status {
	now := time.Now()
	st := ctl.Status{Time: now, Interface: ctl.InterfaceStatus{Name: "cur0"},
		Unauthenticated:    ctl.GuardStatus{Refused: map[string]uint64{"rate_host": 1}},
		HandshakeDurations: ctl.Histogram{Bounds: []float64{0.01, 0.1, 1}, Counts: []uint64{1, 2, 3}, Count: 3, Sum: 1}}
	for i := range n {
		st.Peers = append(st.Peers, ctl.PeerStatus{Name: fmt.Sprintf("laptop-%05d", i), State: ctl.StateEstablished,
			LastEpochChange: &now, LastHandshake: &now, ActiveTransport: "udp", RxBytes: uint64(i)})
	}
	return st
}

// BenchmarkScrape10000Peers is one scrape of a hub with 10,000 peers,
// from the status snapshot to the encoded response; series is what
// Prometheus stores per scrape.
func BenchmarkScrape10000Peers(b *testing.B) {
	st := hubStatus(10000)
	for _, aggregate := range []bool{false, true} {
		b.Run(fmt.Sprintf("aggregate=%v", aggregate), func(b *testing.B) {
			c := &Collector{Families: func() []ctl.Family { return ctl.Families(st, ctl.VersionInfo{}) }, AggregateOnly: aggregate}
			h, err := Handler(c, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			var body string
			cpu0 := cpuTime(b)
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
				body = rec.Body.String()
			}
			// CPU time, unlike wall time, hardly depends on what else
			// the shared machine runs.
			b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
			series := 0
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, "current_") {
					series++
				}
			}
			b.ReportMetric(float64(series), "current_series")
			b.ReportMetric(float64(len(body)), "bytes/scrape")
		})
	}
}
