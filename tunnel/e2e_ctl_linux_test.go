package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/current-vpn/current/metrics/metricstest"
	dto "github.com/prometheus/client_model/go"
)

// End-to-end acceptance tests of the control socket (issue 7): real
// daemons in namespaces, driven through the real currentctl binary, each
// daemon with its own socket directory (--ctl-dir; startDaemon sets it).
// They share the helpers of e2e_linux_test.go, e2e_udp_linux_test.go and
// e2e_more_linux_test.go.

// ctlTimeout bounds one run of currentctl; rekeys pass --timeout below it.
const ctlTimeout = 40 * time.Second

// ctlOut is what one run of currentctl did.
type ctlOut struct {
	stdout, stderr string
	code           int // exit status
}

func (o ctlOut) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", o.code, o.stdout, o.stderr)
}

// ctlRun runs currentctl against the socket sock, as cred's user when cred
// is not nil, and returns its output and exit status. It fails t only if
// currentctl could not run or did not finish in time.
func ctlRun(t *testing.T, bin, sock string, cred *syscall.Credential, args ...string) ctlOut {
	t.Helper()
	o, err := ctlTry(bin, sock, cred, args...)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// ctlTry is ctlRun for goroutines other than the test's: it returns the
// failures ctlRun reports.
func ctlTry(bin, sock string, cred *syscall.Credential, args ...string) (ctlOut, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--socket", sock}, args...)...)
	// A clean environment: no $CURRENT_INTERFACE from the caller.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
	}
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	o := ctlOut{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return o, fmt.Errorf("currentctl %s: no exit within %s", strings.Join(args, " "), ctlTimeout)
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		o.code = ee.ExitCode()
	default:
		return o, fmt.Errorf("currentctl %s: %v", strings.Join(args, " "), err)
	}
	return o, nil
}

// ctlMust runs currentctl as root and fails t unless it exits 0.
func ctlMust(t *testing.T, bin, sock string, args ...string) string {
	t.Helper()
	o := ctlRun(t, bin, sock, nil, args...)
	if o.code != 0 {
		t.Fatalf("currentctl %s: %s", strings.Join(args, " "), o)
	}
	return o.stdout
}

// ctlStatus is `currentctl show --json` as docs/ctl.md specifies it.
type ctlStatus struct {
	Time      time.Time `json:"time"`
	Interface struct {
		Name          string  `json:"name"`
		PublicKey     string  `json:"public_key"`
		ListenPort    int     `json:"listen_port"`
		Suite         string  `json:"suite"`
		RekeyInterval float64 `json:"rekey_interval_seconds"`
		RekeyBytes    uint64  `json:"rekey_bytes"`
	} `json:"interface"`
	Peers []ctlPeer `json:"peers"`
}

type ctlPeer struct {
	Name            string     `json:"name"`
	PublicKey       string     `json:"public_key"`
	Endpoint        string     `json:"endpoint"`
	RemoteAddress   string     `json:"remote_address"`
	AllowedIPs      []string   `json:"allowed_ips"`
	Transport       string     `json:"transport"`
	ActiveTransport string     `json:"active_transport"`
	TransportReason string     `json:"transport_reason"`
	FallbackSince   *time.Time `json:"fallback_since"`
	UDPProbing      bool       `json:"udp_probing"`
	NextUDPProbe    *time.Time `json:"next_udp_probe"`
	Keepalive       float64    `json:"persistent_keepalive_seconds"`
	State           string     `json:"state"`
	Epoch           uint64     `json:"epoch"`
	LastEpochChange *time.Time `json:"last_epoch_change"`
	LastHandshake   *time.Time `json:"last_handshake"`
	RxBytes         uint64     `json:"rx_bytes"`
	TxBytes         uint64     `json:"tx_bytes"`
	RxPackets       uint64     `json:"rx_packets"`
	TxPackets       uint64     `json:"tx_packets"`
	Dropped         struct {
		Replay       uint64 `json:"replay"`
		BadSource    uint64 `json:"bad_source"`
		QueueFull    uint64 `json:"queue_full"`
		UnknownEpoch uint64 `json:"unknown_epoch"`
		BadMAC       uint64 `json:"bad_mac"`
	} `json:"dropped"`
}

// Every field docs/ctl.md promises in show's result ("every field is
// always present").
var (
	ctlStatusFields    = []string{"time", "interface", "peers"}
	ctlInterfaceFields = []string{"name", "public_key", "listen_port", "suite", "rekey_interval_seconds", "rekey_bytes"}
	ctlPeerFields      = []string{"name", "public_key", "endpoint", "remote_address", "allowed_ips", "transport",
		"active_transport", "transport_reason", "fallback_since", "udp_probing", "next_udp_probe",
		"persistent_keepalive_seconds", "state", "epoch", "last_epoch_change", "last_handshake",
		"rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "dropped"}
	ctlDroppedFields = []string{"replay", "bad_source", "queue_full"}
)

// ctlShow runs `currentctl show --json` and checks that every documented
// field is there.
func ctlShow(t *testing.T, bin, sock string) ctlStatus {
	t.Helper()
	out := ctlMust(t, bin, sock, "show", "--json")
	var st ctlStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("currentctl show --json: %v\n%s", err, out)
	}
	var raw struct {
		Top       map[string]json.RawMessage
		Interface map[string]json.RawMessage   `json:"interface"`
		Peers     []map[string]json.RawMessage `json:"peers"`
	}
	json.Unmarshal([]byte(out), &raw.Top)
	json.Unmarshal([]byte(out), &raw)
	missing := func(where string, m map[string]json.RawMessage, keys []string) {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("currentctl show --json: no %s%s\n%s", where, k, out)
			}
		}
	}
	missing("", raw.Top, ctlStatusFields)
	missing("interface.", raw.Interface, ctlInterfaceFields)
	for i, p := range raw.Peers {
		missing(fmt.Sprintf("peers[%d].", i), p, ctlPeerFields)
		var d map[string]json.RawMessage
		json.Unmarshal(p["dropped"], &d)
		missing(fmt.Sprintf("peers[%d].dropped.", i), d, ctlDroppedFields)
	}
	return st
}

