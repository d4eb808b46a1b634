package tunnel

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The adversarial end-to-end test (e2e_attack_linux_test.go) runs its
// attacker, its pinger and its packet capture as this test binary inside a
// namespace (ip netns exec NS os.Args[0] -test.run=^TestAttackHelper$),
// with $CURRENT_TEST_ATTACK holding an attackSpec in JSON. The helper
// prints one "ATTACK-RESULT {json}" line with its counters.

const attackEnvVar = "CURRENT_TEST_ATTACK"

// attackSpec is one helper run.
type attackSpec struct {
	Mode     string        `json:"mode"`
	Target   string        `json:"target,omitempty"` // address (ping) or address:port
	Duration time.Duration `json:"duration"`
	Rate     int           `json:"rate,omitempty"`  // per second: datagrams, hellos, connections, pings
	Ports    int           `json:"ports,omitempty"` // UDP source ports
	// Files of hex lines: A's genuine ClientHello (one datagram a line,
	// or the stream bytes on one line), one signed by a key B does not
	// pin, and tunnel records captured on B's link to A.
	Hello    string `json:"hello,omitempty"`
	Stranger string `json:"stranger,omitempty"`
	Records  string `json:"records,omitempty"`
	// Slowloris is how many slow connections tcp-junk keeps open.
	Slowloris int `json:"slowloris,omitempty"`
	// Capture: Count records from Src arriving on Iface, written to Out.
	Iface string `json:"iface,omitempty"`
	Src   string `json:"src,omitempty"`
	Count int    `json:"count,omitempty"`
	Out   string `json:"out,omitempty"`
	// HostNetns is the test process's network namespace, which the
	// helper must not be in (startAttack sets it).
	HostNetns string `json:"host_netns"`
}

// attackResult is a helper's counters, by name.
type attackResult map[string]int64

const (
	attackReadyLine  = "ATTACK-READY"
	attackResultLine = "ATTACK-RESULT "
)

// The only destinations a helper may send to: the attack link between X
// and B, and the tunnel addresses (the pinger, inside A's namespace).
var attackAllowed = []netip.Prefix{
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("10.99.0.0/24"),
}

func TestAttackHelper(t *testing.T) {
	arg := os.Getenv(attackEnvVar)
	if arg == "" {
		t.Skip("helper process for the adversarial end-to-end test")
	}
	var spec attackSpec
	if err := json.Unmarshal([]byte(arg), &spec); err != nil {
		t.Fatalf("bad %s: %v", attackEnvVar, err)
	}
	if err := attackGuard(spec); err != nil {
		t.Fatal(err)
	}
	var res attackResult
	var err error
	switch spec.Mode {
	case "ping":
		res, err = attackPing(spec)
	case "capture":
		res, err = attackCapture(spec)
	case "udp-partial":
		res, err = udpPartialHellos(spec)
	case "udp-replay":
		res, err = udpHelloReplay(spec)
	case "udp-junk":
		res, err = udpJunk(spec)
	case "tcp-replay":
		res, err = tcpHelloReplay(spec)
	case "tcp-junk":
		res, err = tcpJunk(spec)
	default:
		err = fmt.Errorf("unknown mode %q", spec.Mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	fmt.Println(attackResultLine + string(b))
}

// Bounds of any one helper run, whatever the spec asks.
const (
	attackMaxDuration = time.Minute
	attackMaxRate     = 5000 // units a second
	attackMaxPorts    = 1024 // UDP ports, or slow connections
)

// attackGuard refuses to run in the test process's own network namespace,
// against a destination outside the test's subnets, or for longer or
// faster than the bounds above, so that a mistake cannot send a flood
// anywhere real or without end.
func attackGuard(spec attackSpec) error {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	if spec.HostNetns == "" || spec.HostNetns == self {
		return fmt.Errorf("attack helper: not inside a test namespace (in %s, the test runs in %q)", self, spec.HostNetns)
	}
	if spec.Duration <= 0 || spec.Duration > attackMaxDuration || spec.Rate < 0 || spec.Rate > attackMaxRate ||
		spec.Ports < 0 || spec.Ports > attackMaxPorts || spec.Slowloris < 0 || spec.Slowloris > attackMaxPorts {
		return fmt.Errorf("attack helper: duration %s, rate %d, ports %d, slowloris %d: beyond (0, %s], %d/s, %d",
			spec.Duration, spec.Rate, spec.Ports, spec.Slowloris, attackMaxDuration, attackMaxRate, attackMaxPorts)
	}
	if spec.Mode == "capture" {
		return nil // sends nothing
	}
	host := spec.Target
	if ap, err := netip.ParseAddrPort(spec.Target); err == nil {
		host = ap.Addr().String()
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("attack helper: target %q: %v", spec.Target, err)
	}
	for _, p := range attackAllowed {
		if p.Contains(a) {
			return nil
		}
	}
	return fmt.Errorf("attack helper: target %s outside the test's subnets %v", a, attackAllowed)
}

// attackRun is a helper process started by the test.
type attackRun struct {
	spec   attackSpec
	cmd    *exec.Cmd
	out    syncBuffer
	ready  chan struct{}
	done   chan error
	cancel context.CancelFunc
}

// startAttack runs a helper in ns. It is killed if it outlives its
// duration by a minute, and when the test ends.
func startAttack(t *testing.T, ns string, spec attackSpec) *attackRun {
	t.Helper()
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	spec.HostNetns = host
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.Duration+time.Minute)
	r := &attackRun{spec: spec, ready: make(chan struct{}), done: make(chan error, 1), cancel: cancel}
	r.cmd = exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestAttackHelper$", "-test.count=1", "-test.v")
	r.cmd.Env = append(os.Environ(), attackEnvVar+"="+string(b))
	pipe, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stderr = &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(&r.out, sc.Text())
			if sc.Text() == attackReadyLine {
				once.Do(func() { close(r.ready) })
			}
		}
		io.Copy(&r.out, pipe) // past a line too long to scan
		r.done <- r.cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel()
		r.done <- <-r.done
	})
	return r
}

