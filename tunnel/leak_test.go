package tunnel

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// File descriptor leak checks for the Device lifecycle (issue 6): every
// socket, connection and file a Device opens must be closed by Close, or
// by New when it fails. TestNoGoroutineLeak checks the goroutines.

// fdSet maps each open descriptor of this process to what it refers to
// (readlink of /proc/self/fd/N: a path, "socket:[inode]", "anon_inode:...").
type fdSet map[int]string

// openFDs lists this process's open descriptors.
func openFDs(t *testing.T) fdSet {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list file descriptors: %v", err)
	}
	fds := fdSet{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// ReadDir's own descriptor is closed by now: readlink fails.
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		fds[n] = target
	}
	return fds
}

// fdSnapshot takes the set of open descriptors to compare with later. It
// first makes the runtime open what it keeps for the life of the process
// (the network poller's epoll and wake-up descriptors), so that a test
// that is the first to touch the network does not count those.
func fdSnapshot(t *testing.T) fdSet {
	t.Helper()
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	return openFDs(t)
}

// added returns the descriptors of now that before did not have (a
// number reused for something else counts as new), sorted.
func (before fdSet) added(now fdSet) []int {
	var out []int
	for fd, target := range now {
		if old, ok := before[fd]; !ok || old != target {
			out = append(out, fd)
		}
	}
	slices.Sort(out)
	return out
}

// assertNoNewFDs fails t if descriptors opened since before are still
// open, after giving deferred closes (a Close racing with a blocked
// read) a moment to happen.
func assertNoNewFDs(t *testing.T, before fdSet) {
	t.Helper()
	if r := fdLeaks(t, before, 2*time.Second); r != "" {
		t.Errorf("file descriptors still open 2 s after the device was done with them:%s", r)
	}
}

// fdLeaks polls for up to wait until every descriptor opened since before
// is closed, and returns "" or one line per descriptor still open, with
// its readlink target and, for a TCP or UDP socket, its addresses.
func fdLeaks(t *testing.T, before fdSet, wait time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		now := openFDs(t)
		leaked := before.added(now)
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			socks := socketNames()
			var b strings.Builder
			for _, fd := range leaked {
				fmt.Fprintf(&b, "\n\tfd %d → %s", fd, now[fd])
				if s, ok := socks[now[fd]]; ok {
					fmt.Fprintf(&b, " (%s)", s)
				}
			}
			return b.String()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkFDLeak snapshots the open descriptors now and, when t ends, after
// the cleanups registered after this call (startNode's Close), fails t if
// any descriptor opened since is still open. Call it first in a test.
func checkFDLeak(t *testing.T) {
	t.Helper()
	before := fdSnapshot(t)
	t.Cleanup(func() {
		if t.Failed() {
			return // the devices may not have closed cleanly
		}
		assertNoNewFDs(t, before)
	})
}

// socketNames maps "socket:[inode]" to the protocol and addresses of the
// TCP and UDP sockets in /proc/self/net, to name leaked sockets.
func socketNames() map[string]string {
	out := map[string]string{}
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open("/proc/self/net/" + proto)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 {
				continue
			}
			out["socket:["+fl[9]+"]"] = fmt.Sprintf("%s %s → %s state %s", proto, procAddr(fl[1]), procAddr(fl[2]), fl[3])
		}
		f.Close()
	}
	return out
}

// procAddr decodes an address of /proc/net/{tcp,udp}[6]: hex words in
// host (little-endian) order, a colon, the port in hex.
func procAddr(s string) string {
	h, p, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(h)
	port, perr := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil || perr != nil || len(raw)%4 != 0 {
		return s
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	a, ok := netip.AddrFromSlice(raw)
	if !ok {
		return s
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)).String()
}

// newSockets counts the sockets among the descriptors opened since before.
func newSockets(t *testing.T, before fdSet) int {
	now := openFDs(t)
	n := 0
	for _, fd := range before.added(now) {
		if strings.HasPrefix(now[fd], "socket:") {
			n++
		}
	}
	return n
}

