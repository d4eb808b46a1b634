package tunnel

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// e2eSetup skips unless the end-to-end prerequisites are there, builds
// currentd and creates two namespaces joined by a veth pair with IPv4
// (192.0.2.1, .2) and IPv6 (2001:db8::1, ::2) underlay addresses.
func e2eSetup(t *testing.T) (dir, bin, nsA, nsB, vA, vB string) {
	t.Helper()
	requireE2E(t)
	dir = t.TempDir()
	bin = buildDaemon(t, dir)
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	nsA, nsB = "cur-u-a-"+id, "cur-u-b-"+id
	addNamespace(t, nsA)
	addNamespace(t, nsB)
	vA, vB = "cua"+id, "cub"+id
	linkNamespaces(t, nsA, vA, []string{"192.0.2.1/24", "2001:db8::1/64"}, nsB, vB, []string{"192.0.2.2/24", "2001:db8::2/64"})
	return dir, bin, nsA, nsB, vA, vB
}

func e2ePing(t *testing.T, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := nsPing(ns, addr, 1)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from %s in %s: %v\n%s", addr, ns, err, out)
		}
	}
	if out, err := nsPing(ns, addr, 3); err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", addr, ns, err, out)
	}
}

func stopDaemon(t *testing.T, d *daemon) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(10 * time.Second); err != nil {
		t.Fatalf("%s: %v", d.ns, err)
	}
}

// TestEndToEndUDP runs two currentd processes with transport = "udp" over
// an IPv4 and then an IPv6 underlay, pings IPv4 and IPv6 through the
// tunnel, updates the epoch, and restarts one side, which must resume its
// saved session (no new handshake) and get its routes back. Over IPv4 one
// side then changes its address (roaming) and traffic goes on.
func TestEndToEndUDP(t *testing.T) {
	dir, bin, nsA, nsB, _, vB := e2eSetup(t)
	ka, kb := writeKey(t, dir, "a"), writeKey(t, dir, "b")
	for _, under := range []struct{ name, epA, epB string }{
		{"ipv4-underlay", "192.0.2.2:51900", "192.0.2.1:51900"},
		{"ipv6-underlay", "[2001:db8::2]:51900", "[2001:db8::1]:51900"},
	} {
		t.Run(under.name, func(t *testing.T) {
			sub := filepath.Join(dir, under.name)
			os.MkdirAll(sub, 0o700)
			for _, n := range []string{"a", "b"} {
				b, _ := os.ReadFile(filepath.Join(dir, n+".key"))
				os.WriteFile(filepath.Join(sub, n+".key"), b, 0o600)
			}
			cfgA := writeConfigT(t, sub, "a", "10.99.0.1/24", "fd99::1/64", kb, under.epA, "10.99.0.2/32", "fd99::2/128", "udp")
			cfgB := writeConfigT(t, sub, "b", "10.99.0.2/24", "fd99::2/64", ka, under.epB, "10.99.0.1/32", "fd99::1/128", "udp")
			start := time.Now()
			a := startDaemon(t, sub, nsA, bin, cfgA)
			b := startDaemon(t, sub, nsB, bin, cfgB)
			a.waitNotify(t, "READY=1")
			b.waitNotify(t, "READY=1")
			e2ePing(t, nsA, "10.99.0.2")
			e2ePing(t, nsB, "fd99::1")
			a.waitLog(t, "transport=udp")
			if strings.Contains(a.log.String(), "transport=tcp remote") {
				t.Errorf("A used TCP")
			}
			a.cmd.Process.Signal(syscall.SIGUSR1)
			a.waitLog(t, "epoch changed")
			b.waitLog(t, "epoch changed")
			e2ePing(t, nsB, "10.99.0.1")
			e2ePing(t, nsA, "fd99::2")

			// Restart B: it saved its session at shutdown and resumes it.
			stopDaemon(t, b)
			rdir := filepath.Join(sub, "restart")
			os.MkdirAll(rdir, 0o700)
			b = startDaemon(t, rdir, nsB, bin, cfgB)
			b.waitNotify(t, "READY=1")
			b.waitLog(t, `kind="resumed session"`)
			e2ePing(t, nsB, "10.99.0.1")
			e2ePing(t, nsA, "fd99::2")
			if out, _ := exec.Command("ip", "-n", nsB, "-6", "route", "show", "fd99::1").CombinedOutput(); !strings.Contains(string(out), "dev cur0") {
				t.Errorf("no route back after the restart: %q", out)
			}
			if n := strings.Count(a.log.String(), `kind="new session"`); n != 1 {
				t.Errorf("A made %d new sessions, want 1 (B should have resumed)", n)
			}
			if under.name == "ipv4-underlay" {
				// Roaming: B's underlay address changes; B's next
				// authenticated datagram moves A's endpoint for it.
				mustRun(t, "ip", "-n", nsB, "addr", "del", "192.0.2.2/24", "dev", vB)
				mustRun(t, "ip", "-n", nsB, "addr", "add", "192.0.2.3/24", "dev", vB)
				e2ePing(t, nsB, "10.99.0.1")
				e2ePing(t, nsA, "10.99.0.2")
				a.waitLog(t, "to=192.0.2.3:51900")
			}
			stopDaemon(t, a)
			stopDaemon(t, b)
			t.Logf("%s: %s", under.name, time.Since(start).Round(time.Millisecond))
			if t.Failed() || testing.Verbose() {
				t.Logf("daemon A log:\n%s", a.log.String())
				t.Logf("daemon B log:\n%s", b.log.String())
			}
		})
	}
}