// waitReady waits for the helper's ready line.
func (r *attackRun) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.ready:
	case err := <-r.done:
		r.done <- err
		t.Fatalf("%s helper exited before it was ready: %v\n%s", r.spec.Mode, err, r.out.String())
	case <-time.After(d):
		t.Fatalf("%s helper not ready within %s\n%s", r.spec.Mode, d, r.out.String())
	}
}

// wait waits for the helper and returns its counters.
func (r *attackRun) wait(t *testing.T) attackResult {
	t.Helper()
	err := <-r.done
	r.done <- err
	r.cancel()
	if err != nil {
		t.Fatalf("%s helper: %v\n%s", r.spec.Mode, err, r.out.String())
	}
	for _, l := range strings.Split(r.out.String(), "\n") {
		if s, ok := strings.CutPrefix(l, attackResultLine); ok {
			var res attackResult
			if err := json.Unmarshal([]byte(s), &res); err != nil {
				t.Fatalf("%s helper result %q: %v", r.spec.Mode, s, err)
			}
			return res
		}
	}
	t.Fatalf("%s helper printed no result:\n%s", r.spec.Mode, r.out.String())
	return nil
}

func writeAttackFile(path string, lines [][]byte) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(hex.EncodeToString(l))
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func readAttackFile(path string) ([][]byte, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, l := range strings.Fields(string(text)) {
		b, err := hex.DecodeString(l)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty", path)
	}
	return out, nil
}

// attackPaced calls send(i) for i = 0, 1, ... at rate per second until the
// deadline or until send returns false, and returns how many calls it
// made; it never makes more than rate per second of the time it ran.
func attackPaced(deadline time.Time, rate int, send func(i int) bool) int {
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	i := 0
	for now := start; now.Before(deadline); now = <-tick.C {
		due := int(now.Sub(start).Seconds() * float64(rate))
		for ; i < due; i++ {
			if !send(i) {
				return i
			}
		}
	}
	return i
}

// attackIgnoreRefused: a connected UDP socket reports an ICMP error of an
// earlier datagram on a later call; the flood goes on regardless.
func attackIgnoreRefused(err error) bool {
	return err == nil || errors.Is(err, syscall.ECONNREFUSED)
}
