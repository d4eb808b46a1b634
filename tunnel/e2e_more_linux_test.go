package tunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// More end-to-end tests (issue 6): bad configurations, a bulk transfer
// under epoch updates, allowed-IPs enforcement and the auto → TCP
// fallback. They share the helpers of e2e_linux_test.go and
// e2e_udp_linux_test.go.

// buildCurrentctl builds currentctl into dir (e2eSetup builds currentd).
func buildCurrentctl(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "currentctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/current-vpn/current/cmd/currentctl").CombinedOutput(); err != nil {
		t.Fatalf("building currentctl: %v\n%s", err, out)
	}
	return bin
}

// TestE2EBadConfig starts the real daemon on broken configurations: each
// must make it exit non-zero at once, with one line on stderr naming the
// problem, and without creating the interface.
func TestE2EBadConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test needs root: a valid-looking configuration could create a TUN device")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("end-to-end test needs ip(8) (iproute2)")
	}
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	peerKey := writeKey(t, dir, "peer")
	id := fmt.Sprintf("%d", os.Getpid()%100000)

	type tc struct {
		name string
		// body returns the configuration text for interface ifname and
		// the directory of the case.
		body func(t *testing.T, cdir, ifname string) string
		want []string // substrings of the error line
	}
	base := func(cdir, ifname, keyFile, extraIface, peers string) string {
		return fmt.Sprintf(`[interface]
name = %q
private_key_file = %q
listen_port = 51901
addresses = ["10.98.0.1/24"]
state_dir = %q
%s
%s`, ifname, keyFile, filepath.Join(cdir, "state"), extraIface, peers)
	}
	onePeer := fmt.Sprintf(`[[peer]]
name = "peer"
public_key = %q
endpoint = "192.0.2.2:51901"
allowed_ips = ["10.98.0.2/32"]
`, peerKey)
	ownKey := func(t *testing.T, cdir string) string {
		t.Helper()
		writeKey(t, cdir, "own")
		return filepath.Join(cdir, "own.key")
	}
	cases := []tc{
		{
			name: "unknown-key",
			body: func(t *testing.T, cdir, ifname string) string {
				return base(cdir, ifname, ownKey(t, cdir), `colour = "blue"`, onePeer)
			},
			// line 7: the line after state_dir.
			want: []string{".toml:7:", "interface.colour", "unknown key"},
		},
		{
			name: "bad-cidr",
			body: func(t *testing.T, cdir, ifname string) string {
				return base(cdir, ifname, ownKey(t, cdir), "", strings.Replace(onePeer, "10.98.0.2/32", "10.98.0.300/32", 1))
			},
			// line 12: allowed_ips of the peer.
			want: []string{".toml:12:", "peer[0].allowed_ips", "10.98.0.300/32"},
		},
		{
			name: "key-mode-0644",
			body: func(t *testing.T, cdir, ifname string) string {
				k := ownKey(t, cdir)
				if err := os.Chmod(k, 0o644); err != nil {
					t.Fatal(err)
				}
				return base(cdir, ifname, k, "", onePeer)
			},
			want: []string{".toml:3:", "interface.private_key_file", "own.key", "0644"},
		},
		{
			name: "missing-key-file",
			body: func(t *testing.T, cdir, ifname string) string {
				return base(cdir, ifname, filepath.Join(cdir, "nonexistent.key"), "", onePeer)
			},
			want: []string{".toml:3:", "interface.private_key_file", "nonexistent.key", "does not exist"},
		},
		{
			name: "duplicate-peer-key",
			body: func(t *testing.T, cdir, ifname string) string {
				second := fmt.Sprintf(`
[[peer]]
name = "peer2"
public_key = %q
allowed_ips = ["10.98.0.3/32"]
`, peerKey)
				return base(cdir, ifname, ownKey(t, cdir), "", onePeer+second)
			},
			// line 16: the second peer's public_key.
			want: []string{".toml:16:", "peer[1].public_key", "same key"},
		},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cdir := filepath.Join(dir, c.name)
			if err := os.MkdirAll(cdir, 0o700); err != nil {
				t.Fatal(err)
			}
			ifname := fmt.Sprintf("cbad%d-%s", i, id)
			cfg := filepath.Join(cdir, "bad.toml")
			if err := os.WriteFile(cfg, []byte(c.body(t, cdir, ifname)), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-c", cfg, "--ctl-dir", filepath.Join(cdir, "ctl"))
			var stdout, stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			elapsed := time.Since(start)
			if ctx.Err() != nil {
				t.Fatalf("currentd still running after %s (killed); stderr:\n%s", elapsed, stderr.String())
			}
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err == nil {
				code = 0
			} else {
				t.Fatalf("running currentd: %v", err)
			}
			if code == 0 {
				t.Errorf("currentd exited 0 on a bad configuration")
			}
			errText := strings.TrimRight(stderr.String(), "\n")
			lines := strings.Split(errText, "\n")
			if errText == "" || len(lines) != 1 {
				t.Errorf("want exactly one line on stderr, got %d:\n%s", len(lines), errText)
			}
			for _, w := range c.want {
				if !strings.Contains(errText, w) {
					t.Errorf("stderr does not name %q:\n%s", w, errText)
				}
			}
			if stdout.String() != "" {
				t.Errorf("stdout not empty: %q", stdout.String())
			}
			if out, err := exec.Command("ip", "link", "show", ifname).CombinedOutput(); err == nil {
				exec.Command("ip", "link", "del", ifname).Run()
				t.Errorf("interface %s exists after the failed start:\n%s", ifname, out)
			}
			t.Logf("exit %d after %s: %s", code, elapsed.Round(time.Millisecond), errText)
		})
	}
}

