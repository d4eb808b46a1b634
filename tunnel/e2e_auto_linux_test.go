package tunnel

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// transport = "auto" coming back to UDP (issue 16): the daemons fall back
// to TCP while nftables drops UDP, and return to UDP on their own once it
// is let through again, through a UDP probe that runs next to the TCP
// session (probe.go). The probes are shortened from 30 s doubling to
// 5 min to 1 s doubling to 4 s (currentd's hidden --udp-probe-* flags).

var autoProbeFlags = []string{"--udp-probe-min", "1s", "--udp-probe-max", "4s"}

// autoReturnBound is how long after UDP is unblocked the daemons must be
// back on it. A probe under way when UDP is let through usually succeeds
// with its next ClientHello retransmission; otherwise it runs out
// (UDPFallback, 4 s) and the next comes after at most the longest wait
// (4 s), then one handshake; the rest is slack for a loaded machine.
const autoReturnBound = 15 * time.Second

// unblockUDP undoes blockUDP.
func unblockUDP(t *testing.T, ns string) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err == nil {
		mustRun(t, "ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "curtest")
		return
	}
	mustRun(t, "ip", "-n", ns, "rule", "add", "pref", "0", "lookup", "local")
	mustRun(t, "ip", "-n", ns, "rule", "del", "pref", "10")
	mustRun(t, "ip", "-n", ns, "rule", "del", "pref", "100")
}

