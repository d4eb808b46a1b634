package tunnel

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/current-vpn/current/hostdns/resolvedtest"
)

// The laptop features of currentd end to end: DNS through the real
// resolvconf (openresolv or Debian's) and the up/down hooks, with the
// daemon in a network namespace whose /etc/resolv.conf and
// /etc/resolvconf.conf are its own (ip netns exec binds
// /etc/netns/NAME/*), so the host's resolver is never touched.

// laptopNamespace creates namespace ns with a resolv.conf and a
// resolvconf.conf of its own and returns the namespace's resolv.conf as
// seen from the host (the file ip netns exec binds over /etc/resolv.conf).
func laptopNamespace(t *testing.T, dir, ns string) string {
	t.Helper()
	addNamespace(t, ns)
	etc := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	resolv := filepath.Join(etc, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// openresolv writes resolv_conf in place (and its .bak beside it)
	// and keeps its state in state_dir: both inside the test's own files.
	// Debian's resolvconf ignores this file and would write under /run,
	// which is why the test wants openresolv.
	conf := fmt.Sprintf("resolv_conf=%s\nstate_dir=%s\n", resolv, filepath.Join(dir, "resolvconf-state"))
	if err := os.WriteFile(filepath.Join(etc, "resolvconf.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return resolv
}

func requireOpenresolv(t *testing.T) {
	t.Helper()
	out, err := exec.Command("resolvconf", "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "openresolv") {
		t.Skipf("needs openresolv's resolvconf (apt-get install openresolv; .ci/run installs it): %v %s", err, out)
	}
}

// laptopConfig writes a daemon configuration with a full tunnel to an
// absent peer and the extra [interface] lines given.
func laptopConfig(t *testing.T, dir, name, extra string) string {
	t.Helper()
	peer := writeKey(t, dir, name+"-peer")
	writeKey(t, dir, name)
	path := writeConfig(t, dir, name, "10.98.0.1/24", "fd98::1/64", peer, "192.0.2.2:51900", "0.0.0.0/0", "::/0")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text = []byte(strings.Replace(string(text), "\n[[peer]]", extra+"\n[[peer]]", 1))
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLaptopDNS: dns and dns_search set through resolvconf while the
// tunnel is up, removed on SIGTERM, and after a SIGKILL removed by the
// next start.
func TestLaptopDNS(t *testing.T) {
	requireE2E(t)
	requireOpenresolv(t)
	hostResolv := readFile(t, "/etc/resolv.conf")
	_, hostRunErr := os.Stat("/run/resolvconf")
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	ns := fmt.Sprintf("cur-dns-%d", os.Getpid()%100000)
	resolv := laptopNamespace(t, dir, ns)
	cfg := laptopConfig(t, dir, "l", `dns = ["10.98.0.53", "fd98::53"]
dns_search = ["corp.example"]`)

	wantUp := func(when string) {
		t.Helper()
		got := readFile(t, resolv)
		// Exclusive: the namespace's own server is gone while up.
		if !strings.Contains(got, "nameserver 10.98.0.53\nnameserver fd98::53\n") || !strings.Contains(got, "search corp.example") || strings.Contains(got, "192.0.2.53") {
			t.Fatalf("%s: resolv.conf is\n%s", when, got)
		}
		// The daemon's namespace sees the same file as /etc/resolv.conf.
		// Output only: ip netns exec warns on stderr that it cannot bind
		// openresolv's resolv.conf.bak, which has no /etc counterpart.
		out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/etc/resolv.conf").Output()
		if err != nil || string(out) != got {
			t.Fatalf("%s: /etc/resolv.conf in %s is %q (%v), want %q", when, ns, out, err, got)
		}
	}
	wantDown := func(when string) {
		t.Helper()
		got := readFile(t, resolv)
		if strings.Contains(got, "10.98.0.53") || !strings.Contains(got, "nameserver 192.0.2.53") {
			t.Fatalf("%s: resolv.conf is\n%s", when, got)
		}
	}

	// startDaemon's notify socket lives in its directory: one per start.
	starts := 0
	start := func() *daemon {
		t.Helper()
		sub := filepath.Join(dir, fmt.Sprintf("run%d", starts))
		starts++
		if err := os.MkdirAll(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		d := startDaemon(t, sub, ns, bin, cfg)
		d.waitNotify(t, "READY=1")
		return d
	}
	d := start()
	d.waitLog(t, "backend=resolvconf")
	wantUp("up")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(10 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.log.String())
	}
	wantDown("after SIGTERM")

	// SIGKILL leaves the resolvconf entry (and our record of it).
	d = start()
	wantUp("second start")
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	d.wait(10 * time.Second)
	if got := readFile(t, resolv); !strings.Contains(got, "10.98.0.53") {
		t.Fatalf("after SIGKILL the entry is already gone; the test shows nothing:\n%s", got)
	}
	// The next start removes it before anything else; its own entry
	// replaces it, and its SIGTERM leaves nothing.
	d = start()
	d.waitLog(t, "removed DNS settings left by a previous run")
	wantUp("after restart")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	wantDown("after restart and SIGTERM")
	if out, _ := exec.Command("ip", "netns", "exec", ns, "resolvconf", "-l").CombinedOutput(); strings.Contains(string(out), "10.98.0.53") {
		t.Errorf("resolvconf still lists our entry:\n%s", out)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "l.state", "dns-*")); len(matches) > 0 {
		t.Errorf("records left: %v", matches)
	}

	if got := readFile(t, "/etc/resolv.conf"); got != hostResolv {
		t.Errorf("the host's /etc/resolv.conf changed:\n%s\nwas\n%s", got, hostResolv)
	}
	if _, err := os.Stat("/run/resolvconf"); (err == nil) != (hostRunErr == nil) {
		t.Errorf("the host's /run/resolvconf appeared or went: %v, before %v", err, hostRunErr)
	}
}

// TestLaptopDNSUnavailable: dns set but no resolver manager is a clear
// error at start, and nothing stays behind.
func TestLaptopDNSUnavailable(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	ns := fmt.Sprintf("cur-nodns-%d", os.Getpid()%100000)
	addNamespace(t, ns)
	cfg := laptopConfig(t, dir, "n", `dns = ["10.98.0.53"]`)
	// A PATH without resolvconf; the host runs no systemd-resolved (the
	// test skips where it does).
	if _, err := os.Stat("/run/systemd/resolve"); err == nil {
		t.Skip("systemd-resolved runs on this host: the daemon would use it")
	}
	out, err := exec.Command("ip", "netns", "exec", ns, "env", "PATH=/nonexistent", bin, "-c", cfg, "--ctl-dir", ctlDir(dir, ns)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "neither systemd-resolved nor resolvconf is available") {
		t.Fatalf("want the no-resolver error, got %v:\n%s", err, out)
	}
	wantNothingLeft(t, ns)
}

// wantNothingLeft checks that ns has no cur0, no tunnel route and no
// full-tunnel rule.
func wantNothingLeft(t *testing.T, ns string) {
	t.Helper()
	if exec.Command("ip", "-n", ns, "link", "show", "cur0").Run() == nil {
		t.Errorf("%s: cur0 still exists", ns)
	}
	for _, fam := range []string{"-4", "-6"} {
		out, _ := exec.Command("ip", "-n", ns, fam, "route", "show", "table", "all").CombinedOutput()
		if strings.Contains(string(out), "cur0") || strings.Contains(string(out), "table 51900") {
			t.Errorf("%s: routes left:\n%s", ns, out)
		}
		out, _ = exec.Command("ip", "-n", ns, fam, "rule").CombinedOutput()
		if strings.Contains(string(out), "51900") || strings.Contains(string(out), "suppress_prefixlength") {
			t.Errorf("%s: rules left:\n%s", ns, out)
		}
	}
}

// TestLaptopHooks: the four hook lists run in order with %i replaced; a
// failing pre_up stops the start with nothing left behind, and a failing
// down hook does not stop the shutdown.
func TestLaptopHooks(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	ns := fmt.Sprintf("cur-hook-%d", os.Getpid()%100000)
	addNamespace(t, ns)
	trace := filepath.Join(dir, "trace")
	// post_up sees the device (ip link show %i succeeds), post_down no
	// longer does.
	cfg := laptopConfig(t, dir, "h", fmt.Sprintf(`pre_up = ["echo pre_up %%i >> %[1]s", "echo second pre_up >> %[1]s"]
post_up = ["ip link show %%i >/dev/null && echo post_up %%i >> %[1]s"]
pre_down = ["echo pre_down %%i >> %[1]s", "echo failing; exit 3"]
post_down = ["ip link show %%i 2>/dev/null || echo post_down %%i gone >> %[1]s"]`, trace))
	d := startDaemon(t, dir, ns, bin, cfg)
	d.waitNotify(t, "READY=1")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := "pre_up cur0\nsecond pre_up\npost_up cur0\npre_down cur0\npost_down cur0 gone\n"
	if got := readFile(t, trace); got != want {
		t.Errorf("hooks ran as\n%s\nwant\n%s\nlog:\n%s", got, want, d.log.String())
	}
	for _, w := range []string{"line=failing", "exit status 3", "msg=stopped"} {
		if !strings.Contains(d.log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, d.log.String())
		}
	}
	wantNothingLeft(t, ns)

	// A failing pre_up: exit 1, the later hooks do not run.
	os.Remove(trace)
	cfg = laptopConfig(t, dir, "f", fmt.Sprintf(`pre_up = ["echo pre_up >> %[1]s; exit 7", "echo never >> %[1]s"]
post_up = ["echo never >> %[1]s"]
post_down = ["echo never >> %[1]s"]`, trace))
	out, err := exec.Command("ip", "netns", "exec", ns, bin, "-c", cfg, "--ctl-dir", ctlDir(dir, ns)).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "pre_up[0]") {
		t.Fatalf("failing pre_up: %v\n%s", err, out)
	}
	if got := readFile(t, trace); got != "pre_up\n" {
		t.Errorf("after a failing pre_up the hooks ran as %q", got)
	}
	wantNothingLeft(t, ns)

	// A failing post_up: the device existed and goes, with the down
	// hooks run.
	os.Remove(trace)
	cfg = laptopConfig(t, dir, "p", fmt.Sprintf(`post_up = ["exit 5"]
pre_down = ["echo pre_down >> %[1]s"]
post_down = ["echo post_down >> %[1]s"]
hook_timeout = "5s"`, trace))
	out, err = exec.Command("ip", "netns", "exec", ns, bin, "-c", cfg, "--ctl-dir", ctlDir(dir, ns)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "post_up[0]") {
		t.Fatalf("failing post_up: %v\n%s", err, out)
	}
	if got := readFile(t, trace); got != "pre_down\npost_down\n" {
		t.Errorf("after a failing post_up the hooks ran as %q", got)
	}
	wantNothingLeft(t, ns)
}

// TestLaptopDNSResolved: with systemd-resolved "running" the daemon
// configures its link over D-Bus. systemd-resolved itself cannot run
// here (see resolvedtest), so a real dbus-daemon carries the calls to a
// stand-in for org.freedesktop.resolve1, and the daemon runs in a mount
// namespace whose /run/systemd/resolve/ exists.
func TestLaptopDNSResolved(t *testing.T) {
	requireE2E(t)
	if fi, err := os.Stat("/run/systemd"); err != nil || !fi.IsDir() {
		t.Skip("needs a /run/systemd directory to mount over")
	}
	_, hostErr := os.Stat("/run/systemd/resolve")
	dir := t.TempDir()
	addr := resolvedtest.StartBus(t)
	stand := resolvedtest.Serve(t, addr, "")
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	bin := buildDaemon(t, dir)
	// ip netns exec gives the daemon a mount namespace of its own, so the
	// tmpfs hides the host's /run/systemd from it alone.
	wrapper := filepath.Join(dir, "currentd-resolved")
	script := fmt.Sprintf("#!/bin/sh\nmount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/resolve && exec %s \"$@\"\n", bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("cur-rsd-%d", os.Getpid()%100000)
	addNamespace(t, ns)
	cfg := laptopConfig(t, dir, "r", `dns = ["10.98.0.53"]
dns_search = ["corp.example"]`)
	d := startDaemon(t, dir, ns, wrapper, cfg)
	d.waitNotify(t, "READY=1")
	d.waitLog(t, "backend=systemd-resolved")
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "cur0").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ifindex int32
	fmt.Sscanf(string(out), "%d:", &ifindex)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := []resolvedtest.Call{
		{Method: "SetLinkDNS", Ifindex: ifindex, Args: []resolvedtest.LinkDNS{{Family: 2, Address: []byte{10, 98, 0, 53}}}},
		{Method: "SetLinkDomains", Ifindex: ifindex, Args: []resolvedtest.LinkDomain{{Domain: "corp.example"}, {Domain: ".", RoutingOnly: true}}},
		{Method: "SetLinkDefaultRoute", Ifindex: ifindex, Args: true},
		{Method: "RevertLink", Ifindex: ifindex},
	}
	if got := stand.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("systemd-resolved got\n%+v\nwant\n%+v", got, want)
	}
	if _, err := os.Stat("/run/systemd/resolve"); (err == nil) != (hostErr == nil) {
		t.Errorf("the host's /run/systemd/resolve appeared or went: %v, before %v", err, hostErr)
	}
}