// peer returns the peer called name, failing t if there is none.
func (st ctlStatus) peer(t *testing.T, name string) ctlPeer {
	t.Helper()
	for _, p := range st.Peers {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no peer %q in %+v", name, st.Peers)
	return ctlPeer{}
}

// ctlWaitShow polls show until ok accepts the status, or fails t after d.
func ctlWaitShow(t *testing.T, bin, sock string, d time.Duration, what string, ok func(ctlStatus) bool) ctlStatus {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := ctlShow(t, bin, sock)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last status: %+v", what, d, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var ctlRekeyLine = regexp.MustCompile(`(?m)^(\S+): epoch (\d+)$`)

// ctlRekey runs `currentctl rekey PEER` and returns the epoch it printed.
func ctlRekey(t *testing.T, bin, sock, peer string) uint64 {
	t.Helper()
	out := ctlMust(t, bin, sock, "rekey", peer, "--timeout", "20s")
	m := ctlRekeyLine.FindStringSubmatch(out)
	if m == nil || m[1] != peer {
		t.Fatalf("currentctl rekey %s printed %q, want %q", peer, out, peer+": epoch N")
	}
	e, _ := strconv.ParseUint(m[2], 10, 64)
	return e
}

// ctlDeadline scales a time budget for the race detector, which slows the
// daemons (with GOFLAGS=-race) and the helpers several times over.
func ctlDeadline(d time.Duration) time.Duration {
	if raceBuild() {
		return 4 * d
	}
	return d
}

// ctlSend runs bulkSender and returns the sender's hash and count,
// once the receiver has everything.
func ctlSend(t *testing.T, ctx context.Context, ns, addr string, size int64, minDur time.Duration) (string, int64) {
	t.Helper()
	out, err := bulkSender(ctx, ns, addr, size, minDur).CombinedOutput()
	if err != nil {
		t.Fatalf("bulk sender: %v\n%s", err, out)
	}
	return parseBulk(t, "sender", string(out))
}

// ctlTransfer sends size bytes over TCP from nsFrom to addr in nsTo and
// checks them by SHA-256.
func ctlTransfer(t *testing.T, nsFrom, nsTo, addr string, size int64, minDur time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctlDeadline(minDur+30*time.Second))
	defer cancel()
	r := startBulkRecv(t, ctx, nsTo, addr)
	sentSum, sentN := ctlSend(t, ctx, nsFrom, addr, size, minDur)
	recvSum, recvN := r.wait(t, 20*time.Second)
	if sentN != size || recvN != size || sentSum != recvSum {
		t.Fatalf("sent %d bytes (sha256 %s), received %d (sha256 %s), want %d intact", sentN, sentSum, recvN, recvSum, size)
	}
}

// ctlStop stops d with SIGTERM like stopDaemon, and fails t unless it
// exits 0. (A shutdown race in golang.zx2c4.com/wireguard/tun's
// NativeTun.Close, whose netlink listener closes its cancel pipe while
// Close writes to it, used to make currentd exit 1 on about one SIGTERM in
// 20; package tun no longer takes that for a failure.)
func ctlStop(t *testing.T, d *daemon) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(10 * time.Second); err != nil {
		t.Fatalf("%s: %v", d.ns, err)
	}
}

// ctlPair starts two UDP or TCP daemons between the namespaces of
// e2eSetup (startPair), waits until A reaches B, and returns them with
// the paths of currentctl and of both control sockets.
func ctlPair(t *testing.T, transport string) (nsA, nsB string, a, b *daemon, ctlBin, sockA, sockB string) {
	t.Helper()
	dir, bin, nsA, nsB, _, _ := e2eSetup(t)
	ctlBin = buildCurrentctl(t, dir)
	a, b = startPair(t, dir, bin, nsA, nsB, transport)
	e2ePing(t, nsA, "10.99.0.2")
	sockA = filepath.Join(ctlDir(dir, nsA), "cur0.sock")
	sockB = filepath.Join(ctlDir(dir, nsB), "cur0.sock")
	return nsA, nsB, a, b, ctlBin, sockA, sockB
}