// startPair starts two daemons with transport transport between the
// namespaces of e2eSetup and waits until A reaches B through the tunnel;
// flags go to both daemons.
func startPair(t *testing.T, dir, bin, nsA, nsB, transport string, flags ...string) (a, b *daemon) {
	t.Helper()
	ka, kb := writeKey(t, dir, "a"), writeKey(t, dir, "b")
	cfgA := writeConfigT(t, dir, "a", "10.99.0.1/24", "fd99::1/64", kb, "192.0.2.2:51900", "10.99.0.2/32", "fd99::2/128", transport)
	cfgB := writeConfigT(t, dir, "b", "10.99.0.2/24", "fd99::2/64", ka, "192.0.2.1:51900", "10.99.0.1/32", "fd99::1/128", transport)
	a = startDaemon(t, dir, nsA, bin, cfgA, flags...)
	b = startDaemon(t, dir, nsB, bin, cfgB, flags...)
	a.waitNotify(t, "READY=1")
	b.waitNotify(t, "READY=1")
	return a, b
}

// ctlShowPeer is the one peer of `currentctl show --json` (ctlShow, which
// also checks every documented field).
func ctlShowPeer(t *testing.T, ctlBin, sock string) ctlPeer {
	t.Helper()
	st := ctlShow(t, ctlBin, sock)
	if len(st.Peers) != 1 {
		t.Fatalf("currentctl show --json: want one peer, got %+v", st.Peers)
	}
	return st.Peers[0]
}

// The bulk transfer runs this test binary in each namespace with
// $CURRENT_TEST_BULK set: "recv,LISTENADDR" or "send,ADDR,BYTES,MINDURATION"
// (the sender paces itself to take at least MINDURATION).
// Each side prints "sha256 HEX BYTES" on success.
const bulkEnv = "CURRENT_TEST_BULK"

