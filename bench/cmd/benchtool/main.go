// Command benchtool is the arithmetic half of bench/tunnel.sh, so the
// script needs neither jq nor python:
//
//	benchtool iperf FILE    summarise one iperf3 --json result as shell
//	                        assignments (bytes, secs, bps, packets, lost,
//	                        pps, lostpct)
//	benchtool updloss SERVER.json START T1 T2...
//	                        packets lost around epoch updates: START and
//	                        Ti are Unix times (seconds, fractional) of the
//	                        client's start and of each update request
//	benchtool report FILE   print the table of medians and ratios from the
//	                        results file the script wrote, and the final
//	                        machine-readable line
//	benchtool rsswatch LOG INTERVAL PID...
//	                        sample VmRSS of the PIDs into LOG (rss.go)
//	benchtool rssmax LOG PID T0:T1...
//	benchtool rssat LOG PID T
//	                        the largest sample in the windows, the first
//	                        sample at or after T, in MiB
//
// The results file has one measurement per line: "FIGURE IMPL VALUE", where
// IMPL is veth, current or wireguard-go; "# ..." lines are notes, and
// "info KEY VALUE..." lines are printed under the table.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: benchtool iperf|report FILE | updloss SERVER.json START T... | rsswatch LOG INTERVAL PID... | rssmax LOG PID T0:T1... | rssat LOG PID T")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "updloss":
		err = updloss(os.Args[2], os.Args[3:])
	case "iperf":
		err = iperf(os.Args[2])
	case "report":
		err = report(os.Args[2])
	case "rsswatch":
		err = rsswatch(os.Args[2], os.Args[3:])
	case "rssmax":
		err = rssmax(os.Args[2], os.Args[3:])
	case "rssat":
		err = rssat(os.Args[2], os.Args[3:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

type sum struct {
	Seconds     float64 `json:"seconds"`
	Bytes       float64 `json:"bytes"`
	BPS         float64 `json:"bits_per_second"`
	Packets     *int64  `json:"packets"`
	LostPackets *int64  `json:"lost_packets"`
	LostPercent float64 `json:"lost_percent"`
}

type result struct {
	Start struct {
		TestStart struct {
			Protocol string `json:"protocol"`
		} `json:"test_start"`
	} `json:"start"`
	End struct {
		Sum         *sum `json:"sum"`
		SumSent     *sum `json:"sum_sent"`
		SumReceived *sum `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperf prints what the receiver got. For TCP that is end.sum_received.
// For UDP, iperf3 puts the receiver's view (packets the sender sent, of
// which lost_packets never arrived) in end.sum, and newer versions also in
// end.sum_received; delivered packets are packets - lost_packets.
func iperf(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if r.Error != "" {
		return fmt.Errorf("%s: iperf3: %s", path, r.Error)
	}
	udp := r.Start.TestStart.Protocol == "UDP"
	var s *sum
	switch {
	case udp && r.End.SumReceived != nil && r.End.SumReceived.Packets != nil && r.End.SumReceived.LostPackets != nil:
		s = r.End.SumReceived
	case udp:
		s = r.End.Sum
	default:
		s = r.End.SumReceived
	}
	if s == nil || s.Seconds <= 0 {
		return fmt.Errorf("%s: no receiver summary", path)
	}
	fmt.Printf("bytes=%.0f secs=%.3f bps=%.0f", s.Bytes, s.Seconds, s.BPS)
	if udp {
		if s.Packets == nil || s.LostPackets == nil {
			return fmt.Errorf("%s: no packet counts", path)
		}
		// iperf3 counts bytes sent for UDP; the delivered byte count is
		// packets that arrived times the datagram size, which the caller
		// knows. pps is what arrived.
		delivered := *s.Packets - *s.LostPackets
		fmt.Printf(" packets=%d lost=%d delivered=%d pps=%.0f lostpct=%.3f",
			*s.Packets, *s.LostPackets, delivered, float64(delivered)/s.Seconds, s.LostPercent)
	}
	fmt.Println()
	return nil
}

type figure struct {
	name  string
	unit  string
	lower bool // lower is better (CPU, loss)
}

// figures fixes the table's order and units; unknown figures follow.
var figures = []figure{
	{"tcp", "Mbit/s", false},
	{"tcp4", "Mbit/s", false},
	{"tcprev", "Mbit/s", false},
	{"udp1400pps", "pkt/s", false},
	{"udp1400loss", "%", true},
	{"udp1392pps", "pkt/s", false},
	{"udp1392loss", "%", true},
	{"tcp_cpuA", "CPU s/GB", true},
	{"tcp_cpuB", "CPU s/GB", true},
	{"tcp4_cpuA", "CPU s/GB", true},
	{"tcp4_cpuB", "CPU s/GB", true},
	{"tcprev_cpuA", "CPU s/GB", true},
	{"tcprev_cpuB", "CPU s/GB", true},
	{"udp1400_cpuA", "CPU s/GB", true},
	{"udp1400_cpuB", "CPU s/GB", true},
	{"udp1392_cpuA", "CPU s/GB", true},
	{"udp1392_cpuB", "CPU s/GB", true},
	{"rss_idle_A", "MiB", true},
	{"rss_idle_B", "MiB", true},
	{"rss_tcp_peak_A", "MiB", true},
	{"rss_tcp_peak_B", "MiB", true},
	{"rss_udp_peak_A", "MiB", true},
	{"rss_udp_peak_B", "MiB", true},
	{"rss_after30_A", "MiB", true},
	{"rss_after30_B", "MiB", true},
}

var impls = []string{"veth", "current", "wireguard-go"}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	vals := map[string]map[string][]float64{}
	var order []string
	var infos []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "info "); ok {
			infos = append(infos, rest)
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 3 {
			return fmt.Errorf("%s: bad line %q", path, line)
		}
		v, err := strconv.ParseFloat(fs[2], 64)
		if err != nil {
			return fmt.Errorf("%s: bad value in %q", path, line)
		}
		if vals[fs[0]] == nil {
			vals[fs[0]] = map[string][]float64{}
			order = append(order, fs[0])
		}
		vals[fs[0]][fs[1]] = append(vals[fs[0]][fs[1]], v)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	list := []figure{}
	known := map[string]bool{}
	for _, fg := range figures {
		known[fg.name] = true
		if vals[fg.name] != nil {
			list = append(list, fg)
		}
	}
	for _, name := range order {
		if !known[name] {
			list = append(list, figure{name: name})
		}
	}

	fmt.Printf("%-14s %-9s %12s %12s %14s %9s  %s\n", "figure", "unit", "veth", "current", "wireguard-go", "cur/wg", "runs (current | wireguard-go)")
	ratio := map[string]string{}
	for _, fg := range list {
		m := map[string]float64{}
		cells := make([]string, len(impls))
		for i, impl := range impls {
			m[impl] = median(vals[fg.name][impl])
			cells[i] = fmtVal(m[impl], len(vals[fg.name][impl]) > 0)
		}
		r := "n/a"
		if len(vals[fg.name]["current"]) > 0 && len(vals[fg.name]["wireguard-go"]) > 0 && m["wireguard-go"] != 0 {
			r = fmt.Sprintf("%.3f", m["current"]/m["wireguard-go"])
		}
		ratio[fg.name] = r
		fmt.Printf("%-14s %-9s %12s %12s %14s %9s  %s | %s\n", fg.name, fg.unit, cells[0], cells[1], cells[2], r,
			runs(vals[fg.name]["current"]), runs(vals[fg.name]["wireguard-go"]))
	}
	for _, in := range infos {
		fmt.Println(in)
	}
	get := func(k string) string {
		if r, ok := ratio[k]; ok {
			return r
		}
		return "n/a"
	}
	fmt.Printf("current/wireguard-go tcp=%s tcp4=%s tcprev=%s udp1400pps=%s\n",
		get("tcp"), get("tcp4"), get("tcprev"), get("udp1400pps"))
	return nil
}

func fmtVal(v float64, ok bool) string {
	if !ok || math.IsNaN(v) {
		return "-"
	}
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func runs(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmtVal(x, true)
	}
	return strings.Join(s, " ")
}

// updloss reads the iperf3 server's own JSON (run with -i 0.1) and
// attributes lost datagrams to epoch updates: every interval that overlaps
// [Ti - 0.1 s, Ti + 0.5 s) after some update is "affected"; the median loss
// of the unaffected intervals is the background rate; the loss per update
// is the affected intervals' loss above that background, divided by the
// number of updates.
func updloss(path string, args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("updloss: need START")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r struct {
		Intervals []struct {
			Sum struct {
				Start   float64 `json:"start"`
				End     float64 `json:"end"`
				Lost    int64   `json:"lost_packets"`
				Packets int64   `json:"packets"`
			} `json:"sum"`
		} `json:"intervals"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Intervals) == 0 {
		return fmt.Errorf("%s: no intervals", path)
	}
	start, err := strconv.ParseFloat(args[0], 64)
	if err != nil {
		return err
	}
	var ups []float64
	for _, a := range args[1:] {
		t, err := strconv.ParseFloat(a, 64)
		if err != nil {
			return err
		}
		ups = append(ups, t-start)
	}
	var quiet []float64
	var affLost, affN, total int64
	for _, iv := range r.Intervals {
		s := iv.Sum
		total += s.Lost
		hit := false
		for _, u := range ups {
			if s.End > u-0.1 && s.Start < u+0.5 {
				hit = true
			}
		}
		if hit {
			affLost += s.Lost
			affN++
		} else {
			quiet = append(quiet, float64(s.Lost))
		}
	}
	bg := median(quiet)
	if math.IsNaN(bg) {
		bg = 0
	}
	per := math.NaN()
	if len(ups) > 0 {
		per = (float64(affLost) - bg*float64(affN)) / float64(len(ups))
	}
	fmt.Printf("intervals=%d affected=%d affected_lost=%d background_per_interval=%.1f total_lost=%d per_update=%.1f\n",
		len(r.Intervals), affN, affLost, bg, total, per)
	return nil
}
