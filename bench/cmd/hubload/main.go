//go:build linux

// Command hubload drives one real currentd hub with many active peers
// (issue 17) and reports what bench/README.md ("Hub at scale") lists:
// aggregate throughput against a single peer in the same run, fairness
// (Jain's index), added latency, the hub's CPU per GB and RSS per peer,
// packets lost to epoch updates, and the time until every peer carries
// traffic again after the hub restarts (SIGTERM, then kill -9).
//
// bench/hub.sh runs it as root inside the peers' namespace:
//
//	hubload run -ns-hub NS -currentd BIN -work DIR [flags]
//
// and it starts the sink (hubload sink) and currentd in the hub's
// namespace itself, so that it can time the restarts.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hubload run|sink [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "sink":
		fs := flag.NewFlagSet("sink", flag.ExitOnError)
		udp := fs.String("udp", "0.0.0.0:9000", "probe address")
		ctlAddr := fs.String("ctl", "", "control address (TCP)")
		_ = fs.Parse(os.Args[2:])
		err = runSink(*udp, *ctlAddr)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hubload:", err)
		os.Exit(1)
	}
}

// parseCounts reads a comma-separated list of positive counts.
func parseCounts(list string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > maxPeers {
			return nil, fmt.Errorf("%q is not a peer count (1..%d)", f, maxPeers)
		}
		ns = append(ns, n)
	}
	return ns, nil
}
