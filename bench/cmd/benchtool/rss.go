package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/current-vpn/current/bench/internal/procstat"
)

// The resident-set figures. rsswatch samples VmRSS of the daemons into a
// log while the script runs its loads; rssmax and rssat read that log for
// the windows and instants the script recorded, so that sampling stays one
// cheap process rather than a fork per sample and daemon.

// rsswatch OUT INTERVAL PID... appends "UNIXTIME PID KB" to OUT for every
// PID every INTERVAL seconds, until none of them is left.
func rsswatch(out string, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("rsswatch: need INTERVAL and PIDs")
	}
	secs, err := strconv.ParseFloat(args[0], 64)
	if err != nil || secs <= 0 {
		return fmt.Errorf("rsswatch: bad interval %q", args[0])
	}
	pids := args[1:]
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	tick := time.NewTicker(time.Duration(secs * float64(time.Second)))
	defer tick.Stop()
	for {
		now := float64(time.Now().UnixNano()) / 1e9
		alive := 0
		var b strings.Builder
		for _, pid := range pids {
			n, err := strconv.Atoi(pid)
			if err != nil {
				return fmt.Errorf("rsswatch: PID %q", pid)
			}
			kb, err := procstat.VmRSSKB(n)
			if err != nil {
				continue
			}
			alive++
			fmt.Fprintf(&b, "%.3f %s %d\n", now, pid, kb)
		}
		if alive == 0 {
			return nil
		}
		if _, err := f.WriteString(b.String()); err != nil {
			return err
		}
		<-tick.C
	}
}

type rssSample struct {
	t  float64
	kb int64
}

// rssLog reads the samples of one PID from a rsswatch log.
func rssLog(path, pid string) ([]rssSample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []rssSample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 || fs[1] != pid {
			continue
		}
		t, err1 := strconv.ParseFloat(fs[0], 64)
		kb, err2 := strconv.ParseInt(fs[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		out = append(out, rssSample{t, kb})
	}
	return out, sc.Err()
}

// rssmax LOG PID T0:T1... prints the largest sample of PID within any of
// the windows, in MiB.
func rssmax(path string, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("rssmax: need PID and windows")
	}
	s, err := rssLog(path, args[0])
	if err != nil {
		return err
	}
	var wins [][2]float64
	for _, w := range args[1:] {
		a, b, ok := strings.Cut(w, ":")
		t0, err1 := strconv.ParseFloat(a, 64)
		t1, err2 := strconv.ParseFloat(b, 64)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("rssmax: bad window %q", w)
		}
		wins = append(wins, [2]float64{t0, t1})
	}
	best := int64(-1)
	for _, x := range s {
		for _, w := range wins {
			if x.t >= w[0] && x.t <= w[1] && x.kb > best {
				best = x.kb
			}
		}
	}
	if best < 0 {
		return fmt.Errorf("rssmax: no sample of %s in the windows", args[0])
	}
	fmt.Printf("%.1f\n", float64(best)/1024)
	return nil
}

// rssat LOG PID T prints the first sample of PID at or after T, in MiB.
func rssat(path string, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("rssat: need PID and T")
	}
	s, err := rssLog(path, args[0])
	if err != nil {
		return err
	}
	t, err := strconv.ParseFloat(args[1], 64)
	if err != nil {
		return err
	}
	best := rssSample{t: math.Inf(1)}
	for _, x := range s {
		if x.t >= t && x.t < best.t {
			best = x
		}
	}
	if math.IsInf(best.t, 1) {
		return fmt.Errorf("rssat: no sample of %s at or after %.3f", args[0], t)
	}
	fmt.Printf("%.1f\n", float64(best.kb)/1024)
	return nil
}
