package tunnel

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TCP sessions survive a restart (issue 16): a hub A (no endpoint) and a
// laptop B that dials it over TCP, both with a state directory. Each side
// in turn is stopped with SIGTERM, then killed with SIGKILL after an
// epoch change and some traffic under its keys (the state on disk is the
// one written at that change, nothing at exit), and started again. Every
// time both sides must resume (the log says "resumed session", never
// "new session"; show --json has the epoch two past the saved one) and
// pings from B must be answered again; the time from the restarted side
// being READY to the first answer is logged.

// tcpResumeHub is the hub and the laptop of the test.
type tcpResumeHub struct {
	t            *testing.T
	dir, bin     string
	ctlBin       string
	nsA, nsB     string
	cfgA, cfgB   string
	a, b         *daemon
	socks        map[*daemon]string // control sockets
	flags        []string           // for every start
	starts       int
	firstAnswers []time.Duration
}

// start starts the daemon in ns from cfg, in a directory of its own (the
// notification and control sockets of one start), and waits for READY;
// with pinger set, it returns how long after READY the pinger got its
// first answer.
func (h *tcpResumeHub) start(ns, cfg string, pinger *restartPinger) (*daemon, time.Duration) {
	t := h.t
	t.Helper()
	sub := filepath.Join(h.dir, fmt.Sprintf("run%d", h.starts))
	h.starts++
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, sub, ns, h.bin, cfg, h.flags...)
	h.socks[d] = filepath.Join(ctlDir(sub, ns), "cur0.sock")
	ready, ok := <-readyAt(d)
	if !ok {
		t.Fatalf("%s: no READY=1", ns)
	}
	if pinger == nil {
		return d, 0
	}
	reply, err := pinger.firstReply(15 * time.Second)
	if err != nil {
		t.Fatalf("%s restarted: %v", ns, err)
	}
	return d, max(reply.Sub(ready), 0)
}

// epoch is the epoch both sides' show --json report once established.
func (h *tcpResumeHub) epoch(stage string) uint64 {
	var a, b uint64
	h.t.Helper()
	for _, d := range []*daemon{h.a, h.b} {
		st := ctlWaitShow(h.t, h.ctlBin, h.socks[d], 10*time.Second, stage+": "+d.ns+" established", func(st ctlStatus) bool {
			return len(st.Peers) == 1 && st.Peers[0].State == "established"
		})
		if d == h.a {
			a = st.Peers[0].Epoch
		} else {
			b = st.Peers[0].Epoch
		}
	}
	if a != b {
		h.t.Fatalf("%s: epochs A %d, B %d", stage, a, b)
	}
	return a
}

// restart stops the daemon of ns with sig, starts it again and checks
// that both sides resumed, two epochs past saved.
func (h *tcpResumeHub) restart(ns string, sig syscall.Signal, saved uint64) {
	t := h.t
	t.Helper()
	stage := fmt.Sprintf("%s of %s", map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig], ns)
	victim, cfg, other := &h.a, h.cfgA, h.b
	if ns == h.nsB {
		victim, cfg, other = &h.b, h.cfgB, h.a
	}
	resumed, fresh := strings.Count(other.log.String(), `kind="resumed session"`), strings.Count(other.log.String(), `kind="new session"`)
	if err := (*victim).cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err := (*victim).wait(10 * time.Second)
	if killed := err != nil && strings.Contains(err.Error(), "signal: killed"); killed != (sig == syscall.SIGKILL) || err != nil && !killed {
		t.Fatalf("%s after %s: %v", ns, stage, err)
	}
	pinger := startRestartPinger(t, h.nsB, "10.99.0.1")
	d, took := h.start(ns, cfg, pinger)
	*victim = d
	t.Logf("%s: first answer %v after READY", stage, took.Round(time.Millisecond))
	h.firstAnswers = append(h.firstAnswers, took)

	if a := h.epoch(stage); a != saved+2 {
		t.Errorf("%s: epoch %d after the restart, want %d (the saved one plus the resumption's two)", stage, a, saved+2)
	}
	// The answer can overtake the log line (a pipe).
	waitCount(t, d, `kind="resumed session"`, 1)
	waitCount(t, other, `kind="resumed session"`, resumed+1)
	if strings.Contains(d.log.String(), `kind="new session"`) || strings.Count(other.log.String(), `kind="new session"`) != fresh {
		t.Errorf("%s: a fresh handshake instead of a resumption", stage)
	}
}

