// Command inprocess measures current's session layer in memory (sans-IO,
// no sockets, no TUN), for the benchmark harness of issue 8:
//
//   - handshakes per second one responder sustains with many initiators,
//     per cipher suite, in datagram mode (UDP);
//   - epoch-update round trips per second on one established session;
//   - memory per idle peer for N configured peers (session.Session values
//     held in memory, see -peers).
//
// Every figure is printed as one "inprocess <name> <value> <unit>" line so
// that bench/tunnel.sh can collect them; -v adds human-readable notes.
package main

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/mls"
	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time the calling OS thread has used. On a shared
// machine wall time also counts other processes' turns on our core; the
// thread's own CPU time does not, so -v prints both (the goroutine is locked
// to its thread while measuring).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

type keyPair struct{ priv, pub []byte }

func newKeys(s *mls.CipherSuite) keyPair {
	priv, pub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		fatal(err)
	}
	return keyPair{priv, pub}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "inprocess:", err)
	os.Exit(1)
}

func newSession(role session.Role, id mls.CipherSuiteID, own keyPair, pin []byte, now time.Time) *session.Session {
	return newHidingSession(role, id, own, pin, now, nil)
}

// newHidingSession is newSession with identity hiding when h is set: the
// responder opens sealed hellos with h's keyring, the initiator seals to
// h's key, cached as a returning initiator has it.
func newHidingSession(role session.Role, id mls.CipherSuiteID, own keyPair, pin []byte, now time.Time, h *hiding) *session.Session {
	cfg := session.Config{
		Role: role, Suite: id, SigningKey: own.priv, PeerPublicKey: pin,
		Transport: session.Datagram,
		// No update policy: only the updates we ask for happen.
		UpdateInterval: -1, UpdateBytes: -1,
	}
	if h != nil && role == session.Responder {
		cfg.HelloKeys = h.ring
	} else if h != nil {
		cfg.HideIdentity, cfg.PeerHelloKey = true, h.key
	}
	s, err := session.New(cfg)
	if err != nil {
		fatal(err)
	}
	if err := s.Start(now); err != nil {
		fatal(err)
	}
	return s
}

// deliver hands from's outgoing datagrams to to and returns how many there
// were and how long to spent handling them.
func deliver(from, to *session.Session, now time.Time) (int, time.Duration) {
	n, d, _ := deliverCPU(from, to, now)
	return n, d
}

// deliverCPU is deliver that also returns the thread CPU time spent.
func deliverCPU(from, to *session.Session, now time.Time) (int, time.Duration, time.Duration) {
	out := from.Outgoing()
	c0 := threadCPU()
	start := time.Now()
	for _, d := range out {
		if err := to.HandleDatagram(now, d); err != nil && !errors.Is(err, session.ErrDropped) {
			fatal(fmt.Errorf("HandleDatagram: %w", err))
		}
	}
	return len(out), time.Since(start), threadCPU() - c0
}

// handshake runs one datagram-mode handshake between a new initiator and a
// new responder session and returns the time the responder side spent:
// creating its session and handling every datagram the initiator sent.
func handshake(id mls.CipherSuiteID, ik, rk keyPair, h *hiding) (resp, total, cpu time.Duration) {
	now := time.Now()
	t0 := time.Now()
	i := newHidingSession(session.Initiator, id, ik, rk.pub, now, h)
	c1 := threadCPU()
	t1 := time.Now()
	r := newHidingSession(session.Responder, id, rk, ik.pub, now, h)
	resp = time.Since(t1)
	cpu = threadCPU() - c1
	for {
		n1, dr, dc := deliverCPU(i, r, now)
		resp += dr
		cpu += dc
		n2, _ := deliver(r, i, now)
		if n1+n2 == 0 {
			break
		}
	}
	if !i.Established() || !r.Established() {
		fatal(errors.New("handshake did not complete"))
	}
	return resp, time.Since(t0), cpu
}

