package tunnel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/session"
)

// The adversarial test's setup: three namespaces, keys and ClientHellos
// once per run, and a fresh pair of daemons per subtest.

// attackEnv is what the subtests share: the binaries, the three
// namespaces, the keys and the ClientHellos the attacks replay.
type attackEnv struct {
	dir, bin, ctlBin string
	nsA, nsB, nsX    string
	vBA              string // B's end of the link to A
	keyA, keyB       string // public keys
	// Files of hex lines: A's genuine ClientHello as datagrams and as
	// stream bytes, and the same of a key B does not pin.
	helloUDP, helloTCP, strangerUDP, strangerTCP string
	// helloKeysB is B's hello keys file.
	helloKeysB []byte
	runs       int
}

const (
	attackTunnelB = "10.99.0.2"          // B's tunnel address, which A pings
	attackListenB = "198.51.100.2:51900" // B's listener (UDP and TCP) on X's link
)

func newAttackEnv(t *testing.T) *attackEnv {
	requireE2E(t)
	e := &attackEnv{dir: t.TempDir()}
	e.bin = buildDaemon(t, e.dir)
	e.ctlBin = buildCurrentctl(t, e.dir)
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	e.nsA, e.nsB, e.nsX = "cur-atk-a-"+id, "cur-atk-b-"+id, "cur-atk-x-"+id
	for _, ns := range []string{e.nsA, e.nsB, e.nsX} {
		addNamespace(t, ns)
	}
	e.vBA = "ckb" + id
	linkNamespaces(t, e.nsA, "cka"+id, []string{"192.0.2.1/24"}, e.nsB, e.vBA, []string{"192.0.2.2/24"})
	linkNamespaces(t, e.nsX, "ckx"+id, []string{"198.51.100.1/24"}, e.nsB, "cky"+id, []string{"198.51.100.2/24"})
	e.keyA, e.keyB = writeKey(t, e.dir, "a"), writeKey(t, e.dir, "b")
	writeKey(t, e.dir, "stranger")
	// B's hello keys, installed in every run's state directory, so that
	// the attacker's hellos are sealed to a key B holds, as a genuine
	// initiator's are.
	helloKey := e.makeHelloKeysB(t)
	for _, h := range []struct {
		path *string
		key  string
		tr   session.Transport
	}{
		{&e.helloUDP, "a", session.Datagram},
		{&e.helloTCP, "a", session.Stream},
		{&e.strangerUDP, "stranger", session.Datagram},
		{&e.strangerTCP, "stranger", session.Stream},
	} {
		*h.path = filepath.Join(e.dir, fmt.Sprintf("hello-%s-%d.hex", h.key, h.tr))
		if err := writeAttackFile(*h.path, attackClientHello(t, filepath.Join(e.dir, h.key+".key"), e.keyB, helloKey, h.tr)); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// makeHelloKeysB makes B's hello keys file and returns the public key.
func (e *attackEnv) makeHelloKeysB(t *testing.T) []byte {
	t.Helper()
	k, err := config.LoadPrivateKeyFile(filepath.Join(e.dir, "b.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Zero()
	now := time.Now()
	pair, err := session.NewHelloKey(k.Suite(), k.Bytes(), now, now.Add(helloKeyLifetime))
	if err != nil {
		t.Fatal(err)
	}
	defer pair.Wipe()
	b, err := pair.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if e.helloKeysB, err = json.Marshal(helloKeysOnDisk{Version: helloKeysVersion, Current: b}); err != nil {
		t.Fatal(err)
	}
	pub, err := pair.Public.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// attackClientHello is what a real initiator with the key in keyFile
// that cached the hello key helloKey sends first to the peer peerKey (a
// sealed hello): its datagrams, or its stream bytes as one.
func attackClientHello(t *testing.T, keyFile, peerKey string, helloKey []byte, tr session.Transport) [][]byte {
	t.Helper()
	k, err := config.LoadPrivateKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Zero()
	pub, err := config.ParsePublicKey(peerKey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.New(session.Config{Role: session.Initiator, Suite: k.Suite(), SigningKey: k.Bytes(),
		PeerPublicKey: pub.Bytes(), Transport: tr, HideIdentity: true, PeerHelloKey: helloKey})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.Start(now); err != nil {
		t.Fatal(err)
	}
	out := s.Outgoing()
	s.Close(now)
	if len(out) == 0 {
		t.Fatal("the session sent no ClientHello")
	}
	if tr == session.Stream {
		return [][]byte{bytes.Join(out, nil)}
	}
	return out
}

// attackTunnel is one subtest's pair of daemons.
type attackTunnel struct {
	e     *attackEnv
	a, b  *daemon
	sockB string
	pidB  int
}

// startTunnel starts A and B with transport, in a directory of their own
// (fresh state: a new handshake), and waits until A reaches B.
func (e *attackEnv) startTunnel(t *testing.T, transport string) *attackTunnel {
	t.Helper()
	e.runs++
	// Short: the notification and control sockets live under it.
	sub := filepath.Join(e.dir, fmt.Sprintf("r%d", e.runs))
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		k, err := os.ReadFile(filepath.Join(e.dir, n+".key"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, n+".key"), k, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgA := writeConfigT(t, sub, "a", "10.99.0.1/24", "fd99::1/64", e.keyB, "192.0.2.2:51900", "10.99.0.2/32", "fd99::2/128", transport)
	// B serves: it has no endpoint for A, so its connection to A is
	// always inbound, like those of the attacker. (A TCP connection B
	// dialled itself could win the simultaneous-connect rule against
	// every inbound one, and the replays would cost B nothing.)
	cfgB := writeConfigT(t, sub, "b", "10.99.0.2/24", "fd99::2/64", e.keyA, "", "10.99.0.1/32", "fd99::1/128", transport)
	if err := os.WriteFile(filepath.Join(sub, "b.state", helloKeysFile), e.helloKeysB, 0o600); err != nil {
		t.Fatal(err)
	}
	tn := &attackTunnel{e: e}
	tn.a = startDaemon(t, sub, e.nsA, e.bin, cfgA)
	tn.b = startDaemon(t, sub, e.nsB, e.bin, cfgB)
	tn.a.waitNotify(t, "READY=1")
	tn.b.waitNotify(t, "READY=1")
	e2ePing(t, e.nsA, attackTunnelB)
	tn.sockB = filepath.Join(ctlDir(sub, e.nsB), "cur0.sock")
	// ip netns exec execs currentd: the process started is the daemon.
	tn.pidB = tn.b.cmd.Process.Pid
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", tn.pidB)); err != nil || strings.TrimSpace(string(comm)) != "currentd" {
		t.Fatalf("process %d is %q (%v), not currentd", tn.pidB, comm, err)
	}
	return tn
}

func (tn *attackTunnel) stop(t *testing.T) {
	t.Helper()
	stopDaemon(t, tn.a)
	stopDaemon(t, tn.b)
}

// attackSnap is B at one moment.
type attackSnap struct {
	at     time.Time
	fams   map[string]*dto.MetricFamily
	rss    int64
	fds    int
	logLen int // bytes of B's log so far
}

// snap reads B's metrics, RSS (the median of three readings) and
// descriptors.
func (tn *attackTunnel) snap(t *testing.T) attackSnap {
	t.Helper()
	fams, err := attackScrape(tn.e.ctlBin, tn.sockB)
	if err != nil {
		t.Fatal(err)
	}
	var rss []int64
	for i := range 3 {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		r, err := procRSS(tn.pidB)
		if err != nil {
			t.Fatal(err)
		}
		rss = append(rss, r)
	}
	slices.Sort(rss)
	fds, err := procFDs(tn.pidB)
	if err != nil {
		t.Fatal(err)
	}
	return attackSnap{at: time.Now(), fams: fams, rss: rss[1], fds: fds, logLen: len(tn.b.log.String())}
}

// logSince is what B logged after s.
func (tn *attackTunnel) logSince(s attackSnap) string { return tn.b.log.String()[s.logLen:] }

func (tn *attackTunnel) watch() *attackWatch { return watchDaemon(tn.pidB, tn.e.ctlBin, tn.sockB) }

// ping starts the pinger in A: ten echoes a second to B's tunnel address
// for d.
func (e *attackEnv) ping(t *testing.T, d time.Duration) *attackRun {
	return startAttack(t, e.nsA, attackSpec{Mode: "ping", Target: attackTunnelB, Rate: 10, Duration: d})
}