// TestFDLeakCheck checks the check: a socket opened after the snapshot
// is reported, by number and address, until it is closed.
func TestFDLeakCheck(t *testing.T) {
	before := fdSnapshot(t)
	uc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	r := fdLeaks(t, before, 50*time.Millisecond)
	if want := "(udp " + uc.LocalAddr().String() + " → "; !strings.Contains(r, "socket:[") || !strings.Contains(r, want) {
		t.Errorf("report on an open UDP socket: %q, want it to name %q", r, want)
	}
	t.Logf("report on an open socket:%s", r)
	uc.Close()
	if r := fdLeaks(t, before, 2*time.Second); r != "" {
		t.Errorf("closed socket still reported:%s", r)
	}
}

// TestNoFDLeakListeners: a device with a TCP listener and UDP sockets,
// and one with UDP sockets only, close every socket they opened.
func TestNoFDLeakListeners(t *testing.T) {
	for _, port := range []int{0, -1} {
		t.Run(fmt.Sprintf("listen-port=%d", port), func(t *testing.T) {
			before := fdSnapshot(t)
			ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
			d, err := New(Config{Suite: testSuite, PrivateKey: ka.priv, ListenPort: port, StateDir: t.TempDir(),
				Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}}}, newFakeTUN(), newFakeLink())
			if err != nil {
				t.Fatal(err)
			}
			want := len(d.udp.fns)
			if port >= 0 {
				want++
				if d.ListenAddr() == nil {
					t.Fatal("no TCP listener")
				}
			}
			if d.UDPPort() == 0 || want == 0 {
				t.Fatal("no UDP sockets")
			}
			// The check must see what it is to find closed.
			if n := newSockets(t, before); n < want {
				t.Fatalf("%d new sockets while the device runs, want at least %d", n, want)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			assertNoNewFDs(t, before)
		})
	}
}

