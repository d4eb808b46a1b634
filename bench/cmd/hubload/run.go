//go:build linux

package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/session/mls"
)

// opts are run's flags.
type opts struct {
	nsHub, currentd, work, suite string
	hubAddr                      string
	loadPeers                    int
	restartPeers                 []int
	duration                     time.Duration
	update                       time.Duration
	lossLoad                     float64
	senders, window              int
	pingEvery                    time.Duration
	profile, unpacedOnly         bool
	manyOnly                     bool
	updateSync                   bool
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var o opts
	fs.StringVar(&o.nsHub, "ns-hub", "", "network namespace of the hub and the sink")
	fs.StringVar(&o.currentd, "currentd", "", "currentd binary")
	fs.StringVar(&o.work, "work", "", "work directory (keys, configuration, state, logs)")
	fs.StringVar(&o.suite, "suite", config.SuiteName(config.DefaultSuite), "cipher suite")
	fs.StringVar(&o.hubAddr, "hub-addr", "192.0.2.1", "the hub's address on the link")
	fs.IntVar(&o.loadPeers, "peers", 1000, "peers of the load figures (0 skips them)")
	restart := fs.String("restart-peers", "1000,10000", "peer counts of the restart figures (\"\" skips them)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each load phase")
	fs.DurationVar(&o.update, "update", 5*time.Second, "every peer's epoch update interval in the update-loss phase")
	fs.BoolVar(&o.updateSync, "update-sync", false, "arm every peer's first update at the same instant (±10 %), as before session 10: a synchronized storm of commits instead of independent timers")
	fs.Float64Var(&o.lossLoad, "loss-load", 25, "load of the paced phases, percent of the measured aggregate capacity")
	fs.IntVar(&o.senders, "senders", 1, "sender goroutines (one leaves the hub the other core of a 2-core machine)")
	fs.IntVar(&o.window, "window", 64, "handshakes in flight")
	fs.DurationVar(&o.pingEvery, "ping", time.Second, "each peer's ping interval in the restart figures")
	fs.BoolVar(&o.profile, "profile", false, "run each hub's currentd with --cpuprofile WORK/hub-N/cpu.pprof (restarts: cpu-1.pprof, cpu-2.pprof, ...)")
	fs.BoolVar(&o.unpacedOnly, "unpaced-only", false, "measure only the two unpaced phases (for profiling the data path)")
	fs.BoolVar(&o.manyOnly, "many-only", false, "measure only the many-peer unpaced phase (for profiling the data path)")
	_ = fs.Parse(args)
	if o.nsHub == "" || o.currentd == "" || o.work == "" {
		return fmt.Errorf("run needs -ns-hub, -currentd and -work")
	}
	var err error
	if o.restartPeers, err = parseCounts(*restart); err != nil {
		return fmt.Errorf("-restart-peers: %w", err)
	}
	suite, err := config.SuiteByName(o.suite)
	if err != nil {
		return err
	}
	n := max(o.loadPeers, slices.Max(append([]int{0}, o.restartPeers...)))
	say("generating %d peer keys (%s)", n, o.suite)
	keys := make([]config.PrivateKey, n)
	pubs := make([]config.PublicKey, n)
	for i := range keys {
		if keys[i], err = config.GeneratePrivateKey(suite); err != nil {
			return err
		}
		if pubs[i], err = keys[i].Public(); err != nil {
			return err
		}
	}
	defer func() {
		for _, k := range keys {
			k.Zero()
		}
	}()
	hubKey, err := config.GeneratePrivateKey(suite)
	if err != nil {
		return err
	}
	defer hubKey.Zero()
	hubPub, err := hubKey.Public()
	if err != nil {
		return err
	}
	sinkCtl := net.JoinHostPort(o.hubAddr, "9001")
	stopSink, sinkPID, err := startSink(o.nsHub, sinkCtl)
	if err != nil {
		return err
	}
	defer stopSink()
	sc, err := dialSink(sinkCtl)
	if err != nil {
		return err
	}
	r := &runner{o: o, suite: suite, keys: keys, pubs: pubs, hubKey: hubKey, hubPub: hubPub.Bytes(), sink: sc, sinkPID: sinkPID}
	return r.run()
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "== "+format+"\n", args...)
}

// startSink runs "hubload sink" in the hub's namespace and waits for it.
func startSink(ns, ctlAddr string) (stop func(), pid int, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.Command("ip", "netns", "exec", ns, self, "sink", "-udp", fmt.Sprintf("0.0.0.0:%d", sinkPort), "-ctl", ctlAddr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		stop()
		return nil, 0, fmt.Errorf("sink did not start (%q, %v)", line, err)
	}
	return stop, cmd.Process.Pid, nil
}

type runner struct {
	o       opts
	suite   mls.CipherSuiteID
	keys    []config.PrivateKey
	pubs    []config.PublicKey
	hubKey  config.PrivateKey
	hubPub  []byte
	sink    *sinkClient
	sinkPID int
	rows    []row
	sum     summary
}

// row is one line of the table.
type row struct{ name, value, note string }

func (r *runner) add(name, value, note string) {
	r.rows = append(r.rows, row{name, value, note})
	fmt.Fprintf(os.Stderr, "   %-34s %s  %s\n", name, value, note)
}
