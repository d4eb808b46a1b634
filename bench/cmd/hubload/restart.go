//go:build linux

package main

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/current-vpn/current/bench/internal/procstat"
)

// The restart figures: every peer pings through the hub, the hub is
// stopped (SIGTERM, then kill -9) and started again, and the peers' own
// liveness rule (rescue.go) brings them back.

// restarts measures a SIGTERM restart and a kill -9 restart of h with
// every peer of f pinging through it.
func (r *runner) restarts(h *hub, f *fleet) error {
	n := len(f.peers)
	// Every peer's first ping at a random moment of the first
	// interval: all at once would be a burst of n pings at the hub.
	for _, p := range f.peers {
		p.mu.Lock()
		p.pingAt = time.Time{}
		p.mu.Unlock()
	}
	f.pingEvery.Store(int64(pingInterval(r.o.pingEvery, n)))
	defer f.pingEvery.Store(0)
	if err := waitPongs(f, monoNow(), 60*time.Second); err != nil {
		// Measured anyway: the restart figure then says how many never
		// carried traffic again, and this row why.
		r.add(fmt.Sprintf("n=%d before the restarts", n), "not every peer carries traffic", err.Error())
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		name := "SIGTERM"
		if sig == syscall.SIGKILL {
			name = "kill -9"
		}
		say("n=%d: %s restart", n, name)
		hs0, rs0, _, _ := f.outcomes()
		rescues0, again0 := f.rescues(), f.rescuesAfterUp()
		stopTook := h.stop(sig)
		tool0, _ := procstat.CPU(os.Getpid())
		mark := monoNow()
		f.mark.Store(mark)
		f.markWall.Store(time.Now().UnixNano())
		for _, p := range f.peers {
			p.mu.Lock()
			p.upToPong = 0
			p.mu.Unlock()
		}
		t0, err := h.start()
		if err != nil {
			return err
		}
		ready := time.Since(t0)
		hub0, _ := h.usage()
		stopProfile := r.profileTool(h, name)
		waitErr := waitPongs(f, mark, restartWait)
		stopProfile()
		back := backTimes(f, mark)
		hub1, _ := h.usage()
		tool1, _ := procstat.CPU(os.Getpid())
		hs1, rs1, _, _ := f.outcomes()
		// A hub that cannot answer its control socket now (it did
		// once, in start) leaves its counts out, not the figure.
		hc, err := h.counts()
		hubNote := fmt.Sprintf("hub counts resumed %d, failed resumptions %d, handshakes %d, %d cookie challenges, refused %s",
			hc.resumed, hc.resumeFailed, hc.handshakes, hc.cookies, nonzero(hc.refused))
		if err != nil {
			hubNote = fmt.Sprintf("hub counts unavailable (%v)", err)
		}
		secs := math.NaN()
		value := fmt.Sprintf("%d of %d peers carried no traffic within %v", n-len(back), n, restartWait)
		if waitErr == nil {
			secs = back[len(back)-1].Seconds()
			value = fmt.Sprintf("%.2f s until every peer carried traffic", secs)
		}
		resumed, fresh := rs1-rs0, hs1-hs0
		rescues := f.rescues() - rescues0
		again := f.rescuesAfterUp() - again0
		upToPong := f.upToPongs()
		r.add(fmt.Sprintf("n=%d %s restart", n, name), value,
			fmt.Sprintf("from the new currentd's start: half the peers back after %s, 90 %% after %s, 99 %% after %s (it answered control after %.2f s; the old one took %.2f s to exit); peers resumed %d (of %d rescues started, %d of them by peers whose resumption had been answered and whose traffic had not), handshook afresh %d; from a session's establishment to its first pong: p50 %s, p99 %s, max %s; %s; hub CPU %.1f s, tool CPU %.1f s",
				share(back, n, 0.5), share(back, n, 0.9), share(back, n, 0.99), ready.Seconds(), stopTook.Seconds(), resumed, rescues, again, fresh, quantile(upToPong, 0.5), quantile(upToPong, 0.99), quantile(upToPong, 1), hubNote, hub1.Seconds()-hub0.Seconds(), (tool1-tool0).Seconds()))
		if n == 10000 && sig == syscall.SIGTERM {
			r.sum.restart10kS = secs
			// The hub's count: saved sessions resumed, at most one per
			// peer (a rescue of a live session is not counted there).
			if err == nil {
				r.sum.resumedShare = float64(hc.resumed) / float64(n)
			}
		}
	}
	return nil
}

