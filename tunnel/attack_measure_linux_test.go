package tunnel

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// What the adversarial test measures of daemon B: its resident memory and
// descriptors from /proc, and its counters through `currentctl metrics`.

// procRSS is the resident set of pid in bytes (VmRSS).
func procRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// procFDs is how many descriptors pid has open.
func procFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// attackScrape runs `currentctl metrics` and parses it with Prometheus's
// own parser. It may run outside the test goroutine.
func attackScrape(ctlBin, sock string) (map[string]*dto.MetricFamily, error) {
	o, err := ctlTry(ctlBin, sock, nil, "metrics")
	if err != nil {
		return nil, err
	}
	if o.code != 0 {
		return nil, fmt.Errorf("currentctl metrics: %s", o)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(o.stdout))
	if err != nil {
		return nil, fmt.Errorf("currentctl metrics does not parse: %v", err)
	}
	return fams, nil
}

// attackMetric adds the samples of family name whose labels include want;
// ok is false when the daemon exports no such family.
func attackMetric(fams map[string]*dto.MetricFamily, name string, want map[string]string) (sum float64, ok bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, true
}

// attackWatch samples a daemon while it is attacked: RSS and descriptors
// every 200 ms, and every second the goroutines and the bytes it holds
// for unidentified input, from its metrics.
type attackWatch struct {
	pid          int
	ctlBin, sock string
	stop, done   chan struct{}

	mu   sync.Mutex
	peak attackPeaks
	err  error // the first failed sample
}

// attackPeaks are the highest values seen; a metric the daemon does not
// export stays at -1.
type attackPeaks struct {
	rss         int64
	fds         int
	goroutines  float64
	unauthBytes float64
}

func watchDaemon(pid int, ctlBin, sock string) *attackWatch {
	w := &attackWatch{pid: pid, ctlBin: ctlBin, sock: sock, stop: make(chan struct{}), done: make(chan struct{}),
		peak: attackPeaks{goroutines: -1, unauthBytes: -1}}
	go w.run()
	return w
}

func (w *attackWatch) run() {
	defer close(w.done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		w.sample(n%5 == 0)
		select {
		case <-w.stop:
			w.sample(true)
			return
		case <-tick.C:
		}
	}
}

func (w *attackWatch) sample(metrics bool) {
	rss, err := procRSS(w.pid)
	fds, ferr := procFDs(w.pid)
	var fams map[string]*dto.MetricFamily
	var merr error
	if metrics {
		fams, merr = attackScrape(w.ctlBin, w.sock)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range []error{err, ferr, merr} {
		if e != nil && w.err == nil {
			w.err = e
		}
	}
	w.peak.rss = max(w.peak.rss, rss)
	w.peak.fds = max(w.peak.fds, fds)
	if fams == nil {
		return
	}
	if v, ok := attackMetric(fams, "current_goroutines", nil); ok {
		w.peak.goroutines = max(w.peak.goroutines, v)
	}
	if v, ok := attackMetric(fams, "current_unauthenticated_bytes", nil); ok {
		w.peak.unauthBytes = max(w.peak.unauthBytes, v)
	}
}

// finish stops the sampling and returns the peaks and the first error.
func (w *attackWatch) finish() (attackPeaks, error) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak, w.err
}