// TestE2ECtlShow checks that `currentctl show --json` of two real
// daemons describes the tunnel as it is: each side's interface key is the
// other's peer key, the configured peer settings and the live connection
// are there, the epoch moves after `currentctl rekey` (to the epoch rekey
// printed, on both sides), and the byte and packet counters grow by at
// least what a 4 MiB TCP transfer through the tunnel carried.
func TestE2ECtlShow(t *testing.T) {
	start := time.Now()
	nsA, nsB, a, b, ctlBin, sockA, sockB := ctlPair(t, "udp")

	stA, stB := ctlShow(t, ctlBin, sockA), ctlShow(t, ctlBin, sockB)
	for _, c := range []struct {
		who       string
		st, other ctlStatus
		self      string // own tunnel address
		endpoint  string
		allowed   []string
	}{
		{"A", stA, stB, "10.99.0.1", "192.0.2.2:51900", []string{"10.99.0.2/32", "fd99::2/128"}},
		{"B", stB, stA, "10.99.0.2", "192.0.2.1:51900", []string{"10.99.0.1/32", "fd99::1/128"}},
	} {
		ifc := c.st.Interface
		if ifc.Name != "cur0" || ifc.ListenPort != 51900 || ifc.Suite != "mls-xwing-ed25519" ||
			ifc.RekeyInterval != 120 || ifc.RekeyBytes != 1<<30 || !strings.HasPrefix(ifc.PublicKey, "ed25519:") {
			t.Errorf("%s: interface %+v", c.who, ifc)
		}
		if d := time.Since(c.st.Time); d < -5*time.Second || d > 5*time.Second {
			t.Errorf("%s: time %s is %s off the clock", c.who, c.st.Time, d)
		}
		if len(c.st.Peers) != 1 {
			t.Fatalf("%s: %d peers, want 1: %+v", c.who, len(c.st.Peers), c.st.Peers)
		}
		p := c.st.Peers[0]
		if p.Name != "peer" || p.PublicKey != c.other.Interface.PublicKey {
			t.Errorf("%s: peer %q with key %s, want \"peer\" with the other side's key %s", c.who, p.Name, p.PublicKey, c.other.Interface.PublicKey)
		}
		if p.Endpoint != c.endpoint || p.Transport != "udp" || p.Keepalive != 5 || !slices.Equal(p.AllowedIPs, c.allowed) {
			t.Errorf("%s: configured settings %+v", c.who, p)
		}
		if p.State != "established" || p.RemoteAddress != c.endpoint || p.Epoch == 0 {
			t.Errorf("%s: session state %q remote %q epoch %d, want established with %s", c.who, p.State, p.RemoteAddress, p.Epoch, c.endpoint)
		}
		if p.LastHandshake == nil || p.LastEpochChange == nil ||
			p.LastHandshake.Before(start.Add(-time.Second)) || p.LastHandshake.After(c.st.Time) ||
			p.LastEpochChange.Before(*p.LastHandshake) || p.LastEpochChange.After(c.st.Time) {
			t.Errorf("%s: last_handshake %v, last_epoch_change %v, test start %s, time %s", c.who, p.LastHandshake, p.LastEpochChange, start, c.st.Time)
		}
		if p.RxPackets == 0 || p.TxPackets == 0 || p.RxBytes == 0 || p.TxBytes == 0 {
			t.Errorf("%s: no traffic counted after a ping: %+v", c.who, p)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Epoch: rekey from A, then from B; both sides agree with what rekey
	// printed.
	before := stA.peer(t, "peer")
	e1 := ctlRekey(t, ctlBin, sockA, "peer")
	if e1 <= before.Epoch {
		t.Fatalf("currentctl rekey printed epoch %d, was %d", e1, before.Epoch)
	}
	after := ctlShow(t, ctlBin, sockA).peer(t, "peer")
	if after.Epoch < e1 || after.LastEpochChange == nil || !after.LastEpochChange.After(*before.LastEpochChange) {
		t.Errorf("A after rekey: epoch %d (rekey printed %d), last_epoch_change %v (was %v)", after.Epoch, e1, after.LastEpochChange, before.LastEpochChange)
	}
	ctlWaitShow(t, ctlBin, sockB, 10*time.Second, "B at A's new epoch", func(st ctlStatus) bool { return st.peer(t, "peer").Epoch >= e1 })
	e2 := ctlRekey(t, ctlBin, sockB, "peer")
	if e2 <= e1 {
		t.Errorf("rekey from B printed epoch %d, after %d from A", e2, e1)
	}
	ctlWaitShow(t, ctlBin, sockA, 10*time.Second, "A at B's new epoch", func(st ctlStatus) bool { return st.peer(t, "peer").Epoch >= e2 })
	e2ePing(t, nsB, "10.99.0.1")

	// Counters: 4 MiB from A to B through the tunnel.
	const size = 4 << 20
	a0, b0 := ctlShow(t, ctlBin, sockA).peer(t, "peer"), ctlShow(t, ctlBin, sockB).peer(t, "peer")
	ctlTransfer(t, nsA, nsB, "10.99.0.2:5201", size, 0)
	a1 := ctlShow(t, ctlBin, sockA).peer(t, "peer")
	b1 := ctlWaitShow(t, ctlBin, sockB, 5*time.Second, "B's rx_bytes to count the transfer", func(st ctlStatus) bool {
		return st.peer(t, "peer").RxBytes-b0.RxBytes >= size
	}).peer(t, "peer")
	// Bytes: the payload plus TCP/IP headers and some room for
	// retransmissions. Packets: at most 1500 bytes each today; the lower
	// bound allows 64 KiB ones, should the data path ever count a GSO
	// batch as one.
	grew := func(who, what string, d, lo, hi uint64) {
		t.Helper()
		if d < lo || d > hi {
			t.Errorf("%s's %s grew by %d during the transfer, want %d..%d", who, what, d, lo, hi)
		}
	}
	grew("A", "tx_bytes", a1.TxBytes-a0.TxBytes, size, 2*size)
	grew("B", "rx_bytes", b1.RxBytes-b0.RxBytes, size, 2*size)
	grew("A", "tx_packets", a1.TxPackets-a0.TxPackets, size/(64<<10), size/100)
	grew("B", "rx_packets", b1.RxPackets-b0.RxPackets, size/(64<<10), size/100)
	// The ACKs the other way.
	grew("A", "rx_packets", a1.RxPackets-a0.RxPackets, 1, size/100)
	grew("B", "tx_packets", b1.TxPackets-b0.TxPackets, 1, size/100)
	t.Logf("4 MiB A→B: A tx %d bytes/%d packets, B rx %d bytes/%d packets; ACKs: B tx %d bytes, A rx %d bytes",
		a1.TxBytes-a0.TxBytes, a1.TxPackets-a0.TxPackets, b1.RxBytes-b0.RxBytes, b1.RxPackets-b0.RxPackets,
		b1.TxBytes-b0.TxBytes, a1.RxBytes-a0.RxBytes)
	if a1.Dropped != a0.Dropped || a1.State != "established" {
		t.Logf("A: dropped %+v → %+v, state %s", a0.Dropped, a1.Dropped, a1.State)
	}
	ctlStop(t, a)
	ctlStop(t, b)
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// TestE2ECtlRekeyUnderTraffic runs `currentctl rekey` on both daemons in
// turn while a 48 MB TCP transfer and a continuous series of pings cross
// the tunnel, over UDP and over TCP: every rekey must exit 0 with a new,
// higher epoch, the transfer must arrive intact (SHA-256), and not one
// ping may go unanswered.
func TestE2ECtlRekeyUnderTraffic(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			start := time.Now()
			nsA, nsB, a, b, ctlBin, sockA, sockB := ctlPair(t, transport)
			t.Logf("tunnel up after %s", time.Since(start).Round(time.Millisecond))
			peerA0, peerB0 := ctlShow(t, ctlBin, sockA).peer(t, "peer"), ctlShow(t, ctlBin, sockB).peer(t, "peer")
			epoch0 := peerA0.Epoch

			const size = 48 << 20
			// Long enough for a dozen rekeys and some thousand pings;
			// under the race detector each currentctl run and each ping
			// series takes several times longer.
			minDur := 6 * time.Second
			if raceBuild() {
				minDur = 15 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), ctlDeadline(minDur+40*time.Second))
			defer cancel()
			r := startBulkRecv(t, ctx, nsB, "10.99.0.2:5201")
			stop := make(chan struct{})
			var wg sync.WaitGroup

			// Pings from B to A, back to back in series of 100 (one
			// helper process each), until the transfer ends; nsPing
			// fails on the first unanswered one.
			var pingMu sync.Mutex
			var pings int
			var pingErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					const n = 100
					out, err := nsPing(nsB, "10.99.0.1", n)
					pingMu.Lock()
					if err != nil {
						pingErr = fmt.Errorf("after %d answered pings: %v\n%s", pings, err, out)
						pingMu.Unlock()
						return
					}
					pings += n
					pingMu.Unlock()
				}
			}()

			// Rekeys from A and B in turn, each waited for, until the
			// transfer ends.
			type rekeyed struct {
				side  string
				epoch uint64
				took  time.Duration
			}
			var rekeys []rekeyed
			var rekeyFail string
			wg.Add(1)
			go func() {
				defer wg.Done()
				last := epoch0
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(300 * time.Millisecond):
					}
					side, sock := "A", sockA
					if i%2 == 1 {
						side, sock = "B", sockB
					}
					t0 := time.Now()
					o, err := ctlTry(ctlBin, sock, nil, "rekey", "peer", "--timeout", "20s")
					m := ctlRekeyLine.FindStringSubmatch(o.stdout)
					if err != nil || o.code != 0 || m == nil {
						rekeyFail = fmt.Sprintf("rekey %d from %s: %s (%v)", i, side, o, err)
						return
					}
					e, _ := strconv.ParseUint(m[2], 10, 64)
					rekeys = append(rekeys, rekeyed{side, e, time.Since(t0)})
					if e <= last {
						rekeyFail = fmt.Sprintf("rekey %d from %s printed epoch %d, after epoch %d", i, side, e, last)
						return
					}
					last = e
				}
			}()

			t0 := time.Now()
			sentSum, sentN := ctlSend(t, ctx, nsA, "10.99.0.2:5201", size, minDur)
			elapsed := time.Since(t0)
			close(stop)
			wg.Wait()
			recvSum, recvN := r.wait(t, 20*time.Second)
			if sentN != size || recvN != size || sentSum != recvSum {
				t.Errorf("sent %d bytes (sha256 %s), received %d (sha256 %s), want %d intact", sentN, sentSum, recvN, recvSum, size)
			}
			if rekeyFail != "" {
				t.Error(rekeyFail)
			}
			if pingErr != nil {
				// The peers' queues are bounded (bufcap.go): a bulk
				// transfer on a starved machine fills them and a ping
				// in the queue is dropped with it, as a congested link
				// drops it. That is counted; a ping lost without such a
				// drop was lost to a rekey.
				qa := ctlShow(t, ctlBin, sockA).peer(t, "peer").Dropped.QueueFull - peerA0.Dropped.QueueFull
				qb := ctlShow(t, ctlBin, sockB).peer(t, "peer").Dropped.QueueFull - peerB0.Dropped.QueueFull
				if qa+qb == 0 {
					t.Errorf("ping lost during the rekeys, with no queue drop: %v", pingErr)
				} else {
					t.Logf("a ping was lost to congestion (queue_full drops: A %d, B %d), not to a rekey: %v", qa, qb, pingErr)
				}
			}
			var took time.Duration
			var epochs []string
			for _, r := range rekeys {
				took = max(took, r.took)
				epochs = append(epochs, fmt.Sprintf("%s:%d", r.side, r.epoch))
			}
			t.Logf("%d MB in %s with %d rekeys (slowest %s; epoch %d, then %s), %d pings answered",
				size>>20, elapsed.Round(time.Millisecond), len(rekeys), took.Round(time.Millisecond), epoch0, strings.Join(epochs, " "), pings)
			if len(rekeys) < 5 {
				t.Errorf("only %d rekeys during the transfer, want at least 5", len(rekeys))
			}
			if pings < 300 {
				t.Errorf("only %d pings during the transfer, want at least 300", pings)
			}
			// Both sides end at the last epoch rekey printed.
			if len(rekeys) > 0 {
				lastE := rekeys[len(rekeys)-1].epoch
				for _, s := range []string{sockA, sockB} {
					ctlWaitShow(t, ctlBin, s, 10*time.Second, "both sides at the last epoch", func(st ctlStatus) bool {
						p := st.peer(t, "peer")
						return p.Epoch == lastE && p.State == "established"
					})
				}
			}
			ctlStop(t, a)
			ctlStop(t, b)
			t.Logf("took %s", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestE2ECtlPeersAddRemove adds a peer at runtime with `currentctl peers
// add`: a third namespace with its own currentd, unreachable before,
// becomes reachable through A's tunnel over IPv4 and IPv6, with routes
// tagged proto 117 for its allowed IPs. `currentctl peers remove` (by
// public key) then cuts it both ways and removes exactly its routes; the
// first peer is untouched throughout.
func TestE2ECtlPeersAddRemove(t *testing.T) {
	start := time.Now()
	dir, bin, nsA, nsB, _, _ := e2eSetup(t)
	ctlBin := buildCurrentctl(t, dir)
	a, b := startPair(t, dir, bin, nsA, nsB, "udp")
	e2ePing(t, nsA, "10.99.0.2")
	sockA := filepath.Join(ctlDir(dir, nsA), "cur0.sock")
	keyA := ctlShow(t, ctlBin, sockA).Interface.PublicKey

	// C: a third namespace, joined to A by its own veth pair.
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	nsC := "cur-c-c-" + id
	addNamespace(t, nsC)
	linkNamespaces(t, nsA, "cuac"+id, []string{"198.51.100.1/24"}, nsC, "cuc"+id, []string{"198.51.100.3/24"})
	keyC := writeKey(t, dir, "c")
	cfgC := writeConfigT(t, dir, "c", "10.98.3.1/24", "fd98:3::1/64", keyA, "198.51.100.1:51900", "10.99.0.1/32", "fd99::1/128", "udp")
	c := startDaemon(t, dir, nsC, bin, cfgC)
	c.waitNotify(t, "READY=1")
	sockC := filepath.Join(ctlDir(dir, nsC), "cur0.sock")

	routes := func(fam string) string {
		t.Helper()
		out, err := exec.Command("ip", "-n", nsA, fam, "route", "show", "table", "all", "proto", "117").CombinedOutput()
		if err != nil {
			t.Fatalf("ip route: %v\n%s", err, out)
		}
		return string(out)
	}
	hasRoute := func(out, prefix string) bool {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[0] == prefix && f[1] == "dev" && f[2] == "cur0" {
				return true
			}
		}
		return false
	}

	// Before: A knows nothing of C.
	if out, err := nsPing(nsA, "10.98.3.1", 1); err == nil {
		t.Fatalf("C answered before it was added:\n%s", out)
	}
	if r := routes("-4"); strings.Contains(r, "10.98.3.") {
		t.Fatalf("route to C before it was added:\n%s", r)
	}

	out := ctlMust(t, ctlBin, sockA, "peers", "add", "carol", "--public-key", keyC,
		"--allowed-ips", "10.98.3.0/24,fd98:3::/64", "--endpoint", "198.51.100.3:51900",
		"--transport", "udp", "--keepalive", "5s")
	if !strings.Contains(out, "peer carol added") {
		t.Errorf("currentctl peers add printed %q", out)
	}
	e2ePing(t, nsA, "10.98.3.1")
	e2ePing(t, nsA, "fd98:3::1")
	e2ePing(t, nsC, "10.99.0.1")
	e2ePing(t, nsA, "10.99.0.2") // B is still there
	r4, r6 := routes("-4"), routes("-6")
	if !hasRoute(r4, "10.98.3.0/24") || !hasRoute(r6, "fd98:3::/64") || !hasRoute(r4, "10.99.0.2") || !hasRoute(r6, "fd99::2") {
		t.Errorf("proto 117 routes after peers add, want C's and B's:\n%s%s", r4, r6)
	}
	st := ctlShow(t, ctlBin, sockA)
	if len(st.Peers) != 2 {
		t.Fatalf("A has %d peers after peers add, want 2: %+v", len(st.Peers), st.Peers)
	}
	carol := st.peer(t, "carol")
	if carol.PublicKey != keyC || carol.State != "established" || carol.RemoteAddress != "198.51.100.3:51900" ||
		!slices.Equal(carol.AllowedIPs, []string{"10.98.3.0/24", "fd98:3::/64"}) || carol.Keepalive != 5 || carol.TxPackets == 0 || carol.RxPackets == 0 {
		t.Errorf("carol after peers add: %+v", carol)
	}
	if p := ctlShow(t, ctlBin, sockC).peer(t, "peer"); p.State != "established" || p.PublicKey != keyA {
		t.Errorf("C's view of A: %+v", p)
	}
	var list []ctlPeer
	if err := json.Unmarshal([]byte(ctlMust(t, ctlBin, sockA, "peers", "list", "--json")), &list); err != nil || len(list) != 2 {
		t.Errorf("peers list --json: %v, %+v", err, list)
	}
	bEstablished := strings.Count(a.log.String(), `kind="new session"`)

	out = ctlMust(t, ctlBin, sockA, "peers", "remove", keyC)
	if !strings.Contains(out, "removed") {
		t.Errorf("currentctl peers remove printed %q", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r4, r6 = routes("-4"), routes("-6")
		if !strings.Contains(r4, "10.98.3.") && !strings.Contains(r6, "fd98:3:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("C's routes still there 10 s after peers remove:\n%s%s", r4, r6)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !hasRoute(r4, "10.99.0.2") || !hasRoute(r6, "fd99::2") {
		t.Errorf("B's proto 117 routes gone after removing C:\n%s%s", r4, r6)
	}
	if out, err := exec.Command("ip", "-n", nsA, "route", "show", "table", "all", "10.98.3.0/24").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("a route for C's allowed IPs is left: %v %q", err, out)
	}
	if out, err := exec.Command("ip", "-n", nsA, "-6", "route", "show", "table", "all", "fd98:3::/64").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("a route for C's allowed IPs is left: %v %q", err, out)
	}
	// Cut both ways: A has no route to C, and drops what C still sends
	// on the session A closed.
	for _, p := range [][2]string{{nsA, "10.98.3.1"}, {nsA, "fd98:3::1"}, {nsC, "10.99.0.1"}} {
		if out, err := nsPing(p[0], p[1], 2); err == nil {
			t.Errorf("%s still answers %s after peers remove:\n%s", p[1], p[0], out)
		}
	}
	st = ctlShow(t, ctlBin, sockA)
	if len(st.Peers) != 1 || st.Peers[0].Name != "peer" || st.Peers[0].State != "established" {
		t.Errorf("A's peers after peers remove: %+v", st.Peers)
	}
	e2ePing(t, nsA, "10.99.0.2")
	e2ePing(t, nsB, "fd99::1")
	if n := strings.Count(a.log.String(), `kind="new session"`); n != bEstablished {
		t.Errorf("A made %d new sessions during the removal, want none", n-bEstablished)
	}
	// Removing it again is refused as an unknown peer.
	if o := ctlRun(t, ctlBin, sockA, nil, "peers", "remove", "carol"); o.code != 1 || !strings.Contains(o.stderr, "carol") {
		t.Errorf("second peers remove carol: %s, want exit 1 naming carol", o)
	}
	ctlStop(t, a)
	ctlStop(t, b)
	ctlStop(t, c)
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// TestE2ECtlPermissions runs currentctl as uid 65534 (nobody) against a
// real daemon. With the permissions the daemon sets (directory 0700), the
// kernel refuses the connection; with the directory and socket opened to
// everyone, the daemon refuses it (SO_PEERCRED). Either way currentctl
// exits 1 (docs/ctl.md: permission denied is a failed operation) and says
// permission denied, and nothing reaches the tunnel: root still sees the
// peer that nobody tried to remove. Once the daemon is stopped, currentctl
// exits 3 (not running).
func TestE2ECtlPermissions(t *testing.T) {
	start := time.Now()
	dir, bin, nsA, _, _, _ := e2eSetup(t)
	// nobody must be able to run currentctl and reach the socket
	// directory: both live in a directory everyone may traverse, not in
	// t.TempDir (0700).
	pub, err := os.MkdirTemp("", "current-e2e-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	ctlBin := buildCurrentctl(t, pub)
	if err := os.Chmod(ctlBin, 0o755); err != nil {
		t.Fatal(err)
	}
	// One daemon is enough: the socket answers whether or not the peer
	// is up.
	kb := writeKey(t, dir, "b")
	writeKey(t, dir, "a")
	cfgA := writeConfigT(t, dir, "a", "10.99.0.1/24", "fd99::1/64", kb, "192.0.2.2:51900", "10.99.0.2/32", "fd99::2/128", "udp")
	a := startDaemon(t, pub, nsA, bin, cfgA)
	a.waitNotify(t, "READY=1")
	cdir := ctlDir(pub, nsA)
	sock := filepath.Join(cdir, "cur0.sock")
	if st := ctlShow(t, ctlBin, sock); len(st.Peers) != 1 {
		t.Fatalf("root: %+v", st)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{cdir, 0o700}, {sock, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.mode || fi.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s: mode %o uid %d, want %o root", c.path, got, fi.Sys().(*syscall.Stat_t).Uid, c.mode)
		}
	}

	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	denied := regexp.MustCompile(`(?i)permission denied`)
	try := func(phase string) {
		t.Helper()
		for _, args := range [][]string{
			{"show", "--json"},
			{"peers", "remove", "peer"},
			{"rekey", "--all"},
			{"metrics"},
			{"set", "--rekey-interval", "1m"},
		} {
			o := ctlRun(t, ctlBin, sock, nobody, args...)
			if o.code != ctlExitDenied || !denied.MatchString(o.stderr) || o.stdout != "" {
				t.Errorf("%s: nobody: currentctl %s: %s; want exit %d, \"permission denied\" on stderr, nothing on stdout",
					phase, strings.Join(args, " "), o, ctlExitDenied)
			} else {
				t.Logf("%s: nobody: currentctl %s: exit %d: %s", phase, strings.Join(args, " "), o.code, strings.TrimSpace(o.stderr))
			}
		}
	}
	// The kernel refuses: the directory is 0700.
	try("directory 0700")
	if strings.Contains(a.log.String(), "connection refused") {
		t.Errorf("the daemon saw a connection it should never have got")
	}

	// Loosened permissions: the daemon itself refuses (SO_PEERCRED).
	if err := os.Chmod(cdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	try("socket 0666")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(a.log.String(), "uid 65534 may not use this socket") {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not log the refused connections")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(a.log.String(), "ctl: request") {
		t.Errorf("a request of nobody's was handled:\n%s", a.log.String())
	}
	// Nothing changed, and root is still served.
	st := ctlShow(t, ctlBin, sock)
	if len(st.Peers) != 1 || st.Peers[0].Name != "peer" || st.Interface.RekeyInterval != 120 {
		t.Errorf("after nobody's attempts: %+v", st)
	}

	// Not running: exit 3, for root and for nobody.
	ctlStop(t, a)
	for _, who := range []*syscall.Credential{nil, nobody} {
		if o := ctlRun(t, ctlBin, sock, who, "show"); o.code != ctlExitNotRunning || !strings.Contains(o.stderr, "not running") {
			t.Errorf("uid %v after the daemon stopped: %s; want exit %d, \"not running\"", who, o, ctlExitNotRunning)
		}
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// The exit codes docs/ctl.md promises.
const (
	ctlExitDenied     = 1
	ctlExitNotRunning = 3
)

// TestE2ECtlMetrics parses `currentctl metrics` of a real daemon with
// Prometheus's own text parser and checks every documented family: its
// type, help, labels, and values against `currentctl show --json` and
// `currentctl version` taken around it; counters only grow across a ping.
func TestE2ECtlMetrics(t *testing.T) {
	start := time.Now()
	nsA, _, a, b, ctlBin, sockA, _ := ctlPair(t, "udp")
	ctlRekey(t, ctlBin, sockA, "peer")
	e2ePing(t, nsA, "fd99::2")

	scrape := func() map[string]*dto.MetricFamily {
		t.Helper()
		text := ctlMust(t, ctlBin, sockA, "metrics")
		return metricstest.Parse(t, text)
	}
	before := ctlShow(t, ctlBin, sockA)
	fams := scrape()
	after := ctlShow(t, ctlBin, sockA)
	pb, pa := before.peer(t, "peer"), after.peer(t, "peer")
	// "currentd VERSION (GOVERSION[, commit COMMIT], protocol 1)"
	var version, goVersion, commit string
	vout := ctlMust(t, ctlBin, sockA, "version")
	if m := regexp.MustCompile(`(?m)^currentd (\S+) \((go[^,)]+)(?:, commit ([^,)]+))?, protocol 1\)$`).FindStringSubmatch(vout); m != nil {
		version, goVersion, commit = m[1], m[2], m[3]
	} else {
		t.Errorf("currentctl version: no currentd line:\n%s", vout)
	}

	ifl := map[string]string{"interface": "cur0"}
	peerl := map[string]string{"interface": "cur0", "peer": "peer", "public_key": pa.PublicKey}
	type want struct {
		typ    dto.MetricType
		labels map[string]string
		lo, hi float64 // the value's range
	}
	unix := func(tm *time.Time) float64 {
		if tm == nil {
			return 0
		}
		return float64(tm.UnixNano()) / 1e9
	}
	between := func(x, y uint64) (float64, float64) { return float64(x), float64(y) }
	wants := map[string]want{
		"current_build_info":             {dto.MetricType_GAUGE, map[string]string{"interface": "cur0", "version": version, "go_version": goVersion, "commit": commit}, 1, 1},
		"current_peers":                  {dto.MetricType_GAUGE, ifl, 1, 1},
		"current_rekey_interval_seconds": {dto.MetricType_GAUGE, ifl, after.Interface.RekeyInterval, after.Interface.RekeyInterval},
		"current_rekey_bytes":            {dto.MetricType_GAUGE, ifl, float64(after.Interface.RekeyBytes), float64(after.Interface.RekeyBytes)},
		"current_peer_up":                {dto.MetricType_GAUGE, peerl, 1, 1},
		"current_peer_last_handshake_seconds": {dto.MetricType_GAUGE, peerl,
			unix(pa.LastHandshake) - 0.001, unix(pa.LastHandshake) + 0.001},
		"current_peer_last_epoch_change_seconds": {dto.MetricType_GAUGE, peerl,
			unix(pb.LastEpochChange) - 0.001, unix(pa.LastEpochChange) + 0.001},
	}
	w := func(name string, lo, hi float64) {
		wants[name] = want{typ: dto.MetricType_COUNTER, labels: peerl, lo: lo, hi: hi}
	}
	lo, hi := between(pb.Epoch, pa.Epoch)
	wants["current_peer_epoch"] = want{dto.MetricType_GAUGE, peerl, lo, hi}
	lo, hi = between(pb.RxBytes, pa.RxBytes)
	w("current_peer_rx_bytes_total", lo, hi)
	lo, hi = between(pb.TxBytes, pa.TxBytes)
	w("current_peer_tx_bytes_total", lo, hi)
	lo, hi = between(pb.RxPackets, pa.RxPackets)
	w("current_peer_rx_packets_total", lo, hi)
	lo, hi = between(pb.TxPackets, pa.TxPackets)
	w("current_peer_tx_packets_total", lo, hi)

	sample := func(name string, labels map[string]string) *dto.Metric {
		t.Helper()
		f := fams[name]
		var found *dto.Metric
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if found != nil {
				t.Errorf("%s: more than one sample with labels %v", name, labels)
			}
			found = m
		}
		if found == nil {
			t.Errorf("%s: no sample with labels %v in %v", name, labels, f.GetMetric())
		}
		return found
	}
	value := func(m *dto.Metric) float64 {
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	for name, wt := range wants {
		f, ok := fams[name]
		if !ok {
			t.Errorf("no metric family %s", name)
			continue
		}
		if f.GetType() != wt.typ || f.GetHelp() == "" || len(f.GetMetric()) != 1 {
			t.Errorf("%s: type %v (want %v), help %q, %d samples (want 1)", name, f.GetType(), wt.typ, f.GetHelp(), len(f.GetMetric()))
		}
		m := sample(name, wt.labels)
		if m == nil {
			continue
		}
		if v := value(m); v < wt.lo || v > wt.hi || math.IsNaN(v) {
			t.Errorf("%s = %v, want %v..%v", name, v, wt.lo, wt.hi)
		}
	}
	// Sane absolute values: the session is up, rekeyed at least once,
	// and carried the pings.
	if v := value(sample("current_peer_epoch", peerl)); v < 2 {
		t.Errorf("current_peer_epoch = %v after a rekey, want at least 2", v)
	}
	if v := value(sample("current_peer_last_handshake_seconds", peerl)); v < float64(start.Unix()-1) || v > float64(time.Now().Unix()+1) {
		t.Errorf("current_peer_last_handshake_seconds = %v, not during the test (%d..%d)", v, start.Unix(), time.Now().Unix())
	}
	if v := value(sample("current_peer_rx_packets_total", peerl)); v < 4 {
		t.Errorf("current_peer_rx_packets_total = %v after 4 pings", v)
	}
	const dropped = "current_peer_dropped_packets_total"
	if f := fams[dropped]; f.GetType() != dto.MetricType_COUNTER || f.GetHelp() == "" || len(f.GetMetric()) != 5 {
		t.Errorf("%s: type %v, help %q, %d samples (want 5)", dropped, f.GetType(), f.GetHelp(), len(f.GetMetric()))
	}
	for reason, n := range map[string]uint64{"replay": pa.Dropped.Replay, "bad_source": pa.Dropped.BadSource, "queue_full": pa.Dropped.QueueFull,
		"unknown_epoch": pa.Dropped.UnknownEpoch, "bad_mac": pa.Dropped.BadMAC} {
		l := map[string]string{"reason": reason}
		for k, v := range peerl {
			l[k] = v
		}
		if m := sample(dropped, l); m != nil && value(m) > float64(n) {
			t.Errorf("%s{reason=%q} = %v, show says %d afterwards", dropped, reason, value(m), n)
		}
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "current_") {
			t.Errorf("metric family %s outside current_", name)
		}
		for _, m := range f.GetMetric() {
			if v := value(m); v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("%s = %v", name, v)
			}
		}
	}

	// Counters grow with traffic: 10 pings later, every packet and byte
	// counter is higher.
	if out, err := nsPing(nsA, "10.99.0.2", 10); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	later := ctlWaitMetrics(t, scrape, 5*time.Second, func(f map[string]*dto.MetricFamily) bool {
		return value(f["current_peer_rx_packets_total"].GetMetric()[0]) >= value(fams["current_peer_rx_packets_total"].GetMetric()[0])+10
	})
	for _, name := range []string{"current_peer_rx_bytes_total", "current_peer_tx_bytes_total", "current_peer_rx_packets_total", "current_peer_tx_packets_total"} {
		v0, v1 := value(fams[name].GetMetric()[0]), value(later[name].GetMetric()[0])
		min := 10.0
		if strings.Contains(name, "bytes") {
			min = 10 * 44 // an echo with 16 bytes of data is a 44-byte IPv4 packet
		}
		if v1 < v0+min {
			t.Errorf("%s: %v after 10 pings, %v before", name, v1, v0)
		}
	}
	ctlStop(t, a)
	ctlStop(t, b)
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// ctlWaitMetrics scrapes until ok accepts the families, or fails t after d.
func ctlWaitMetrics(t *testing.T, scrape func() map[string]*dto.MetricFamily, d time.Duration, ok func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		f := scrape()
		if ok(f) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: not within %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