// profileTool writes the tool's own CPU profile of a restart beside the
// hub's (tool-SIGNAL.pprof) when profiling, until the returned function
// is called: the tool's share of the machine is part of the figure.
func (r *runner) profileTool(h *hub, signal string) func() {
	if !r.o.profile {
		return func() {}
	}
	path := filepath.Join(h.dir, "tool-"+strings.ReplaceAll(signal, " ", "")+".pprof")
	fh, err := os.Create(path)
	if err != nil {
		say("tool profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(fh); err != nil {
		say("tool profile: %v", err)
		fh.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		fh.Close()
	}
}

// maxPingRate bounds the pings of all peers together, per second: 10,000
// peers pinging every second would be a load test of their own.
const maxPingRate = 5000

// pingInterval is each of n peers' ping interval: at least min, and long
// enough for maxPingRate.
func pingInterval(min time.Duration, n int) time.Duration {
	return max(min, time.Duration(n)*time.Second/maxPingRate)
}

// waitPongs waits until every peer got a pong after mark (mono ns).
func waitPongs(f *fleet, mark int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		for _, p := range f.peers {
			if p.pong.Load() <= mark {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d peers got no pong within %v (%s; %s)", missing, len(f.peers), timeout, f.firstError(), f.describeMissing(mark))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describeMissing says what the peers without a pong after mark are
// doing, for the error message.
func (f *fleet) describeMissing(mark int64) string {
	var est, awaiting, cand, first int
	first = -1
	for _, p := range f.peers {
		if p.pong.Load() > mark {
			continue
		}
		if first < 0 {
			first = p.id
		}
		p.mu.Lock()
		if p.s != nil && p.s.Established() {
			est++
		}
		if p.awaiting {
			awaiting++
		}
		if p.cand != nil {
			cand++
		}
		p.mu.Unlock()
	}
	return fmt.Sprintf("of them %d established, %d awaiting an answer, %d with a rescue under way; the first is p%d", est, awaiting, cand, first)
}

// nonzero prints the counts of m that are not zero, by name.
func nonzero(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if parts == nil {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// restartWait bounds the wait for every peer after a restart.
const restartWait = 3 * time.Minute

// backTimes are the times from mark to each peer's first pong after it,
// sorted, for the peers that had one.
func backTimes(f *fleet, mark int64) []time.Duration {
	var out []time.Duration
	for _, p := range f.peers {
		if t := p.firstPong.Load(); t > mark {
			out = append(out, time.Duration(t-mark))
		}
	}
	slices.Sort(out)
	return out
}

// upToPongs are the peers' times from establishment to their first pong
// after the mark, sorted, for the peers that had one.
func (f *fleet) upToPongs() []time.Duration {
	var out []time.Duration
	for _, p := range f.peers {
		p.mu.Lock()
		if p.upToPong > 0 {
			out = append(out, p.upToPong)
		}
		p.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

// quantile is the q-quantile of sorted durations, "n/a" of none.
func quantile(d []time.Duration, q float64) string {
	if len(d) == 0 {
		return "n/a"
	}
	k := min(max(int(math.Ceil(q*float64(len(d))))-1, 0), len(d)-1)
	return fmt.Sprintf("%.0f ms", float64(d[k])/float64(time.Millisecond))
}

// share is when the fraction q of n peers was back, from sorted times.
func share(back []time.Duration, n int, q float64) string {
	k := int(math.Ceil(q * float64(n)))
	if k < 1 || k > len(back) {
		return "never"
	}
	return fmt.Sprintf("%.2f s", back[k-1].Seconds())
}