// rekeyAndTalk moves the session one epoch on and sends traffic under the
// new keys; it returns the epoch.
func (h *tcpResumeHub) rekeyAndTalk() uint64 {
	t := h.t
	t.Helper()
	before := h.epoch("before the rekey")
	if err := h.a.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	ctlWaitShow(t, h.ctlBin, h.socks[h.b], 10*time.Second, "the rekey", func(st ctlStatus) bool {
		return len(st.Peers) == 1 && st.Peers[0].Epoch == before+1
	})
	e2ePing(t, h.nsB, "10.99.0.1")
	// The state reaches the disk a little after the change (saver.go);
	// a kill in between would cost a handshake, not a key.
	waitStateSaved(t, h.a)
	waitStateSaved(t, h.b)
	return h.epoch("after the rekey")
}

// startTCPResumeHub writes the hub's and the laptop's configurations
// (the laptop on transport) and starts both; with noUDP, UDP is dropped
// in both namespaces first. flags go to every start.
func startTCPResumeHub(t *testing.T, transport string, noUDP bool, flags ...string) *tcpResumeHub {
	dir, bin, nsA, nsB, vA, vB := e2eSetup(t)
	if noUDP {
		blockUDP(t, nsA, vA)
		blockUDP(t, nsB, vB)
	}
	h := &tcpResumeHub{t: t, dir: dir, bin: bin, ctlBin: buildCurrentctl(t, dir), nsA: nsA, nsB: nsB, socks: map[*daemon]string{}, flags: flags}
	ka, kb := writeKey(t, dir, "a"), writeKey(t, dir, "b")
	h.cfgA = writeConfigT(t, dir, "a", "10.99.0.1/24", "fd99::1/64", kb, "", "10.99.0.2/32", "fd99::2/128", transport)
	h.cfgB = writeConfigT(t, dir, "b", "10.99.0.2/24", "fd99::2/64", ka, "192.0.2.1:51900", "10.99.0.1/32", "fd99::1/128", transport)
	h.a, _ = h.start(nsA, h.cfgA, nil)
	h.b, _ = h.start(nsB, h.cfgB, nil)
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("daemon A, last start:\n%s", lastLines(h.a.log.String(), 40))
			t.Logf("daemon B, last start:\n%s", lastLines(h.b.log.String(), 40))
		}
	})
	e2ePing(t, nsB, "10.99.0.1")
	return h
}

func TestE2ETCPResume(t *testing.T) {
	h := startTCPResumeHub(t, "tcp", false)
	nsA, nsB := h.nsA, h.nsB
	e := h.epoch("first session")
	for _, c := range []struct {
		ns  string
		sig syscall.Signal
	}{{nsB, syscall.SIGTERM}, {nsA, syscall.SIGTERM}, {nsB, syscall.SIGKILL}, {nsA, syscall.SIGKILL}} {
		if c.sig == syscall.SIGKILL {
			// Nothing is written at a kill: the state is the one saved
			// at this epoch change, whose keys then carry traffic.
			e = h.rekeyAndTalk()
		}
		h.restart(c.ns, c.sig, e)
		e += 2
		e2ePing(t, nsB, "10.99.0.1")
	}
	lo, med, hi := durationStats(h.firstAnswers)
	t.Logf("TCP restarts: first answer after the restarted side was READY: min %v, median %v, max %v (%d restarts)",
		lo.Round(time.Millisecond), med.Round(time.Millisecond), hi.Round(time.Millisecond), len(h.firstAnswers))
	stopDaemon(t, h.a)
	stopDaemon(t, h.b)
}

// TestE2EAutoTCPResume: a laptop on transport auto in TCP fallback (UDP
// dropped) restarts: it resumes over TCP at once, as fallen back, and
// once UDP is let through its probes bring it back to UDP.
func TestE2EAutoTCPResume(t *testing.T) {
	h := startTCPResumeHub(t, "auto", true, autoProbeFlags...)
	nsA, nsB := h.nsA, h.nsB
	sockB := func() string { return h.socks[h.b] }
	checkTransport(t, "UDP blocked", nsB, ctlShowPeer(t, h.ctlBin, sockB()), "tcp", ReasonFallback)
	e := h.epoch("fallen back")
	h.restart(nsB, syscall.SIGTERM, e)
	checkTransport(t, "restarted in the fallback", nsB, ctlShowPeer(t, h.ctlBin, sockB()), "tcp", ReasonFallback)
	if strings.Contains(h.b.log.String(), "no answer over UDP") {
		t.Errorf("the restarted laptop tried UDP first")
	}
	unblockUDP(t, nsA)
	unblockUDP(t, nsB)
	took := waitUDP(t, h.ctlBin, sockB())
	t.Logf("back on UDP %v after UDP was let through", took.Round(time.Millisecond))
	e2ePing(t, nsB, "10.99.0.1")
	stopDaemon(t, h.a)
	stopDaemon(t, h.b)
}
