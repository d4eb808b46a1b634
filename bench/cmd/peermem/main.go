// Command peermem measures the memory an idle configured peer costs in the
// daemon core: it starts a tunnel.Device with N peers (no endpoint, so
// nothing is sent: they only wait to be contacted) over a TUN stand-in that
// never delivers a packet, and reports
//
//	(HeapInuse + StackInuse after) - (HeapInuse + StackInuse before)
//
// divided by N, both read after two forced GCs. That counts each peer's
// state, owner goroutine stack, queues, timers, allowed-IPs entries and
// whatever session state an unconnected peer holds; it excludes the
// device's fixed costs, which are in the "before" reading only when -n=0
// is compared (printed as the baseline line).
//
// The device opens a UDP and a TCP socket on an ephemeral port: run it
// inside a network namespace (bench/tunnel.sh does).
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
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

var lastStack uint64

func inuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	lastStack = m.StackInuse
	return m.HeapInuse + m.StackInuse
}

func measure(s *mls.CipherSuite, n int, transport tunnel.Transport) {
	priv, _, err := s.GenerateSignatureKeyPair()
	if err != nil {
		fatal(err)
	}
	peers := make([]tunnel.PeerConfig, n)
	for i := range peers {
		_, pub, err := s.GenerateSignatureKeyPair()
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
	}
	cfg := tunnel.Config{
		Suite:      s.ID,
		PrivateKey: priv,
		ListenPort: 0,
		MTU:        1420,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	// The baseline is a device without peers, so the fixed costs (TUN
	// reader buffers, sockets, listeners) cancel out.
	base := func(peers []tunnel.PeerConfig) (uint64, func()) {
		c := cfg
		c.Peers = peers
		t := &idleTUN{closed: make(chan struct{})}
		d, err := tunnel.New(c, t, nil)
		if err != nil {
			fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // let every goroutine start and park
		return inuse(), func() { d.Close(); t.Close() }
	}
	before := inuse()
	empty, closeEmpty := base(nil)
	closeEmpty()
	fixed := int64(empty) - int64(before)

	before = inuse()
	stackBefore := lastStack
	after, closeFull := base(peers)
	stack := int64(lastStack) - int64(stackBefore)
	grow := int64(after) - int64(before) - fixed
	goroutines := runtime.NumGoroutine()
	closeFull()
	fmt.Printf("peermem tunnel_idle_peer/%s/n=%d %.6g bytes/peer\n", config.SuiteName(s.ID), n, float64(grow)/float64(n))
	fmt.Fprintf(os.Stderr, "  tunnel.Device with %d idle peers: +%d bytes over an empty device (whose fixed cost is %d bytes); of the total, stacks +%d bytes (%.0f B/peer); %d goroutines while running\n",
		n, grow, fixed, stack, float64(stack)/float64(n), goroutines)
}

func main() {
	counts := flag.String("peers", "1000,10000", "peer counts")
	suite := flag.String("suite", config.SuiteName(config.DefaultSuite), "cipher suite")
	transport := flag.String("transport", "udp", "peer transport: udp or tcp")
	flag.Parse()
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
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("-peers: %q", f))
		}
		measure(s, n, tr)
	}
}
