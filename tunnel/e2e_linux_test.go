package tunnel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/current-vpn/current/config"
)

// TestEndToEnd runs two real currentd processes in two network namespaces
// joined by a veth pair, and pings through the tunnel over IPv4 and IPv6,
// before and after an epoch update. It needs root (namespaces, TUN) and
// builds the daemon with the go tool, so it honours $GOFLAGS.
func TestEndToEnd(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	bin := buildDaemon(t, dir)

	// Names unique per run, so that a crashed earlier run cannot collide;
	// interface names stay within 15 bytes.
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	nsA, nsB := "cur-e2e-a-"+id, "cur-e2e-b-"+id
	addNamespace(t, nsA)
	addNamespace(t, nsB)
	linkNamespaces(t, nsA, "cva"+id, []string{"192.0.2.1/24"}, nsB, "cvb"+id, []string{"192.0.2.2/24"})

	ka, kb := writeKey(t, dir, "a"), writeKey(t, dir, "b")
	// Both sides have an endpoint, so both dial at start: the test also
	// exercises the simultaneous-connect rule.
	cfgA := writeConfig(t, dir, "a", "10.99.0.1/24", "fd99::1/64", kb, "192.0.2.2:51900", "10.99.0.2/32", "fd99::2/128")
	cfgB := writeConfig(t, dir, "b", "10.99.0.2/24", "fd99::2/64", ka, "192.0.2.1:51900", "10.99.0.1/32", "fd99::1/128")

	a := startDaemon(t, dir, nsA, bin, cfgA)
	b := startDaemon(t, dir, nsB, bin, cfgB)
	a.waitNotify(t, "READY=1")
	b.waitNotify(t, "READY=1")

	ping := func(ns, addr string) {
		t.Helper()
		// The first ping may wait for the handshake; retry briefly, then
		// insist on a clean run.
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
		out, err := nsPing(ns, addr, 3)
		if err != nil {
			t.Fatalf("ping %s from %s: %v\n%s", addr, ns, err, out)
		}
		t.Logf("ping %s from %s: %s", addr, ns, lastLines(out, 4))
	}
	ping(nsA, "10.99.0.2")
	ping(nsB, "fd99::1")
	ping(nsB, "10.99.0.1")
	ping(nsA, "fd99::2")

	// SIGUSR1 asks for an epoch update on every session.
	if err := a.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	a.waitLog(t, "epoch changed")
	b.waitLog(t, "epoch changed")
	ping(nsA, "10.99.0.2")
	ping(nsB, "fd99::1")

	// currentctl against the real daemon: show --json, rekey, show again.
	ctlBin := filepath.Join(dir, "currentctl")
	if out, err := exec.Command("go", "build", "-o", ctlBin, "github.com/current-vpn/current/cmd/currentctl").CombinedOutput(); err != nil {
		t.Fatalf("building currentctl: %v\n%s", err, out)
	}
	sockA := filepath.Join(ctlDir(dir, nsA), "cur0.sock")
	showEpoch := func() uint64 {
		t.Helper()
		out, err := exec.Command(ctlBin, "--socket", sockA, "show", "--json").Output()
		if err != nil {
			t.Fatalf("currentctl show --json: %v\n%s", err, out)
		}
		var st struct {
			Peers []struct {
				Name  string `json:"name"`
				State string `json:"state"`
				Epoch uint64 `json:"epoch"`
			} `json:"peers"`
		}
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("currentctl show --json: %v\n%s", err, out)
		}
		if len(st.Peers) != 1 || st.Peers[0].Name != "peer" || st.Peers[0].State != "established" || st.Peers[0].Epoch == 0 {
			t.Fatalf("currentctl show --json: %s", out)
		}
		return st.Peers[0].Epoch
	}
	before := showEpoch()
	if out, err := exec.Command(ctlBin, "--socket", sockA, "rekey", "peer", "--timeout", "10s").CombinedOutput(); err != nil {
		t.Fatalf("currentctl rekey: %v\n%s", err, out)
	} else {
		t.Logf("currentctl rekey: %s", bytes.TrimSpace(out))
	}
	if after := showEpoch(); after <= before {
		t.Errorf("epoch %d after currentctl rekey, %d before", after, before)
	}

	// SIGHUP: B gets one more subnet behind it; A routes it without a
	// new handshake.
	established := strings.Count(a.log.String(), "session established")
	cfgText, err := os.ReadFile(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	cfgText = bytes.Replace(cfgText, []byte(`allowed_ips = ["10.99.0.2/32"`), []byte(`allowed_ips = ["10.99.1.0/24", "10.99.0.2/32"`), 1)
	if err := os.WriteFile(cfgA, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.waitNotify(t, "RELOADING=1")
	a.waitNotify(t, "READY=1")
	a.waitLog(t, "msg=reloaded")
	if out, _ := exec.Command("ip", "-n", nsA, "route", "show", "10.99.1.0/24").CombinedOutput(); !strings.Contains(string(out), "dev cur0") {
		t.Errorf("no route to the reloaded subnet: %q", out)
	}
	ping(nsA, "10.99.0.2")
	if n := strings.Count(a.log.String(), "session established"); n != established {
		t.Errorf("A established %d sessions, had %d before the reload: it dropped the session", n, established)
	}

	for _, d := range []*daemon{a, b} {
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*daemon{a, b} {
		d.waitNotify(t, "STOPPING=1")
		if err := d.wait(10 * time.Second); err != nil {
			t.Fatalf("%s: %v", d.ns, err)
		}
	}
	for _, ns := range []string{nsA, nsB} {
		if exec.Command("ip", "-n", ns, "link", "show", "cur0").Run() == nil {
			t.Errorf("%s: cur0 still exists", ns)
		}
		for _, fam := range []string{"-4", "-6"} {
			out, _ := exec.Command("ip", "-n", ns, fam, "route", "show", "table", "all").CombinedOutput()
			if strings.Contains(string(out), "10.99.") || strings.Contains(string(out), "fd99:") || strings.Contains(string(out), "cur0") {
				t.Errorf("%s: tunnel routes left:\n%s", ns, out)
			}
			out, _ = exec.Command("ip", "-n", ns, fam, "addr").CombinedOutput()
			if strings.Contains(string(out), "10.99.") || strings.Contains(string(out), "fd99:") {
				t.Errorf("%s: tunnel addresses left:\n%s", ns, out)
			}
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("daemon A log:\n%s", a.log.String())
		t.Logf("daemon B log:\n%s", b.log.String())
	}
}

// addNamespace creates network namespace ns with its loopback up; it is
// deleted when the test ends.
func addNamespace(t *testing.T, ns string) {
	t.Helper()
	mustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
}

// linkNamespaces joins nsX and nsY with a veth pair devX <-> devY, gives
// each end its addresses (IPv6 ones without duplicate address detection,
// so that they are usable at once) and brings both up.
func linkNamespaces(t *testing.T, nsX, devX string, addrsX []string, nsY, devY string, addrsY []string) {
	t.Helper()
	mustRun(t, "ip", "link", "add", devX, "netns", nsX, "type", "veth", "peer", "name", devY, "netns", nsY)
	for _, end := range []struct {
		ns, dev string
		addrs   []string
	}{{nsX, devX, addrsX}, {nsY, devY, addrsY}} {
		for _, a := range end.addrs {
			args := []string{"-n", end.ns, "addr", "add", a, "dev", end.dev}
			if strings.Contains(a, ":") {
				args = append(args, "nodad")
			}
			mustRun(t, "ip", args...)
		}
		mustRun(t, "ip", "-n", end.ns, "link", "set", end.dev, "up")
	}
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], " | ")
}

// writeKey writes a private key file for name and returns its public key.
func writeKey(t *testing.T, dir, name string) string {
	k, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	if err := config.WritePrivateKeyFile(filepath.Join(dir, name+".key"), k); err != nil {
		t.Fatal(err)
	}
	pub, err := k.Public()
	if err != nil {
		t.Fatal(err)
	}
	return pub.String()
}

func writeConfig(t *testing.T, dir, name, addr4, addr6, peerKey, endpoint, allow4, allow6 string) string {
	return writeConfigT(t, dir, name, addr4, addr6, peerKey, endpoint, allow4, allow6, "tcp")
}

// writeConfigT is writeConfig with a transport; an empty endpoint leaves
// the peer without one (it must reach us).
func writeConfigT(t *testing.T, dir, name, addr4, addr6, peerKey, endpoint, allow4, allow6, transport string) string {
	endpointLine := ""
	if endpoint != "" {
		endpointLine = fmt.Sprintf("endpoint = %q\n", endpoint)
	}
	state := filepath.Join(dir, name+".state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`[interface]
name = "cur0"
private_key_file = %q
listen_port = 51900
addresses = [%q, %q]
state_dir = %q

[[peer]]
name = "peer"
public_key = %q
%sallowed_ips = [%q, %q]
transport = %q
persistent_keepalive = "5s"
`, filepath.Join(dir, name+".key"), addr4, addr6, state, peerKey, endpointLine, allow4, allow6, transport)
	path := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemon is a running currentd with its log and notification socket.
// requireE2E skips t unless it may build namespaces, veth pairs and TUN
// devices: root, ip(8), /dev/net/tun, and no -short.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test needs root: it creates network namespaces, a veth pair and TUN devices")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("end-to-end test needs ip(8) (iproute2)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("end-to-end test needs /dev/net/tun")
	}
	if raceBuild() && !strings.Contains(os.Getenv("GOFLAGS"), "-race") {
		// What is tested runs in the daemons, which buildDaemon builds
		// with $GOFLAGS: under a plain -race test run they are not
		// instrumented, and the test would repeat the plain run's.
		t.Skip("end-to-end test skipped under -race: the daemons it starts would not be race-instrumented (it ran in the plain pass; GOFLAGS=-race races them too)")
	}
}

// buildDaemon builds currentd into dir with the go tool (honouring
// $GOFLAGS) and returns its path.
func buildDaemon(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "currentd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/current-vpn/current/cmd/currentd").CombinedOutput(); err != nil {
		t.Fatalf("building currentd: %v\n%s", err, out)
	}
	return bin
}

type daemon struct {
	ns     string
	cmd    *exec.Cmd
	log    *syncBuffer
	notify *net.UnixConn
	done   chan error
}

func startDaemon(t *testing.T, dir, ns, bin, cfg string, flags ...string) *daemon {
	t.Helper()
	sock := filepath.Join(dir, ns+".notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	d := &daemon{ns: ns, log: new(syncBuffer), notify: nc, done: make(chan error, 1)}
	// ip netns exec execs currentd itself, so the process is the daemon
	// and signals reach it directly.
	// Each daemon gets its own control socket directory: the namespaces
	// share /run, and both interfaces are called cur0.
	args := append([]string{"netns", "exec", ns, bin, "-c", cfg, "--log-level", "debug", "--ctl-dir", ctlDir(dir, ns)}, flags...)
	d.cmd = exec.Command("ip", args...)
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		// d.done holds the exit status once the daemon exited (stop puts
		// it back); reading ProcessState instead would race with Wait.
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("log of currentd in %s:\n%s", ns, d.log.String())
		}
	})
	return d
}

// ctlDir is the control socket directory of the daemon in ns.
func ctlDir(dir, ns string) string { return filepath.Join(dir, ns+".ctl") }

func (d *daemon) waitNotify(t *testing.T, want string) {
	t.Helper()
	buf := make([]byte, 256)
	d.notify.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		n, err := d.notify.Read(buf)
		if err != nil {
			t.Fatalf("%s: waiting for %s: %v", d.ns, want, err)
		}
		if strings.Contains(string(buf[:n]), want) {
			return
		}
	}
}

func (d *daemon) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(d.log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in the log", d.ns, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *daemon) wait(timeout time.Duration) error {
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		return err
	case <-time.After(timeout):
		return fmt.Errorf("did not exit within %s", timeout)
	}
}
