package tunnel

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EAttack is the adversarial end-to-end suite of issue 14. Two real
// daemons, A and B, run a tunnel between namespaces A and B; a third
// namespace X, on its own link to B (198.51.100.0/24), attacks B's
// listener with the test binary as attacker (TestAttackHelper), while a
// pinger in A counts the echoes to B's tunnel address that go unanswered.
// Each attack is bounded in time and stops by itself, and nothing is sent
// outside the namespaces. Every subtest starts a fresh pair of daemons, so
// they run alone too:
//
//	go test ./tunnel -run 'TestE2EAttack/udp/partial-hello-memory' -v
//
// The metrics asserted are issue 14's: current_unauthenticated_refused_total,
// current_cookies_sent_total, current_handshakes_responded_total,
// current_unauthenticated_bytes and current_goroutines.
func TestE2EAttack(t *testing.T) {
	e := newAttackEnv(t)
	t.Run("udp", func(t *testing.T) {
		t.Run("partial-hello-memory", e.partialHelloMemory)
		t.Run("hello-amplification", func(t *testing.T) { e.helloAmplification(t, "udp") })
		t.Run("junk", e.udpJunk)
	})
	t.Run("tcp", func(t *testing.T) {
		t.Run("hello-amplification", func(t *testing.T) { e.helloAmplification(t, "tcp") })
		t.Run("junk", e.tcpJunk)
	})
}

// The per-host handshake limit the amplification attacks are held to.
const (
	attackHostRate  = handshakeHostRate // a second per IPv4 address or IPv6 /64
	attackHostBurst = handshakeHostBurst
)

// The bounds of issue 14's acceptance.
const (
	attackRSSDuring = 32 << 20 // B's RSS above its idle figure, at any time during an attack
	// ... and attackRecover after it: the readers give their slots'
	// pages back and the reclaimer the pool's, once per interval.
	attackRSSAfter = 8 << 20
	attackRecover  = 15 * time.Second
	// Log lines B may write during a junk attack: attackLogFixed, plus one
	// per 100 attack packets but at most attackLogPerSec a second. A
	// daemon that logs each refusal fails; one that logs each kind of
	// refusal at most every few seconds, or a periodic summary, passes.
	attackLogFixed  = 20
	attackLogPerSec = 2
	// Drops that must be counted: at least this share of what was sent
	// (the rest allows for datagrams lost in the kernel under the flood).
	attackCounted = 0.9
	// Unidentified connections B may hold at once: tunnel's
	// maxUnidentified when this was written. A fixed number, so that
	// raising that cap cannot loosen the test.
	attackHeldConns = 256
)

const attackMissing = "issue 14's metric, which this daemon does not export yet"