func TestBulkHelper(t *testing.T) {
	arg := os.Getenv(bulkEnv)
	if arg == "" {
		t.Skip("helper process for the end-to-end bulk transfer test")
	}
	f := strings.Split(arg, ",")
	h := sha256.New()
	var n int64
	switch f[0] {
	case "recv":
		ln, err := net.Listen("tcp", f[1])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("listening")
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		c.SetDeadline(time.Now().Add(5 * time.Minute))
		n, err = io.Copy(h, c)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	case "send":
		total, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialTimeout("tcp", f[1], 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Minute))
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
		rng := rand.NewChaCha8(seed)
		buf := make([]byte, 256<<10)
		// Pace the transfer to last at least minDur: the epoch updates
		// must happen while data flows.
		minDur, err := time.ParseDuration(f[3])
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for n < total {
			if due := start.Add(time.Duration(float64(minDur) * float64(n) / float64(total))); time.Now().Before(due) {
				time.Sleep(time.Until(due))
			}
			chunk := buf[:min(int64(len(buf)), total-n)]
			rng.Read(chunk)
			h.Write(chunk)
			if _, err := c.Write(chunk); err != nil {
				t.Fatalf("after %d bytes: %v", n, err)
			}
			n += int64(len(chunk))
		}
		// Half-close and wait for the receiver's close, so that the
		// sender does not report success before the data is through.
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatal(err)
		}
		c.Close()
	default:
		t.Fatalf("bad %s=%q", bulkEnv, arg)
	}
	fmt.Printf("sha256 %s %d\n", hex.EncodeToString(h.Sum(nil)), n)
}

func parseBulk(t *testing.T, who, out string) (sum string, n int64) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "sha256" {
			n, _ = strconv.ParseInt(f[2], 10, 64)
			return f[1], n
		}
	}
	t.Fatalf("%s printed no hash:\n%s", who, out)
	return "", 0
}

// TestE2EBulkTransfer sends 200 MB over TCP through a UDP tunnel while the
// daemons update the epoch every second (SIGUSR1, alternating sides), and
// checks the data by SHA-256 on both ends.
func TestE2EBulkTransfer(t *testing.T) {
	dir, bin, nsA, nsB, _, _ := e2eSetup(t)
	ctlBin := buildCurrentctl(t, dir)
	a, b := startPair(t, dir, bin, nsA, nsB, "udp")
	e2ePing(t, nsA, "10.99.0.2")
	sockA := filepath.Join(ctlDir(dir, nsA), "cur0.sock")
	epoch0 := ctlShowPeer(t, ctlBin, sockA).Epoch
	changes0 := strings.Count(a.log.String(), "epoch changed")

	const size = 200 << 20
	// The race detector slows the daemons several times over.
	deadline := 40 * time.Second
	if raceBuild() {
		deadline = 150 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	recv := startBulkRecv(t, ctx, nsB, "10.99.0.2:5201")

	// Epoch updates every second, alternating sides, until the transfer
	// is over.
	stop := make(chan struct{})
	sigDone := make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sigDone <- n
				return
			case <-tick.C:
				d := a
				if n%2 == 1 {
					d = b
				}
				d.cmd.Process.Signal(syscall.SIGUSR1)
				n++
			}
		}
	}()

	start := time.Now()
	// Unpaced, 200 MB take about 3 s here; at least 8 s leave room for
	// seven epoch updates.
	send := bulkSender(ctx, nsA, "10.99.0.2:5201", size, 8*time.Second)
	sout, serr := send.CombinedOutput()
	elapsed := time.Since(start)
	close(stop)
	signals := <-sigDone
	// Epoch changes during the transfer: the sender returns once the
	// receiver has everything.
	changes := strings.Count(a.log.String(), "epoch changed") - changes0
	if serr != nil {
		t.Fatalf("sender after %s: %v\n%s", elapsed.Round(time.Millisecond), serr, sout)
	}
	recvSum, recvN := recv.wait(t, 10*time.Second)
	sentSum, sentN := parseBulk(t, "sender", string(sout))
	if sentN != size || recvN != size {
		t.Errorf("sent %d bytes, received %d, want %d", sentN, recvN, size)
	}
	if sentSum != recvSum {
		t.Errorf("SHA-256 differs: sent %s, received %s", sentSum, recvSum)
	}

	epoch1 := ctlShowPeer(t, ctlBin, sockA).Epoch
	t.Logf("%d MB in %s (%.0f Mbit/s), %d SIGUSR1, %d epoch changes logged by A, epoch %d → %d",
		size>>20, elapsed.Round(time.Millisecond), float64(size)*8/elapsed.Seconds()/1e6, signals, changes, epoch0, epoch1)
	if changes < 5 {
		t.Errorf("A logged %d epoch changes during the transfer, want at least 5", changes)
	}
	if epoch1 < epoch0+5 {
		t.Errorf("epoch %d after the transfer, %d before: want at least 5 updates", epoch1, epoch0)
	}
	stopDaemon(t, a)
	stopDaemon(t, b)
}

