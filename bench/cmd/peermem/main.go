// Command peermem measures the memory an idle peer costs in the daemon
// core, configured and established.
//
// Configured (tunnel_idle_peer): it starts a tunnel.Device with N peers (no
// endpoint, so nothing is sent: they only wait to be contacted) over a TUN
// stand-in that never delivers a packet, and reports
//
//	(HeapInuse + StackInuse after) - (HeapInuse + StackInuse before)
//
// divided by N, both read after two forced GCs. That counts each peer's
// state, owner goroutine stack, queues, timers, allowed-IPs entries and
// whatever session state an unconnected peer holds; it excludes the
// device's fixed costs (an empty device's reading is subtracted).
//
// Established (tunnel_established_peer, -established-peers): then every one
// of the N peers completes a real UDP handshake with the same device (the
// device under test, DUT, as responder; the initiators are session.Sessions
// in this process, see established.go), the remote side is dropped, and
// the increment of the same reading over the configured one, divided by N,
// is what establishing adds. tunnel_established_peer_total is configured +
// increment: the figure issue 8 compares with 64 KiB.
//
// The device opens a UDP and a TCP socket on an ephemeral port, and the
// handshakes run over loopback: run it inside a network namespace
// (bench/tunnel.sh does).
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/tunnel"
)

// idleTUN is a TUN that delivers nothing until closed.
type idleTUN struct {
	closed chan struct{}
	once   sync.Once
}

func (t *idleTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	<-t.closed
	return 0, os.ErrClosed
}

func (t *idleTUN) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (t *idleTUN) BatchSize() int                               { return 1 }
func (t *idleTUN) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "peermem:", err)
	os.Exit(1)
}

// lastStack and lastAlloc are StackInuse and HeapAlloc of the last
// inuse reading. HeapAlloc (live objects) next to HeapInuse (spans holding
// them) shows how much of a figure is free space in partly used spans.
var lastStack, lastAlloc uint64

func inuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	lastStack, lastAlloc = m.StackInuse, m.HeapAlloc
	return m.HeapInuse + m.StackInuse
}

// newPeers returns n peer configurations without endpoints and their
// private keys (which only the established figure uses: they are the
// remote side's identities).
func newPeers(s *mls.CipherSuite, n int, transport tunnel.Transport) ([]tunnel.PeerConfig, [][]byte) {
	peers := make([]tunnel.PeerConfig, n)
	privs := make([][]byte, n)
	for i := range peers {
		priv, pub, err := s.GenerateSignatureKeyPair()
		if err != nil {
			fatal(err)
		}
		// 10.128.0.0/9 holds 2^23 /32s: one tunnel address per peer.
		a := netip.AddrFrom4([4]byte{10, byte(128 + i>>16), byte(i >> 8), byte(i)})
		peers[i] = tunnel.PeerConfig{
			Name:       "p" + strconv.Itoa(i),
			PublicKey:  pub,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(a, 32)},
			Transport:  transport,
		}
		privs[i] = priv
	}
	return peers, privs
}

