package tunnel

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The adversarial test's assertions on what it measured of daemon B.

// checkPings fails t unless every echo through the tunnel was answered
// within attackPingTimeout.
func checkPings(t *testing.T, r attackResult, d time.Duration) {
	t.Helper()
	t.Logf("pings through the tunnel: %d sent, %d answered, %d lost (%d of them late), slowest %d ms",
		r["sent"], r["answered"], r["lost"], r["late"], r["max_rtt_ms"])
	if want := int64(d.Seconds() * 10 * 0.9); r["sent"] < want {
		t.Errorf("the pinger sent %d echoes, want at least %d", r["sent"], want)
	}
	if r["lost"] > 0 {
		t.Errorf("%d of %d pings through the tunnel lost during the attack (unanswered within %s; %d answered later), want 0",
			r["lost"], r["sent"], attackPingTimeout, r["late"])
	}
}

// attackDelta is the growth of a counter of B's between two snapshots,
// summed over the samples with labels; ok is false (and t failed) when B
// does not export it.
func attackDelta(t *testing.T, before, after attackSnap, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	v0, ok0 := attackMetric(before.fams, name, labels)
	v1, ok1 := attackMetric(after.fams, name, labels)
	if !ok0 || !ok1 {
		t.Errorf("currentctl metrics has no %s (%s)", name, attackMissing)
		return 0, false
	}
	return v1 - v0, true
}

var attackIface = map[string]string{"interface": "cur0"}

// logHandshakes counts the responder sessions B's debug log shows it
// started: the baseline for daemons without
// current_handshakes_responded_total. Over TCP every connection handed to
// the peer logs "connection ... role=responder", a candidate too; over
// UDP a candidate logs only "replacement session pending proof".
func logHandshakes(log string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(l, "replacement session pending proof"),
			strings.Contains(l, "msg=connection ") && strings.Contains(l, "role=responder"),
			strings.Contains(l, `msg="datagram session"`) && strings.Contains(l, "role=responder"):
			n++
		}
	}
	return n
}

// checkLogLines fails t if B wrote more lines during the attack than
// attackLogFixed plus one per 100 units (datagrams or connections), at
// most attackLogPerSec a second.
func checkLogLines(t *testing.T, log string, units int64, d time.Duration) {
	t.Helper()
	lines := strings.Count(log, "\n")
	bound := attackLogFixed + min(int(units/100), int(attackLogPerSec*d.Seconds()))
	t.Logf("B wrote %d log lines during the attack (%d attack datagrams or connections; bound %d)", lines, units, bound)
	if lines > bound {
		t.Errorf("B wrote %d log lines during an attack of %d datagrams or connections, want at most %d: it logs per packet; the commonest:\n%s",
			lines, units, bound, attackCommonLines(log, 5))
	}
}

// attackLogMsg is the message of a slog text line.
var attackLogMsg = regexp.MustCompile(`msg=("(?:[^"\\]|\\.)*"|\S+)`)

// attackCommonLines shows the n most frequent messages of a log.
func attackCommonLines(log string, n int) string {
	count := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if m := attackLogMsg.FindStringSubmatch(l); m != nil {
			l = m[1]
		}
		count[l]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return count[b] - count[a] })
	var b strings.Builder
	for _, k := range keys[:min(n, len(keys))] {
		fmt.Fprintf(&b, "  %6d × %s\n", count[k], k)
	}
	return b.String()
}

// checkBounds fails t if B's peaks during an attack exceed its idle
// figures by more than the given margins; a margin of -1 is not checked.
func checkBounds(t *testing.T, idle attackSnap, peak attackPeaks, rss int64, fds, goroutines int) {
	t.Helper()
	t.Logf("B during the attack: RSS %s (idle %s), descriptors %d (idle %d), goroutines %v, unauthenticated bytes %v",
		attackMiB(peak.rss), attackMiB(idle.rss), peak.fds, idle.fds, attackOrMissing(peak.goroutines), attackOrMissing(peak.unauthBytes))
	if rss >= 0 && peak.rss > idle.rss+rss {
		t.Errorf("B's RSS reached %s during the attack, %s above its idle %s: want at most %s above", attackMiB(peak.rss), attackMiB(peak.rss-idle.rss), attackMiB(idle.rss), attackMiB(rss))
	}
	if fds >= 0 && peak.fds > idle.fds+fds {
		t.Errorf("B had %d descriptors open during the attack, %d when idle: want at most %d more", peak.fds, idle.fds, fds)
	}
	if goroutines < 0 {
		return
	}
	g0, ok := attackMetric(idle.fams, "current_goroutines", nil)
	switch {
	case !ok || peak.goroutines < 0:
		t.Errorf("currentctl metrics has no current_goroutines (%s)", attackMissing)
	case peak.goroutines > g0+float64(goroutines):
		t.Errorf("B ran %v goroutines during the attack, %v when idle: want at most %d more", peak.goroutines, g0, goroutines)
	}
}

func attackMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func attackOrMissing(v float64) string {
	if v < 0 {
		return "(not exported)"
	}
	return fmt.Sprintf("%.0f", v)
}

// attackSane fails t if an attack did much less than it was asked to: a
// test that attacked nobody must not pass.
func attackSane(t *testing.T, what string, got int64, want float64) {
	t.Helper()
	if float64(got) < 0.7*want {
		t.Fatalf("the attacker managed %d %s, want about %.0f: the attack did not happen as planned", got, what, want)
	}
}