// raceBuild reports whether this test binary, which runs the transfer's
// sender and receiver, was built with -race. The daemon is built by the go
// tool and gets -race only from $GOFLAGS; the deadline then set fits both
// (GOFLAGS=-race go test -race: about 45 s for the transfer here).
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// The allowed-IPs test sends from B's tunnel with a source address A does
// not allow for B, by running this test binary in B's namespace with
// $CURRENT_TEST_SPOOF = "SRC,DST": one ICMP echo from SRC to DST, then it
// prints "answered" or "unanswered".
const spoofEnv = "CURRENT_TEST_SPOOF"

func TestSpoofHelper(t *testing.T) {
	arg := os.Getenv(spoofEnv)
	if arg == "" {
		t.Skip("helper process for the end-to-end allowed-IPs test")
	}
	src, dst, _ := strings.Cut(arg, ",")
	c, err := icmp.ListenPacket("ip4:icmp", src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("current e2e spoof")}}
	b, err := m.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(b, &net.IPAddr{IP: netip.MustParseAddr(dst).AsSlice()}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			fmt.Println("unanswered")
			return
		}
		rm, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || rm.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := rm.Body.(*icmp.Echo); ok && e.ID == id {
			fmt.Println("answered")
			return
		}
	}
}

func nsSpoofPing(t *testing.T, ns, src, dst string) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestSpoofHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), spoofEnv+"="+src+","+dst)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("spoof helper in %s: %v\n%s", ns, err, out)
	}
	switch {
	case strings.Contains(string(out), "\nunanswered\n") || strings.HasPrefix(string(out), "unanswered\n"):
		return "unanswered"
	case strings.Contains(string(out), "\nanswered\n") || strings.HasPrefix(string(out), "answered\n"):
		return "answered"
	}
	t.Fatalf("spoof helper printed no verdict:\n%s", out)
	return ""
}

// TestE2EAllowedIPs has B send into the tunnel from an address outside
// the allowed IPs A has for B: A must drop the packet (and count it as
// bad_source) instead of delivering it.
func TestE2EAllowedIPs(t *testing.T) {
	dir, bin, nsA, nsB, _, _ := e2eSetup(t)
	ctlBin := buildCurrentctl(t, dir)
	a, b := startPair(t, dir, bin, nsA, nsB, "udp")
	e2ePing(t, nsB, "10.99.0.1")
	sockA := filepath.Join(ctlDir(dir, nsA), "cur0.sock")

	// Control: from B's allowed address, the same helper is answered.
	if v := nsSpoofPing(t, nsB, "10.99.0.2", "10.99.0.1"); v != "answered" {
		t.Fatalf("echo from the allowed address 10.99.0.2: %s", v)
	}
	// A answers 10.99.5.5 through the tunnel if it ever accepts the
	// packet: the route exists, only the allowed IPs stand in the way.
	mustRun(t, "ip", "-n", nsB, "addr", "add", "10.99.5.5/32", "dev", "cur0")
	mustRun(t, "ip", "-n", nsA, "route", "add", "10.99.5.0/24", "dev", "cur0")
	before := ctlShowPeer(t, ctlBin, sockA)
	const n = 3
	for i := 0; i < n; i++ {
		if v := nsSpoofPing(t, nsB, "10.99.5.5", "10.99.0.1"); v != "unanswered" {
			t.Errorf("echo from 10.99.5.5 (outside A's allowed IPs for B) was %s", v)
		}
	}
	after := ctlShowPeer(t, ctlBin, sockA)
	t.Logf("A's bad_source drops: %d → %d", before.Dropped.BadSource, after.Dropped.BadSource)
	if after.Dropped.BadSource < before.Dropped.BadSource+n {
		t.Errorf("A's bad_source drop counter went from %d to %d, want at least +%d", before.Dropped.BadSource, after.Dropped.BadSource, n)
	}
	// The session survives: allowed traffic still flows.
	e2ePing(t, nsB, "10.99.0.1")
	stopDaemon(t, a)
	stopDaemon(t, b)
}