// startDevice runs a DUT with cfg over an idle TUN and returns its reading
// once every goroutine has started and parked.
func startDevice(cfg tunnel.Config) (*tunnel.Device, uint64, func()) {
	t := &idleTUN{closed: make(chan struct{})}
	d, err := tunnel.New(cfg, t, nil)
	if err != nil {
		fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	return d, inuse(), func() { d.Close(); t.Close() }
}

func measure(s *mls.CipherSuite, n int, transport tunnel.Transport, establish bool) {
	priv, _, err := s.GenerateSignatureKeyPair()
	if err != nil {
		fatal(err)
	}
	peers, privs := newPeers(s, n, transport)
	cfg := tunnel.Config{
		Suite:      s.ID,
		PrivateKey: priv,
		ListenPort: 0,
		MTU:        1420,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		// No epoch updates: 10,000 handshakes can take longer than the
		// default 120 s interval, and an update towards a remote that is
		// gone would be retransmitted while we measure. A scheduled
		// update is only a deadline, so idle peers cost the same.
		RekeyInterval: -1,
		RekeyBytes:    -1,
	}
	// The baseline is a device without peers, so the fixed costs (TUN
	// reader buffers, sockets, listeners) cancel out.
	before := inuse()
	_, empty, closeEmpty := startDevice(cfg)
	closeEmpty()
	fixed := int64(empty) - int64(before)

	before = inuse()
	stackBefore := lastStack
	cfg.Peers = peers
	d, configured, closeFull := startDevice(cfg)
	defer closeFull()
	stackConfigured, allocConfigured := lastStack, lastAlloc
	stack := int64(stackConfigured) - int64(stackBefore)
	grow := int64(configured) - int64(before) - fixed
	goroutines := runtime.NumGoroutine()
	name := config.SuiteName(s.ID)
	idle := float64(grow) / float64(n)
	fmt.Printf("peermem tunnel_idle_peer/%s/n=%d %.6g bytes/peer\n", name, n, idle)
	fmt.Fprintf(os.Stderr, "  tunnel.Device with %d idle peers: +%d bytes over an empty device (whose fixed cost is %d bytes); of the total, stacks +%d bytes (%.0f B/peer); %d goroutines while running\n",
		n, grow, fixed, stack, float64(stack)/float64(n), goroutines)
	if !establish {
		return
	}
	if *memProfile != "" {
		writeHeapProfile(*memProfile + ".configured")
	}

	// The same device, so that the difference is what establishing adds.
	t0 := time.Now()
	sources, fired, err := establishAll(d, s.ID, privs)
	if err != nil {
		fatal(err)
	}
	took := time.Since(t0)
	time.Sleep(200 * time.Millisecond) // let the owners finish their post-handshake work
	established := inuse()
	stack = int64(lastStack) - int64(stackConfigured)
	alloc := int64(lastAlloc) - int64(allocConfigured)
	goroutines = runtime.NumGoroutine()
	if *memProfile != "" {
		writeHeapProfile(*memProfile)
	}
	runtime.KeepAlive(privs)
	inc := float64(int64(established)-int64(configured)) / float64(n)
	fmt.Printf("peermem tunnel_established_peer/%s/n=%d %.6g bytes/peer\n", name, n, inc)
	fmt.Printf("peermem tunnel_established_peer_total/%s/n=%d %.6g bytes/peer\n", name, n, idle+inc)
	st := d.Stats()
	fmt.Fprintf(os.Stderr, "  %d UDP handshakes in %.1f s (%.0f/s; %d in flight, %d source sockets, %d cookie challenges, %d hellos dropped, %d initiator timer firings); established over configured: stacks %+d bytes (%.0f B/peer), live heap objects (HeapAlloc) %+d bytes (%.0f B/peer); %d goroutines\n",
		n, took.Seconds(), float64(n)/took.Seconds(), window, sources, st.CookiesSent, st.BadHello, fired, stack, float64(stack)/float64(n), alloc, float64(alloc)/float64(n), goroutines)
}

// writeHeapProfile writes the heap profile as of the last GC (inuse()
// ran two), for go tool pprof -sample_index=inuse_space.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fatal(err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		fatal(err)
	}
	if err := f.Close(); err != nil {
		fatal(err)
	}
}

// memProfile, if set, is where the heap profile of the established
// reading goes, and that of the configured reading to the same name with
// ".configured" appended (of the last peer count measured established):
// go tool pprof -sample_index=inuse_space -diff_base FILE.configured FILE
// shows what establishing adds.
var memProfile = flag.String("memprofile", "", "write heap profiles of the configured and the established device (`FILE`.configured, FILE)")

func main() {
	counts := flag.String("peers", "1000,10000", "peer counts")
	estCounts := flag.String("established-peers", "all", "which of the -peers counts are also measured established: all, none, or a list")
	suite := flag.String("suite", config.SuiteName(config.DefaultSuite), "cipher suite")
	transport := flag.String("transport", "udp", "peer transport: udp or tcp")
	flag.Parse()
	if *memProfile != "" {
		// Fine enough to see per-peer allocations of a few hundred bytes.
		runtime.MemProfileRate = 4096
	}
	id, err := config.SuiteByName(*suite)
	if err != nil {
		fatal(err)
	}
	s, err := mls.Suite(id)
	if err != nil {
		fatal(err)
	}
	tr := tunnel.TransportUDP
	if *transport == "tcp" {
		tr = tunnel.TransportTCP
	}
	ns := parseCounts("-peers", *counts)
	est := establishedCounts(ns, *estCounts)
	for _, n := range ns {
		measure(s, n, tr, est[n])
	}
}

// establishedCounts reads -established-peers: the counts of ns to measure
// established too. Checked before anything runs, as a run takes minutes.
func establishedCounts(ns []int, list string) map[int]bool {
	est := map[int]bool{}
	switch list {
	case "none":
		return est
	case "all":
		for _, n := range ns {
			est[n] = true
		}
		return est
	}
	for _, n := range parseCounts("-established-peers", list) {
		if !slices.Contains(ns, n) {
			fatal(fmt.Errorf("-established-peers: %d is not one of -peers", n))
		}
		est[n] = true
	}
	return est
}

// parseCounts reads a comma-separated list of positive counts.
func parseCounts(flagName, list string) []int {
	var ns []int
	for _, f := range strings.Split(list, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("%s: %q", flagName, f))
		}
		ns = append(ns, n)
	}
	return ns
}