// TestNoFDLeakSession: devices that established sessions with each other
// and exchanged packets (over TCP, and over UDP with saved state) close
// their connections, sockets and state files. The TCP case also has a
// stranger's connection waiting to be identified, and a second peer whose
// dials are refused, at Close.
func TestNoFDLeakSession(t *testing.T) {
	exchange := func(t *testing.T, a, b *node) {
		t.Helper()
		for i := range 20 {
			p := ipPacket("10.0.0.2", "10.0.0.1", fmt.Sprintf("b to a %d", i))
			b.tun.in <- p
			a.tun.expect(t, p)
			q := ipPacket("10.0.0.1", "10.0.0.2", fmt.Sprintf("a to b %d", i))
			a.tun.in <- q
			b.tun.expect(t, q)
		}
	}
	t.Run("tcp", func(t *testing.T) {
		before := fdSnapshot(t)
		a, b := pair(t)
		exchange(t, a, b)
		// A refused dial port: a listener closed again.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		kc, kd := newKeys(t, testSuite), newKeys(t, testSuite)
		if err := b.dev.Reconfigure([]PeerConfig{
			{Name: "a", PublicKey: a.keys.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32", "fd00::1/128")},
			{Name: "c", PublicKey: kc.pub, Endpoint: dead, AllowedIPs: pfxs("10.0.0.3/32"), Transport: TransportTCP},
		}); err != nil {
			t.Fatal(err)
		}
		b.tun.in <- ipPacket("10.0.0.2", "10.0.0.3", "to nowhere")
		waitFor(t, "dials to the dead port", func() bool { return b.dev.Stats().Peers["c"].Dials >= 2 })
		exchange(t, a, b)
		// A stranger that sends half a ClientHello and waits.
		c, err := net.Dial("tcp", a.dev.ListenAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hello := sealedHelloBytes(t, kd, a.dev)
		if _, err := c.Write(hello[:len(hello)/2]); err != nil {
			t.Fatal(err)
		}
		if n := newSockets(t, before); n < 4 {
			t.Fatalf("%d new sockets with two devices and a session, want at least 4", n)
		}
		if err := a.dev.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.dev.Close(); err != nil {
			t.Fatal(err)
		}
		c.Close()
		assertNoNewFDs(t, before)
	})
	t.Run("udp", func(t *testing.T) {
		before := fdSnapshot(t)
		dirA, dirB := t.TempDir(), t.TempDir()
		a, b := udpPair(t, dirA, dirB)
		exchange(t, a, b)
		a.dev.Rekey()
		waitFor(t, "epoch update", func() bool { return b.dev.Stats().Peers["a"].Epochs >= 1 })
		exchange(t, a, b)
		if err := b.dev.Close(); err != nil {
			t.Fatal(err)
		}
		// B saved its session at Close; a restarted B resumes it.
		b2 := startNode(t, Config{ListenPort: 0, StateDir: dirB, Peers: []PeerConfig{{Name: "a", PublicKey: a.keys.pub, Endpoint: fmt.Sprintf("127.0.0.1:%d", a.dev.UDPPort()), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}}}, b.keys)
		exchange(t, a, b2)
		if s := b2.dev.Stats().Peers["a"]; s.Resumed != 1 {
			t.Fatalf("B did not resume: %+v", s)
		}
		if err := a.dev.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b2.dev.Close(); err != nil {
			t.Fatal(err)
		}
		assertNoNewFDs(t, before)
	})
}

// TestNoFDLeakFailedNew: a New that fails, before opening anything (a bad
// configuration) or midway (its TCP port, its UDP port or only its IPv6
// UDP port taken), leaves nothing open.
func TestNoFDLeakFailedNew(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	peers := []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}
	type tc struct {
		name string
		// setup occupies what New needs and returns the configuration,
		// or skips; what it opens is closed at the end of the subtest.
		setup func(t *testing.T) Config
	}
	cases := []tc{
		{"duplicate-peer-key", func(t *testing.T) Config {
			return Config{ListenPort: 0, Peers: append(slices.Clone(peers), PeerConfig{Name: "b2", PublicKey: kb.pub})}
		}},
		{"listen-port-out-of-range", func(t *testing.T) Config {
			return Config{ListenPort: 70000, Peers: peers}
		}},
		{"tcp-port-in-use", func(t *testing.T) Config {
			ln, err := net.Listen("tcp", ":0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			return Config{ListenPort: ln.Addr().(*net.TCPAddr).Port, Peers: peers}
		}},
		{"udp-port-in-use", func(t *testing.T) Config {
			// The TCP listener opens, then the UDP sockets fail.
			return Config{ListenPort: busyUDPPort(t, "udp", ":0"), Peers: peers}
		}},
		{"udp6-port-in-use", func(t *testing.T) Config {
			// The TCP listener and the IPv4 UDP socket open, then the
			// IPv6 one fails.
			return Config{ListenPort: busyUDPPort(t, "udp6", "[::]:0"), Peers: peers}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.setup(t)
			before := fdSnapshot(t)
			cfg.Suite, cfg.PrivateKey = testSuite, ka.priv
			tun, link := newFakeTUN(), newFakeLink()
			d, err := New(cfg, tun, link)
			if err == nil {
				d.Close()
				t.Fatal("New succeeded")
			}
			t.Logf("New: %v", err)
			if !link.empty() {
				t.Errorf("link configuration left: %v %v", link.addrs, link.routes)
			}
			assertNoNewFDs(t, before)
		})
	}
}

// busyUDPPort holds a UDP socket on network, addr until the end of t and
// returns its port, provided the TCP port of that number is free (New
// must get past its TCP listener).
func busyUDPPort(t *testing.T, network, addr string) int {
	t.Helper()
	for range 20 {
		uc, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Skipf("cannot open a %s socket: %v", network, err)
		}
		port := uc.LocalAddr().(*net.UDPAddr).Port
		if ln, err := net.Listen("tcp", ":"+strconv.Itoa(port)); err == nil {
			ln.Close()
			t.Cleanup(func() { uc.Close() })
			return port
		}
		uc.Close()
	}
	t.Fatal("no UDP port whose TCP twin is free")
	return 0
}