// partialHelloMemory: from 64 ports of X, each with the cookie B gave it,
// 600 datagrams a second of 65 KB fragments of ClientHellos that never
// complete, for 20 s. B's RSS must stay within attackRSSDuring of its
// idle figure and come back within attackRSSAfter of it by attackRecover
// after the attack; no ping may be lost.
func (e *attackEnv) partialHelloMemory(t *testing.T) {
	const d, rate = 20 * time.Second, 600
	tn := e.startTunnel(t, "udp")
	idle := tn.snap(t)
	w := tn.watch()
	ping := e.ping(t, d+time.Second)
	res := startAttack(t, e.nsX, attackSpec{Mode: "udp-partial", Target: attackListenB, Ports: 64, Rate: rate, Duration: d}).wait(t)
	peak, werr := w.finish()
	pr := ping.wait(t)
	t.Logf("attacker: %d datagrams (%s), %d of 64 ports got a cookie, %d challenges, %d bytes back",
		res["datagrams"], attackMiB(res["bytes"]), res["ports_with_cookie"], res["cookies"], res["bytes_back"])
	if werr != nil {
		t.Errorf("watching B: %v", werr)
	}
	attackSane(t, "datagrams", res["datagrams"], rate*(d.Seconds()-3))
	checkBounds(t, idle, peak, attackRSSDuring, -1, -1)

	deadline := time.Now().Add(attackRecover)
	var rss int64
	for {
		var err error
		if rss, err = procRSS(tn.pidB); err != nil {
			t.Fatal(err)
		}
		if rss <= idle.rss+attackRSSAfter || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("B's RSS after the attack: %s (idle %s, peak %s)", attackMiB(rss), attackMiB(idle.rss), attackMiB(peak.rss))
	if rss > idle.rss+attackRSSAfter {
		t.Errorf("B's RSS is %s %s after the attack, %s above its idle %s: want at most %s above",
			attackMiB(rss), attackRecover, attackMiB(rss-idle.rss), attackMiB(idle.rss), attackMiB(attackRSSAfter))
	}
	checkPings(t, pr, d)
	tn.stop(t)
}

// helloAmplification replays A's genuine ClientHello from X: over UDP from
// 256 ports (each echoing its cookie) 500 times a second for 20 s, over
// TCP on 300 new connections a second for 12 s. B may perform at most the
// per-host burst plus the per-host rate for the time the attack lasted of
// responder handshakes, must not send X more bytes than X sent it, and
// must lose no ping.
func (e *attackEnv) helloAmplification(t *testing.T, transport string) {
	spec := attackSpec{Mode: "udp-replay", Target: attackListenB, Ports: 256, Rate: 500, Duration: 20 * time.Second, Hello: e.helloUDP}
	if transport == "tcp" {
		spec = attackSpec{Mode: "tcp-replay", Target: attackListenB, Rate: 300, Duration: 12 * time.Second, Hello: e.helloTCP}
	}
	tn := e.startTunnel(t, transport)
	before := tn.snap(t)
	ping := e.ping(t, spec.Duration+time.Second)
	res := startAttack(t, e.nsX, spec).wait(t)
	pr := ping.wait(t)
	// What B queued during the attack is done within a second of it.
	time.Sleep(time.Second)
	after := tn.snap(t)
	elapsed := after.at.Sub(before.at)
	logged := logHandshakes(tn.logSince(before))
	if transport == "udp" {
		t.Logf("attacker: %d hellos (%d datagrams each, %s), %d of 256 ports got a cookie, %d challenges, %s back",
			res["hellos"], res["hello_datagrams"], attackMiB(res["bytes"]), res["ports_with_cookie"], res["cookies"], attackMiB(res["bytes_back"]))
		attackSane(t, "hellos", res["hellos"], float64(spec.Rate)*(spec.Duration.Seconds()-3))
	} else {
		t.Logf("attacker: %d connections, %d connected (%d failed, %d skipped), %d-byte hello, %s back",
			res["conns"], res["connected"], res["failed"], res["skipped"], res["hello_bytes"], attackMiB(res["bytes_back"]))
		attackSane(t, "connections", res["connected"], float64(spec.Rate)*spec.Duration.Seconds())
	}
	bound := attackHostBurst + attackHostRate*elapsed.Seconds()
	hs, ok := attackDelta(t, before, after, "current_handshakes_responded_total", attackIface)
	t.Logf("responder handshakes during %s: %.0f counted, %d in B's log; bound %.0f", elapsed.Round(time.Millisecond), hs, logged, bound)
	if !ok {
		t.Errorf("B's log shows %d responder handshakes during the attack, bound %.0f", logged, bound)
	} else if hs > bound {
		t.Errorf("B performed %.0f responder handshakes for one host in %s, want at most %.0f (burst %d + %d/s)",
			hs, elapsed.Round(time.Millisecond), bound, attackHostBurst, attackHostRate)
	}
	if transport == "udp" && res["bytes_back"] > res["bytes"] {
		t.Errorf("B sent X %d bytes for the %d X sent: it amplifies a spoofable source %.1f times",
			res["bytes_back"], res["bytes"], float64(res["bytes_back"])/float64(res["bytes"]))
	}
	checkPings(t, pr, spec.Duration)
	tn.stop(t)
}

// udpJunk captures genuine records A sends B, then sends B 1000 slots a
// second of junk for 10 s from 16 ports of X (udpJunk in the helper):
// malformed and misaddressed datagrams, a stranger's ClientHellos, and the
// captured records replayed, bit-flipped and forged. B must count the
// refusals (issue 14's metrics) and the replays, keep its endpoint for A,
// log no line per packet, hold its memory, descriptors and goroutines,
// and lose no ping.
func (e *attackEnv) udpJunk(t *testing.T) {
	const d, rate = 10 * time.Second, 1000
	tn := e.startTunnel(t, "udp")
	recs := filepath.Join(e.dir, fmt.Sprintf("records-%d.hex", e.runs))
	capture := startAttack(t, e.nsB, attackSpec{Mode: "capture", Iface: e.vBA, Src: "192.0.2.1", Count: 32, Out: recs, Duration: 15 * time.Second})
	capture.waitReady(t, 10*time.Second)
	if out, err := nsPing(e.nsA, attackTunnelB, 40); err != nil {
		t.Fatalf("pings to capture records: %v\n%s", err, out)
	}
	capture.wait(t)
	endpoint := ctlShowPeer(t, e.ctlBin, tn.sockB).RemoteAddress

	before := tn.snap(t)
	w := tn.watch()
	ping := e.ping(t, d+time.Second)
	res := startAttack(t, e.nsX, attackSpec{Mode: "udp-junk", Target: attackListenB, Ports: 16, Rate: rate, Duration: d,
		Stranger: e.strangerUDP, Records: recs}).wait(t)
	peak, werr := w.finish()
	pr := ping.wait(t)
	time.Sleep(500 * time.Millisecond)
	after := tn.snap(t)
	window := tn.logSince(before)
	t.Logf("attacker: %d datagrams (%s) in %d slots: %d junk, %d stranger hellos, %d replayed, %d bit-flipped, %d forged; %d challenges back",
		res["datagrams"], attackMiB(res["bytes"]), res["slots"], res["junk"], res["stranger_hellos"], res["replayed"], res["flipped"], res["forged"], res["cookies"])
	if werr != nil {
		t.Errorf("watching B: %v", werr)
	}
	attackSane(t, "slots", res["slots"], rate*d.Seconds())

	refusable := float64(res["junk"] + res["stranger_hellos"])
	refused, ok1 := attackDelta(t, before, after, "current_unauthenticated_refused_total", attackIface)
	cookies, ok2 := attackDelta(t, before, after, "current_cookies_sent_total", attackIface)
	t.Logf("B counted %.0f refusals and %.0f cookies for %.0f refusable datagrams and hellos", refused, cookies, refusable)
	if ok1 && ok2 && refused+cookies < attackCounted*refusable {
		t.Errorf("B counted %.0f refusals and %.0f cookies sent for %.0f junk datagrams and stranger hellos, want at least %.0f%%",
			refused, cookies, refusable, attackCounted*100)
	}
	replays := float64(res["replayed"] + res["flipped"])
	dropped, ok := attackDelta(t, before, after, "current_peer_dropped_packets_total", map[string]string{"reason": "replay"})
	t.Logf("B counted %.0f replays for %.0f replayed records", dropped, replays)
	if ok && dropped < attackCounted*replays {
		t.Errorf("B counted %.0f replayed records, want at least %.0f%% of the %.0f resent with their sequence numbers", dropped, attackCounted*100, replays)
	}
	// The log shows a move even if A's next record moved it back.
	if now, moves := ctlShowPeer(t, e.ctlBin, tn.sockB).RemoteAddress, strings.Count(window, "endpoint changed"); now != endpoint || moves > 0 {
		t.Errorf("B's endpoint for A moved %d times during the replays from X (was %s, now %s)", moves, endpoint, now)
	}
	checkLogLines(t, window, res["datagrams"], d)
	checkBounds(t, before, peak, attackRSSDuring, 16, 64)
	checkPings(t, pr, d)
	tn.stop(t)
}

// tcpJunk, over a TCP tunnel: for 5 s, 200 connections a second from X
// that send garbage, a record too large, or a stranger's ClientHello; then
// for 10 s, 384 slowloris connections that send A's ClientHello one byte
// every 2 s. B must count the refused connections, hold its descriptors
// and goroutines within attackHeldConns of idle and its memory within
// attackRSSDuring, log no line per connection, and lose no ping.
func (e *attackEnv) tcpJunk(t *testing.T) {
	const d, rate, slow = 15 * time.Second, 200, 384
	tn := e.startTunnel(t, "tcp")
	before := tn.snap(t)
	w := tn.watch()
	ping := e.ping(t, d+time.Second)
	res := startAttack(t, e.nsX, attackSpec{Mode: "tcp-junk", Target: attackListenB, Rate: rate, Slowloris: slow, Duration: d,
		Hello: e.helloTCP, Stranger: e.strangerTCP}).wait(t)
	peak, werr := w.finish()
	pr := ping.wait(t)
	time.Sleep(500 * time.Millisecond)
	after := tn.snap(t)
	t.Logf("attacker: %d garbage connections (%d connected, %d failed, %d skipped); slowloris: %d opened, %d closed by B, %d failed, at most %d open",
		res["garbage_conns"], res["garbage_connected"], res["garbage_failed"], res["garbage_skipped"],
		res["slow_opened"], res["slow_closed_by_peer"], res["slow_failed"], res["slow_max_open"])
	if werr != nil {
		t.Errorf("watching B: %v", werr)
	}
	attackSane(t, "garbage connections", res["garbage_connected"], rate*d.Seconds()/3)
	attackSane(t, "slow connections", res["slow_opened"], slow)

	refused, ok := attackDelta(t, before, after, "current_unauthenticated_refused_total", attackIface)
	t.Logf("B counted %.0f refusals for %d garbage connections", refused, res["garbage_connected"])
	if ok && refused < attackCounted*float64(res["garbage_connected"]) {
		t.Errorf("B counted %.0f refusals for %d garbage connections, want at least %.0f%%", refused, res["garbage_connected"], attackCounted*100)
	}
	checkLogLines(t, tn.logSince(before), res["garbage_conns"]+res["slow_opened"], d)
	checkBounds(t, before, peak, attackRSSDuring, attackHeldConns+16, attackHeldConns+64)
	checkPings(t, pr, d)
	tn.stop(t)
}