// tunnelTCPConns counts the established TCP connections on the daemons'
// port in ns (the transfer through the tunnel uses another port).
func tunnelTCPConns(t *testing.T, ns string) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-Htn", "state", "established", "( sport = :51900 or dport = :51900 )").CombinedOutput()
	if err != nil {
		t.Fatalf("ss in %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	return len(strings.Fields(strings.TrimSpace(string(out)))) / 4 // Recv-Q Send-Q Local Peer
}

// checkTransport fails t unless the peer of show --json is established
// over active for one of reasons; it logs what show said at that stage.
func checkTransport(t *testing.T, stage, ns string, p ctlPeer, active string, reasons ...string) {
	t.Helper()
	next := "none"
	if p.NextUDPProbe != nil {
		next = p.NextUDPProbe.Format(time.RFC3339)
	}
	since := "none"
	if p.FallbackSince != nil {
		since = p.FallbackSince.Format(time.RFC3339)
	}
	t.Logf("%s, %s: state %s, transport %s, active %s, reason %s, fallback since %s, probing %v, next probe %s",
		stage, ns, p.State, p.Transport, p.ActiveTransport, p.TransportReason, since, p.UDPProbing, next)
	if p.State != "established" || p.ActiveTransport != active || !slices.Contains(reasons, p.TransportReason) {
		t.Errorf("%s, %s: show --json says %s over %q (%s), want established over %s (%s)", stage, ns, p.State, p.ActiveTransport, p.TransportReason, active, strings.Join(reasons, " or "))
	}
	fellBack := p.TransportReason == ReasonFallback
	if fellBack != (p.FallbackSince != nil) {
		t.Errorf("%s, %s: fallback_since %v with reason %s", stage, ns, p.FallbackSince, p.TransportReason)
	}
	if fellBack && p.NextUDPProbe == nil && !p.UDPProbing {
		t.Errorf("%s, %s: fallen back, but neither probing nor a probe scheduled", stage, ns)
	}
}

// checkFallenBack checks a pair of auto peers that both dial while UDP
// is blocked: both are on TCP, and at least one fell back (the other may
// have taken the first one's TCP connection before its own UDP handshake
// gave up).
func checkFallenBack(t *testing.T, stage, nsA, nsB string, pA, pB ctlPeer) {
	t.Helper()
	checkTransport(t, stage, nsA, pA, "tcp", ReasonFallback, ReasonPeer)
	checkTransport(t, stage, nsB, pB, "tcp", ReasonFallback, ReasonPeer)
	if pA.TransportReason != ReasonFallback && pB.TransportReason != ReasonFallback {
		t.Errorf("%s: neither side on TCP by fallback", stage)
	}
}

// reportPings logs what the pinger counted (lost: unanswered within
// attackPingTimeout), and fails t if the tunnel answered less than half.
func reportPings(t *testing.T, what string, r attackResult) {
	t.Helper()
	t.Logf("pings through the tunnel, %s: %d sent, %d answered, %d lost (%d of them late), slowest %d ms",
		what, r["sent"], r["answered"], r["lost"], r["late"], r["max_rtt_ms"])
	if r["answered"] < r["sent"]/2 {
		t.Errorf("only %d of %d pings answered", r["answered"], r["sent"])
	}
}

// stopAutoPair stops both daemons, and shows the end of their logs if t
// failed or runs verbose.
func stopAutoPair(t *testing.T, a, b *daemon) {
	t.Helper()
	stopDaemon(t, a)
	stopDaemon(t, b)
	if t.Failed() || testing.Verbose() {
		t.Logf("daemon A log:\n%s", lastLines(a.log.String(), 60))
		t.Logf("daemon B log:\n%s", lastLines(b.log.String(), 60))
	}
}

// waitUDP waits until show --json of every socket reports an established
// session over UDP, and returns how long that took.
func waitUDP(t *testing.T, ctlBin string, socks ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for _, sock := range socks {
		ctlWaitShow(t, ctlBin, sock, autoReturnBound, sock+" back on UDP", func(st ctlStatus) bool {
			return len(st.Peers) == 1 && st.Peers[0].State == "established" && st.Peers[0].ActiveTransport == "udp"
		})
	}
	return time.Since(start)
}

// waitNoTCP waits until ns has no TCP connection of the daemons left.
func waitNoTCP(t *testing.T, ns string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for tunnelTCPConns(t, ns) != 0 {
		if time.Now().After(deadline) {
			t.Errorf("%s: the daemons' TCP connection is still open on UDP", ns)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EAutoReturnsToUDP: both daemons (transport auto, each with the
// other as endpoint) fall back to TCP while UDP is dropped; a 16 MiB
// transfer through the tunnel starts on TCP, UDP is let through in its
// middle, and the daemons move back to UDP while it flows, closing the
// TCP connection once UDP carries the traffic. The transfer arrives
// intact (SHA-256 on both ends); pings through the tunnel during the
// switch are counted, and their losses reported.
func TestE2EAutoReturnsToUDP(t *testing.T) {
	dir, bin, nsA, nsB, vA, vB := e2eSetup(t)
	ctlBin := buildCurrentctl(t, dir)
	blockUDP(t, nsA, vA)
	blockUDP(t, nsB, vB)
	a, b := startPair(t, dir, bin, nsA, nsB, "auto", autoProbeFlags...)
	e2ePing(t, nsA, "10.99.0.2")
	sockA := filepath.Join(ctlDir(dir, nsA), "cur0.sock")
	sockB := filepath.Join(ctlDir(dir, nsB), "cur0.sock")
	checkFallenBack(t, "UDP blocked", nsA, nsB, ctlShowPeer(t, ctlBin, sockA), ctlShowPeer(t, ctlBin, sockB))

	const size = 16 << 20
	minDur := 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), ctlDeadline(minDur+60*time.Second))
	defer cancel()
	recv := startBulkRecv(t, ctx, nsB, "10.99.0.2:5201")
	pinger := startAttack(t, nsA, attackSpec{Mode: "ping", Target: "10.99.0.2", Duration: 14 * time.Second, Rate: 20})
	type sent struct {
		out string
		err error
	}
	sender := make(chan sent, 1)
	go func() {
		out, err := bulkSender(ctx, nsA, "10.99.0.2:5201", size, minDur).CombinedOutput()
		sender <- sent{string(out), err}
	}()
	rx0 := ctlShowPeer(t, ctlBin, sockB).RxBytes
	time.Sleep(2 * time.Second)
	pB := ctlShowPeer(t, ctlBin, sockB)
	if pB.RxBytes-rx0 < 1<<20 {
		t.Fatalf("B received %d bytes of the transfer in 2 s over TCP", pB.RxBytes-rx0)
	}
	checkFallenBack(t, "mid-transfer, UDP blocked", nsA, nsB, ctlShowPeer(t, ctlBin, sockA), pB)

	unblockUDP(t, nsA)
	unblockUDP(t, nsB)
	took := waitUDP(t, ctlBin, sockA, sockB)
	mid := ctlShowPeer(t, ctlBin, sockB).RxBytes - rx0
	t.Logf("back on UDP %s after UDP was let through, %.1f of %d MiB into the transfer", took.Round(time.Millisecond), float64(mid)/(1<<20), size>>20)
	if mid >= size {
		t.Errorf("the transfer was over before the daemons were back on UDP")
	}
	checkTransport(t, "UDP let through", nsA, ctlShowPeer(t, ctlBin, sockA), "udp", ReasonConfigured)
	checkTransport(t, "UDP let through", nsB, ctlShowPeer(t, ctlBin, sockB), "udp", ReasonConfigured)
	waitNoTCP(t, nsA)

	var s sent
	select {
	case s = <-sender:
	case <-ctx.Done():
		t.Fatal("the transfer did not end")
	}
	if s.err != nil {
		t.Fatalf("bulk sender: %v\n%s", s.err, s.out)
	}
	sentSum, sentN := parseBulk(t, "sender", s.out)
	recvSum, recvN := recv.wait(t, 20*time.Second)
	if sentN != size || recvN != size || sentSum != recvSum {
		t.Fatalf("sent %d bytes (sha256 %s), received %d (sha256 %s), want %d intact", sentN, sentSum, recvN, recvSum, size)
	}
	t.Logf("%d MiB through the tunnel across the switch, SHA-256 %s on both ends", size>>20, recvSum)
	r := pinger.wait(t)
	reportPings(t, "across the switch", r)
	checkTransport(t, "after the transfer", nsA, ctlShowPeer(t, ctlBin, sockA), "udp", ReasonConfigured)
	if !strings.Contains(a.log.String()+b.log.String(), `msg="back on UDP"`) {
		t.Errorf("neither daemon logged its return to UDP")
	}
	e2ePing(t, nsB, "10.99.0.1")
	stopAutoPair(t, a, b)
}

// TestE2EAutoReturnsAfterAddressChange: a laptop (A, transport auto) and
// its hub (B, no endpoint for A), UDP dropped, so they run over TCP. The
// laptop's underlay address changes (192.0.2.1 → 192.0.2.4), which makes
// it probe UDP at once (the change also resets the wait to 1 s); UDP is
// let through while that probe runs, and the laptop is back on UDP within
// one probe interval (4 s here at most).
func TestE2EAutoReturnsAfterAddressChange(t *testing.T) {
	dir, bin, nsA, nsB, vA, vB := e2eSetup(t)
	ctlBin := buildCurrentctl(t, dir)
	mustRun(t, "ip", "netns", "exec", nsA, "sysctl", "-qw", "net.ipv4.conf."+vA+".promote_secondaries=1")
	blockUDP(t, nsA, vA)
	blockUDP(t, nsB, vB)
	ka, kb := writeKey(t, dir, "a"), writeKey(t, dir, "b")
	cfgA := writeConfigT(t, dir, "a", "10.99.0.1/24", "fd99::1/64", kb, "192.0.2.2:51900", "10.99.0.2/32", "fd99::2/128", "auto")
	cfgB := writeConfigT(t, dir, "b", "10.99.0.2/24", "fd99::2/64", ka, "", "10.99.0.1/32", "fd99::1/128", "auto")
	a := startDaemon(t, dir, nsA, bin, cfgA, autoProbeFlags...)
	b := startDaemon(t, dir, nsB, bin, cfgB, autoProbeFlags...)
	a.waitNotify(t, "READY=1")
	b.waitNotify(t, "READY=1")
	e2ePing(t, nsA, "10.99.0.2")
	sockA := filepath.Join(ctlDir(dir, nsA), "cur0.sock")
	sockB := filepath.Join(ctlDir(dir, nsB), "cur0.sock")
	checkTransport(t, "UDP blocked", nsA, ctlShowPeer(t, ctlBin, sockA), "tcp", ReasonFallback)
	checkTransport(t, "UDP blocked", nsB, ctlShowPeer(t, ctlBin, sockB), "tcp", ReasonPeer)
	a.waitLog(t, `msg="UDP probe failed"`)

	probes := strings.Count(a.log.String(), `msg="probing UDP"`)
	t0 := time.Now()
	mustRun(t, "ip", "-n", nsA, "addr", "add", "192.0.2.4/24", "dev", vA)
	mustRun(t, "ip", "-n", nsA, "addr", "del", "192.0.2.1/24", "dev", vA)
	for strings.Count(a.log.String(), `msg="probing UDP"`) == probes {
		if time.Since(t0) > 5*time.Second {
			t.Fatalf("A did not probe UDP after its address changed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("A probed UDP %s after its address changed", time.Since(t0).Round(time.Millisecond))
	checkTransport(t, "address changed, UDP blocked", nsA, ctlShowPeer(t, ctlBin, sockA), "tcp", ReasonFallback)

	unblockUDP(t, nsA)
	unblockUDP(t, nsB)
	took := waitUDP(t, ctlBin, sockA, sockB)
	t.Logf("back on UDP %s after UDP was let through", took.Round(time.Millisecond))
	checkTransport(t, "UDP let through", nsA, ctlShowPeer(t, ctlBin, sockA), "udp", ReasonConfigured)
	pB := ctlShowPeer(t, ctlBin, sockB)
	checkTransport(t, "UDP let through", nsB, pB, "udp", ReasonPeer)
	if pB.RemoteAddress != "192.0.2.4:51900" {
		t.Errorf("B's remote address for A is %q, want the new 192.0.2.4:51900", pB.RemoteAddress)
	}
	waitNoTCP(t, nsB)
	e2ePing(t, nsA, "10.99.0.2")
	e2ePing(t, nsB, "10.99.0.1")
	stopAutoPair(t, a, b)
}

// waitTCP waits until show --json of every socket reports an established
// session over TCP, and returns how long that took.
func waitTCP(t *testing.T, ctlBin string, socks ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for _, sock := range socks {
		ctlWaitShow(t, ctlBin, sock, autoReturnBound+10*time.Second, sock+" on TCP", func(st ctlStatus) bool {
			return len(st.Peers) == 1 && st.Peers[0].State == "established" && st.Peers[0].ActiveTransport == "tcp"
		})
	}
	return time.Since(start)
}

// TestE2EAutoBlackholeMidSession: the whole cycle from UDP. Two auto
// daemons on UDP; while pings flow through the tunnel, UDP starts being
// dropped: the silent session is given up (liveness.go), the new UDP
// handshake gets no answer, and they go over TCP; UDP is let through
// again and they come back to it. The pings lost on the way are
// reported.
func TestE2EAutoBlackholeMidSession(t *testing.T) {
	dir, bin, nsA, nsB, vA, vB := e2eSetup(t)
	ctlBin := buildCurrentctl(t, dir)
	a, b := startPair(t, dir, bin, nsA, nsB, "auto", autoProbeFlags...)
	e2ePing(t, nsA, "10.99.0.2")
	sockA := filepath.Join(ctlDir(dir, nsA), "cur0.sock")
	sockB := filepath.Join(ctlDir(dir, nsB), "cur0.sock")
	waitUDP(t, ctlBin, sockA, sockB)
	checkTransport(t, "start", nsA, ctlShowPeer(t, ctlBin, sockA), "udp", ReasonConfigured)

	pinger := startAttack(t, nsA, attackSpec{Mode: "ping", Target: "10.99.0.2", Duration: 16 * time.Second, Rate: 20})
	time.Sleep(time.Second)
	blockUDP(t, nsA, vA)
	blockUDP(t, nsB, vB)
	took := waitTCP(t, ctlBin, sockA, sockB)
	t.Logf("on TCP %s after UDP started being dropped", took.Round(time.Millisecond))
	checkFallenBack(t, "UDP dropped mid-session", nsA, nsB, ctlShowPeer(t, ctlBin, sockA), ctlShowPeer(t, ctlBin, sockB))

	unblockUDP(t, nsA)
	unblockUDP(t, nsB)
	took = waitUDP(t, ctlBin, sockA, sockB)
	t.Logf("back on UDP %s after UDP was let through", took.Round(time.Millisecond))
	checkTransport(t, "UDP let through", nsA, ctlShowPeer(t, ctlBin, sockA), "udp", ReasonConfigured)
	waitNoTCP(t, nsA)
	r := pinger.wait(t)
	reportPings(t, "UDP → TCP → UDP", r)
	e2ePing(t, nsB, "10.99.0.1")
	stopAutoPair(t, a, b)
}