func measureHandshakes(s *mls.CipherSuite, dur time.Duration, pool int) {
	rk := newKeys(s)
	iks := make([]keyPair, pool)
	for n := range iks {
		iks[n] = newKeys(s)
	}
	fk := newKeys(s)
	static, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h := newHiding(s, rk)
	hk := newHelloKey(s)
	handshake(s.ID, iks[0], rk, nil) // warm-up
	handshake(s.ID, iks[0], rk, h)
	var resp, total, cpu, floor, open, noise, sresp, scpu time.Duration
	n := 0
	// Plain and sealed handshakes alternate, so that both see the same
	// machine load.
	for start := time.Now(); time.Since(start) < dur || n < 3; n++ {
		r, t, c := handshake(s.ID, iks[n%pool], rk, nil)
		resp += r
		total += t
		cpu += c
		r, _, c = handshake(s.ID, iks[n%pool], rk, h)
		sresp += r
		scpu += c
		floor += floorRound(s, fk)
		open += helloOpenRound(s, hk)
		noise += noiseRound(static)
	}
	name := config.SuiteName(s.ID)
	emit("handshake_responder_per_core/"+name, float64(n)/resp.Seconds(), "handshakes/s")
	emit("handshake_responder_per_core_sealed/"+name, float64(n)/sresp.Seconds(), "handshakes/s")
	emit("handshake_both_sides_per_core/"+name, float64(n)/total.Seconds(), "handshakes/s")
	emit("handshake_responder_floor/"+name, float64(n)/floor.Seconds(), "handshakes/s")
	emit("noise_ik_responder_estimate/"+name, float64(n)/noise.Seconds(), "handshakes/s")
	// Both sides of this ratio are thread CPU time: the per-core figure
	// above is wall time, which on a shared machine also counts other
	// processes' turns on our core, and the floor is not.
	emit("handshake_responder_floor_ratio/"+name, float64(floor)/float64(cpu), "floor/responder")
	emit("handshake_responder_floor_ratio_sealed/"+name, float64(floor+open)/float64(scpu), "floor/responder")
	note("  %s: %d handshakes with %d distinct initiators; responder %.3f ms each (thread CPU %.3f ms: %.0f/s), both sides %.3f ms",
		name, n, pool, ms(resp)/float64(n), ms(cpu)/float64(n), float64(n)/cpu.Seconds(), ms(total)/float64(n))
	note("    identity hiding (sealed hello to a cached hello key): responder %.3f ms each (thread CPU %.3f ms: %.0f/s), %.1f%% of the plain rate (thread CPU: %.1f%%)",
		ms(sresp)/float64(n), ms(scpu)/float64(n), float64(n)/scpu.Seconds(), 100*resp.Seconds()/sresp.Seconds(), 100*cpu.Seconds()/scpu.Seconds())
	note("    floor in the same run (%d verifications, %d signatures, 1 HPKE key generation, 1 encapsulation): %.3f ms, the handshake is %.0f%% of it; Noise IK's five X25519: %.3f ms",
		floorVerifies, floorSignatures, ms(floor)/float64(n), 100*float64(cpu)/float64(floor), ms(noise)/float64(n))
	note("    sealed floor (the floor and the hello open): %.3f ms, the sealed handshake is %.0f%% of it",
		ms(floor+open)/float64(n), 100*float64(scpu)/float64(floor+open))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func measureUpdates(s *mls.CipherSuite, dur time.Duration) {
	ik, rk := newKeys(s), newKeys(s)
	now := time.Now()
	i := newSession(session.Initiator, s.ID, ik, rk.pub, now)
	r := newSession(session.Responder, s.ID, rk, ik.pub, now)
	settle(i, r, now)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := 0
	c0 := threadCPU()
	start := time.Now()
	for ; time.Since(start) < dur || n < 3; n++ {
		a, b := i, r
		if n%2 == 1 { // alternate who commits, as both peers do over time
			a, b = r, i
		}
		before := a.Epoch()
		if err := a.Update(now); err != nil {
			fatal(err)
		}
		settle(a, b, now)
		if a.Epoch() != before+1 || b.Epoch() != a.Epoch() {
			fatal(fmt.Errorf("update %d: epochs %d/%d, want %d", n, a.Epoch(), b.Epoch(), before+1))
		}
		i.Events()
		r.Events()
	}
	el := time.Since(start)
	cpu := threadCPU() - c0
	name := config.SuiteName(s.ID)
	emit("epoch_update_roundtrips_per_core/"+name, float64(n)/el.Seconds(), "updates/s")
	note("  %s: %d updates, %.3f ms each (thread CPU %.3f ms: %.0f/s; both sides, one goroutine)",
		name, n, ms(el)/float64(n), ms(cpu)/float64(n), float64(n)/cpu.Seconds())
}

func settle(a, b *session.Session, now time.Time) {
	for {
		n1, _ := deliver(a, b, now)
		n2, _ := deliver(b, a, now)
		if n1+n2 == 0 {
			return
		}
	}
}

type memStats struct{ heapInuse, heapAlloc, objects uint64 }

func readMem() memStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memStats{m.HeapInuse, m.HeapAlloc, m.HeapObjects}
}

