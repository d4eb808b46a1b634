package tunnel

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Roaming in the middle of a bulk transfer (issue 6). TestEndToEndUDP
// moves an address between pings; here the underlay addresses change
// while a TCP transfer through the tunnel is in full flow, and the
// transfer must go on, over the same session, and arrive intact.

// bulkRecv is TestBulkHelper receiving inside a namespace.
type bulkRecv struct {
	out, errOut syncBuffer
	exited      chan struct{} // closed when the process has exited
	err         error         // its exit status, set before exited closes
}

// startBulkRecv starts the bulk receiver in ns, listening on listen, and
// waits until it listens. ctx bounds its life; it is killed at the end of
// the test in any case.
func startBulkRecv(t *testing.T, ctx context.Context, ns, listen string) *bulkRecv {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestBulkHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), bulkEnv+"=recv,"+listen)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &bulkRecv{exited: make(chan struct{})}
	cmd.Stderr = &r.errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			fmt.Fprintln(&r.out, sc.Text())
			if !once && sc.Text() == "listening" {
				once = true
				close(listening)
			}
		}
		r.err = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-r.exited
	})
	select {
	case <-listening:
	case <-r.exited:
		t.Fatalf("receiver exited: %v\n%s%s", r.err, r.out.String(), r.errOut.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("receiver not listening\n%s%s", r.out.String(), r.errOut.String())
	}
	return r
}

// wait waits up to timeout for the receiver to finish and returns the
// SHA-256 and length of what it received.
func (r *bulkRecv) wait(t *testing.T, timeout time.Duration) (sum string, n int64) {
	t.Helper()
	select {
	case <-r.exited:
		if r.err != nil {
			t.Fatalf("receiver: %v\n%s%s", r.err, r.out.String(), r.errOut.String())
		}
	case <-time.After(timeout):
		t.Fatalf("receiver did not finish\n%s%s", r.out.String(), r.errOut.String())
	}
	return parseBulk(t, "receiver", r.out.String())
}

// bulkSender is the command that runs TestBulkHelper in ns to send size
// bytes to addr, paced to take at least minDur.
func bulkSender(ctx context.Context, ns, addr string, size int64, minDur time.Duration) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestBulkHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=send,%s,%d,%s", bulkEnv, addr, size, minDur))
	return cmd
}

// followBound is half the persistent keepalive of the test's peers: a
// move followed later than this was found by the keepalive timer, not
// announced.
const followBound = 2500 * time.Millisecond