// TestE2EAutoFallback blocks UDP between the namespaces: peers with
// transport = "auto" must fall back to TCP, and traffic must flow.
func TestE2EAutoFallback(t *testing.T) {
	dir, bin, nsA, nsB, vA, vB := e2eSetup(t)
	for _, nv := range [][2]string{{nsA, vA}, {nsB, vB}} {
		blockUDP(t, nv[0], nv[1])
	}
	start := time.Now()
	a, b := startPair(t, dir, bin, nsA, nsB, "auto")
	e2ePing(t, nsA, "10.99.0.2")
	t.Logf("A reaches B %s after the start (4 s of them waiting for UDP)", time.Since(start).Round(time.Millisecond))
	e2ePing(t, nsB, "10.99.0.1")
	e2ePing(t, nsA, "fd99::2")
	for _, d := range []*daemon{a, b} {
		if !strings.Contains(d.log.String(), "falling back to TCP") && !strings.Contains(d.log.String(), "transport=tcp") {
			t.Errorf("%s: neither fell back to TCP nor used it", d.ns)
		}
	}
	if !strings.Contains(a.log.String()+b.log.String(), "falling back to TCP") {
		t.Errorf("no side logged the fallback to TCP")
	}
	if !strings.Contains(a.log.String()+b.log.String(), "transport=tcp") {
		t.Errorf("no TCP session in the logs")
	}
	if strings.Contains(a.log.String()+b.log.String(), "transport=udp remote") {
		t.Errorf("a UDP session was established although UDP is blocked")
	}
	stopDaemon(t, a)
	stopDaemon(t, b)
	if t.Failed() || testing.Verbose() {
		t.Logf("daemon A log:\n%s", a.log.String())
		t.Logf("daemon B log:\n%s", b.log.String())
	}
}

// blockUDP drops every UDP datagram that arrives in ns on dev, as a
// firewall that lets only TCP through would: with an nftables rule when
// nft is installed (.ci/run installs it), else with a policy-routing rule
// (ip rule ... ipproto udp blackhole, Linux 4.17+) ahead of the local
// table, which moves after it.
func blockUDP(t *testing.T, ns, dev string) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err == nil {
		rules := fmt.Sprintf("table inet curtest {\n chain input {\n  type filter hook input priority 0; policy accept;\n  iifname %q meta l4proto udp counter drop\n }\n}\n", dev)
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft in %s: %v: %s", ns, err, bytes.TrimSpace(out))
		}
		t.Logf("%s: UDP on %s dropped by nftables", ns, dev)
		return
	}
	if out, err := exec.Command("ip", "-n", ns, "rule", "add", "pref", "10", "iif", dev, "ipproto", "udp", "blackhole").CombinedOutput(); err != nil {
		t.Skipf("cannot block UDP: no nft, and ip rule ipproto is not supported here (%v: %s)", err, bytes.TrimSpace(out))
	}
	mustRun(t, "ip", "-n", ns, "rule", "add", "pref", "100", "lookup", "local")
	mustRun(t, "ip", "-n", ns, "rule", "del", "pref", "0")
	t.Logf("%s: UDP on %s dropped by a blackhole rule (no nft installed)", ns, dev)
}