// measureMemory reports the heap held per session for n peers, in two
// states:
//
//   - configured: a responder Session per peer, created and started but
//     never contacted (what a peer costs before its first handshake);
//   - established: the responder's Session per peer after a complete
//     handshake, with no traffic since (an idle established peer). The
//     initiator halves are dropped and collected before measuring.
//
// Counted: runtime.MemStats.HeapInuse after minus before (two GCs each
// time), divided by n. That includes the Session, its MLS group, ratchet
// tree, record keys, replay windows and the cloned signing and peer keys;
// it excludes goroutine stacks, sockets and the daemon's per-peer state
// (queues, timers, routing entries), which bench/cmd/peermem measures.
func measureMemory(s *mls.CipherSuite, n int) {
	name := config.SuiteName(s.ID)
	rk := newKeys(s)
	pins := make([][]byte, n)
	iks := make([]keyPair, n)
	for k := range iks {
		iks[k] = newKeys(s)
		pins[k] = iks[k].pub
	}
	now := time.Now()

	before := readMem()
	held := make([]*session.Session, n)
	for k := range held {
		held[k] = newSession(session.Responder, s.ID, rk, pins[k], now)
	}
	after := readMem()
	report("mem_configured_peer", name, n, before, after)
	runtime.KeepAlive(held)
	clear(held)

	before = readMem()
	workers := runtime.GOMAXPROCS(0)
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for k := w; k < n; k += workers {
				i := newSession(session.Initiator, s.ID, iks[k], rk.pub, now)
				r := newSession(session.Responder, s.ID, rk, pins[k], now)
				settle(i, r, now)
				if !r.Established() {
					fatal(errors.New("handshake did not complete"))
				}
				r.Events()
				held[k] = r
			}
		}()
	}
	for range workers {
		<-done
	}
	after = readMem()
	report("mem_established_peer", name, n, before, after)
	runtime.KeepAlive(held)
}

func report(what, suite string, n int, before, after memStats) {
	per := float64(int64(after.heapInuse)-int64(before.heapInuse)) / float64(n)
	emit(fmt.Sprintf("%s/%s/n=%d", what, suite, n), per, "bytes/peer")
	note("  %s, %d peers: HeapInuse +%d bytes (%.0f B/peer), HeapAlloc +%.0f B/peer, %.1f objects/peer",
		what, n, int64(after.heapInuse)-int64(before.heapInuse), per,
		float64(int64(after.heapAlloc)-int64(before.heapAlloc))/float64(n),
		float64(int64(after.objects)-int64(before.objects))/float64(n))
}

var verbose bool

func emit(name string, v float64, unit string) {
	fmt.Printf("inprocess %s %.6g %s\n", name, v, unit)
}

func note(format string, args ...any) {
	if verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func main() {
	suites := flag.String("suites", "all", "comma-separated suite names (config names, e.g. mls-xwing-ed25519), or all")
	dur := flag.Duration("duration", time.Second, "time spent per handshake and per update measurement")
	pool := flag.Int("initiators", 64, "distinct initiator identities the responder handshakes with")
	peers := flag.String("peers", "1000,10000", "peer counts for the memory measurement (empty: skip)")
	memSuite := flag.String("mem-suite", config.SuiteName(config.DefaultSuite), "suite for the memory measurement")
	flag.BoolVar(&verbose, "v", false, "explain each figure on stderr")
	flag.Parse()

	var list []*mls.CipherSuite
	if *suites == "all" {
		for _, name := range config.SuiteNames() {
			id, err := config.SuiteByName(name)
			if err != nil {
				fatal(err)
			}
			if s, err := mls.Suite(id); err == nil {
				list = append(list, s)
			}
		}
	} else {
		for _, name := range strings.Split(*suites, ",") {
			list = append(list, suiteByName(name))
		}
	}
	note("handshakes (datagram mode; responder time = New + Start + every HandleDatagram on the responder; one goroutine):")
	for _, s := range list {
		measureHandshakes(s, *dur, *pool)
	}
	note("epoch updates (datagram mode: ConnectionUpdate, EpochKeyUpdate, switch; both sides in one goroutine):")
	for _, s := range list {
		measureUpdates(s, *dur)
	}
	if *peers != "" {
		note("memory per peer (HeapInuse delta / N after GC; sessions only):")
		ms := suiteByName(*memSuite)
		for _, f := range strings.Split(*peers, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				fatal(fmt.Errorf("-peers: %q", f))
			}
			measureMemory(ms, n)
		}
	}
}

func suiteByName(name string) *mls.CipherSuite {
	id, err := config.SuiteByName(strings.TrimSpace(name))
	if err != nil {
		fatal(err)
	}
	s, err := mls.Suite(id)
	if err != nil {
		fatal(err)
	}
	return s
}

// hiding is a responder's hello keyring and the key its initiators cache.
type hiding struct {
	ring *session.HelloKeyring
	key  []byte
}

func newHiding(s *mls.CipherSuite, rk keyPair) *hiding {
	ring, err := session.NewHelloKeyring(s.ID, 0)
	if err != nil {
		fatal(err)
	}
	now := time.Now()
	k, err := session.NewHelloKey(s.ID, rk.priv, now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		fatal(err)
	}
	key, err := k.Public.MarshalBinary()
	if err != nil {
		fatal(err)
	}
	if err := ring.Install(k); err != nil {
		fatal(err)
	}
	return &hiding{ring: ring, key: key}
}