// TestE2ERoamMidTransfer sends 96 MiB over TCP through a UDP tunnel
// (paced to at least 6 s) and changes the underlay addresses while it
// flows: after a third of the bytes the sender's namespace A moves from
// 192.0.2.1 to 192.0.2.4, after two thirds the receiver's namespace B
// moves from 192.0.2.2 to 192.0.2.3. Each move is make-before-break: the
// new address is added next to the old one, then the old one is deleted,
// so the kernel can no longer send from it (the daemons' sticky source
// addresses must give way). The other side's daemon must log the endpoint
// change and report the new remote address in `currentctl show --json`
// while the transfer is still running; the transfer must complete with
// the same SHA-256 on both ends, over the session it started on (no new
// handshake).
//
// The sender's move is followed at once: its next data record comes from
// the new address. The receiver only sends TCP acknowledgements, and only
// for data that reaches it; when none was in flight at the move, only a
// datagram of its own can show the other side where it went. currentd
// watches its addresses (routing.WatchAddresses) and sends a keepalive on
// every change, so the move must be followed well before the persistent
// keepalive (5 s) would have shown it.
func TestE2ERoamMidTransfer(t *testing.T) {
	dir, bin, nsA, nsB, vA, vB := e2eSetup(t)
	ctlBin := buildCurrentctl(t, dir)
	// Deleting an interface's primary IPv4 address deletes the secondary
	// ones of the same subnet too, unless they are promoted.
	for _, nv := range [][2]string{{nsA, vA}, {nsB, vB}} {
		mustRun(t, "ip", "netns", "exec", nv[0], "sysctl", "-qw", "net.ipv4.conf."+nv[1]+".promote_secondaries=1")
	}
	a, b := startPair(t, dir, bin, nsA, nsB, "udp")
	e2ePing(t, nsA, "10.99.0.2")
	e2ePing(t, nsB, "10.99.0.1")
	sockA := filepath.Join(ctlDir(dir, nsA), "cur0.sock")
	sockB := filepath.Join(ctlDir(dir, nsB), "cur0.sock")
	// Both dial at start and settle on one session; wait until each side
	// has the other's configured address as its endpoint.
	waitRemote(t, ctlBin, sockA, "192.0.2.2:51900", 20*time.Second)
	waitRemote(t, ctlBin, sockB, "192.0.2.1:51900", 20*time.Second)
	sessions := func() int {
		return strings.Count(a.log.String(), "session established") + strings.Count(b.log.String(), "session established")
	}
	sessions0 := sessions()

	const size = 96 << 20
	minDur := 6 * time.Second
	deadline := 60 * time.Second
	if raceBuild() {
		deadline = 180 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	recv := startBulkRecv(t, ctx, nsB, "10.99.0.2:5201")
	rx0 := ctlShowPeer(t, ctlBin, sockB).RxBytes
	send := bulkSender(ctx, nsA, "10.99.0.2:5201", size, minDur)
	var sout syncBuffer
	send.Stdout, send.Stderr = &sout, &sout
	start := time.Now()
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	sendExited := make(chan struct{})
	var sendErr error
	go func() { sendErr = send.Wait(); close(sendExited) }()
	t.Cleanup(func() { send.Process.Kill(); <-sendExited })
	sending := func() bool {
		select {
		case <-sendExited:
			return false
		default:
			return true
		}
	}

	type move struct {
		name             string
		ns, dev          string
		from, to         string
		watcher          *daemon // the other side, whose endpoint moves
		watcherSock      string
		thirds           int64 // when: after thirds/3 of the bytes
		rxAtMove, rxSeen uint64
	}
	moves := []*move{
		{name: "sender A", ns: nsA, dev: vA, from: "192.0.2.1", to: "192.0.2.4", watcher: b, watcherSock: sockB, thirds: 1},
		{name: "receiver B", ns: nsB, dev: vB, from: "192.0.2.2", to: "192.0.2.3", watcher: a, watcherSock: sockA, thirds: 2},
	}
	for _, m := range moves {
		// Wait until B's tunnel has delivered that much of the transfer.
		want := rx0 + uint64(size*m.thirds/3)
		for {
			rx := ctlShowPeer(t, ctlBin, sockB).RxBytes
			if rx >= want {
				m.rxAtMove = rx - rx0
				break
			}
			if !sending() {
				t.Fatalf("the transfer ended (%v) after %d of %d bytes, before %s moved\n%s", sendErr, rx-rx0, size, m.name, sout.String())
			}
			if ctx.Err() != nil {
				t.Fatalf("%d of %d bytes after %s, before %s moved", rx-rx0, size, time.Since(start).Round(time.Millisecond), m.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		changes0 := strings.Count(m.watcher.log.String(), `msg="endpoint changed"`)
		t0 := time.Now()
		mustRun(t, "ip", "-n", m.ns, "addr", "add", m.to+"/24", "dev", m.dev)
		mustRun(t, "ip", "-n", m.ns, "addr", "del", m.from+"/24", "dev", m.dev)
		if out, _ := exec.Command("ip", "-n", m.ns, "-4", "addr", "show", "dev", m.dev).CombinedOutput(); strings.Contains(string(out), m.from+"/") || !strings.Contains(string(out), m.to+"/24") {
			t.Fatalf("%s: address change did not take:\n%s", m.ns, out)
		}
		// The other side follows: its log and its control socket.
		ep := m.to + ":51900"
		logDeadline := time.Now().Add(20 * time.Second)
		for !endpointLogged(m.watcher.log.String(), changes0, m.from+":51900", ep) {
			if time.Now().After(logDeadline) {
				t.Fatalf("%s moved to %s: %s logged no endpoint change to %s in 20 s", m.name, m.to, m.watcher.ns, ep)
			}
			time.Sleep(20 * time.Millisecond)
		}
		moved, stillSending := time.Since(t0), sending()
		if moved > followBound {
			t.Errorf("%s moved: %s followed only after %s, not at once: the address change was not announced", m.name, m.watcher.ns, moved.Round(time.Millisecond))
		}
		st := ctlShowPeer(t, ctlBin, m.watcherSock)
		if st.RemoteAddress != ep || st.State != "established" {
			t.Errorf("%s after %s moved: currentctl show --json says state %s, remote_address %q, want established at %s", m.watcher.ns, m.name, st.State, st.RemoteAddress, ep)
		}
		m.rxSeen = ctlShowPeer(t, ctlBin, sockB).RxBytes - rx0
		if !stillSending {
			t.Errorf("the transfer was over when %s saw %s move: the move was not mid-transfer", m.watcher.ns, m.name)
		}
		t.Logf("%s moved %s → %s at %.1f MB (%s into the transfer); %s followed in %s, at %.1f MB",
			m.name, m.from, m.to, float64(m.rxAtMove)/1e6, t0.Sub(start).Round(time.Millisecond), m.watcher.ns, moved.Round(time.Millisecond), float64(m.rxSeen)/1e6)
	}

	select {
	case <-sendExited:
	case <-ctx.Done():
		t.Fatalf("transfer not over after %s\n%s", deadline, sout.String())
	}
	elapsed := time.Since(start)
	if sendErr != nil {
		t.Fatalf("sender after %s: %v\n%s", elapsed.Round(time.Millisecond), sendErr, sout.String())
	}
	sentSum, sentN := parseBulk(t, "sender", sout.String())
	recvSum, recvN := recv.wait(t, 10*time.Second)
	if sentN != size || recvN != size {
		t.Errorf("sent %d bytes, received %d, want %d", sentN, recvN, size)
	}
	if sentSum != recvSum {
		t.Errorf("SHA-256 differs: sent %s, received %s", sentSum, recvSum)
	}
	t.Logf("%d MiB in %s (%.0f Mbit/s), SHA-256 %s on both ends", size>>20, elapsed.Round(time.Millisecond), float64(size)*8/elapsed.Seconds()/1e6, recvSum)
	if n := sessions(); n != sessions0 {
		t.Errorf("%d sessions established during the transfer: roaming must keep the session", n-sessions0)
	}
	// Both endpoints stay where they moved, and the tunnel still works.
	if st := ctlShowPeer(t, ctlBin, sockA); st.RemoteAddress != "192.0.2.3:51900" {
		t.Errorf("A's endpoint for B is %q after the transfer, want 192.0.2.3:51900", st.RemoteAddress)
	}
	if st := ctlShowPeer(t, ctlBin, sockB); st.RemoteAddress != "192.0.2.4:51900" {
		t.Errorf("B's endpoint for A is %q after the transfer, want 192.0.2.4:51900", st.RemoteAddress)
	}
	e2ePing(t, nsA, "10.99.0.2")
	e2ePing(t, nsB, "10.99.0.1")
	stopDaemon(t, a)
	stopDaemon(t, b)
	if t.Failed() || testing.Verbose() {
		t.Logf("daemon A log:\n%s", a.log.String())
		t.Logf("daemon B log:\n%s", b.log.String())
	}
}

// endpointLogged reports whether log has, after its first skip "endpoint
// changed" lines, one that moves the endpoint from from to to.
func endpointLogged(log string, skip int, from, to string) bool {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `msg="endpoint changed"`) {
			continue
		}
		n++
		if n > skip && strings.Contains(l, "from="+from) && strings.Contains(l, "to="+to) {
			return true
		}
	}
	return false
}

// waitRemote waits until the daemon behind sock reports an established
// session with remote address want.
func waitRemote(t *testing.T, ctlBin, sock, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := ctlShowPeer(t, ctlBin, sock)
		if st.State == "established" && st.RemoteAddress == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %s, remote address %q after %s, want established at %s", sock, st.State, st.RemoteAddress, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
