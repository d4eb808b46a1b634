package tunnel

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/current-vpn/current/session"
)

// tcpResumeNodes are a listener A and a dialer B over TCP, each with its
// own state directory, and how to start either again.
type tcpResumeNodes struct {
	t          *testing.T
	a, b       *node
	cfgA, cfgB Config
}

func newTCPResumeNodes(t *testing.T, dirA, dirB string, tweakA ...func(*Config)) *tcpResumeNodes {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	n := &tcpResumeNodes{t: t}
	n.cfgA = Config{ListenPort: 0, StateDir: dirA, Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}
	for _, f := range tweakA {
		f(&n.cfgA)
	}
	n.a = startNode(t, n.cfgA, ka)
	// A restarted A listens where B dials.
	n.cfgA.ListenPort = n.a.dev.ListenAddr().(*net.TCPAddr).Port
	n.cfgB = Config{ListenPort: -1, StateDir: dirB, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: n.a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32")}}}
	n.b = startNode(t, n.cfgB, kb)
	return n
}

func (n *tcpResumeNodes) restartA() {
	n.a.dev.Close()
	n.a = startNode(n.t, n.cfgA, n.a.keys)
}

func (n *tcpResumeNodes) restartB() {
	n.b.dev.Close()
	n.b = startNode(n.t, n.cfgB, n.b.keys)
}

// traffic checks that packets get through each way. A packet sent while
// a side has not noticed yet that its connection broke is lost with it,
// so each is sent again until one arrives.
func (n *tcpResumeNodes) traffic(what string) {
	n.t.Helper()
	deliver(n.t, n.b.tun, n.a.tun, ipPacket("10.0.0.2", "10.0.0.1", "b to a, "+what))
	deliver(n.t, n.a.tun, n.b.tun, ipPacket("10.0.0.1", "10.0.0.2", "a to b, "+what))
}

func deliver(t *testing.T, from, to *fakeTUN, p []byte) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	resend := time.NewTicker(100 * time.Millisecond)
	defer resend.Stop()
	from.in <- p
	for {
		select {
		case got := <-to.out:
			// Anything else is a late copy of an earlier check's.
			if string(got) == string(p) {
				return
			}
		case <-resend.C:
			from.in <- p
		case <-deadline:
			t.Fatalf("no packet on the TUN")
		}
	}
}

// outcomes waits until A's and B's handshake counters are want.
func (n *tcpResumeNodes) outcomes(stage string, wantA, wantB HandshakeOutcomes) {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ha, hb := peerStatus(n.t, n.a.dev, "b").Handshake, peerStatus(n.t, n.b.dev, "a").Handshake
		if ha == wantA && hb == wantB {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: handshakes A %+v B %+v, want A %+v B %+v", stage, ha, hb, wantA, wantB)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readSaved reads the one state file in dir and checks its mode.
func readSaved(t *testing.T, dir string) savedState {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.state"))
	if err != nil || len(files) != 1 {
		t.Fatalf("state files in %s: %v %v", dir, files, err)
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v", files[0], fi.Mode())
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestTCPResume: a TCP session survives a restart of either side. The
// dialer B restarts and resumes from its file, A from the group it kept
// when the connection broke; then A restarts and resumes from its file,
// B from the group it kept. No side handshakes afresh, and each
// resumption lands two epochs later.
func TestTCPResume(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	n := newTCPResumeNodes(t, dirA, dirB)
	n.traffic("first session")
	e0 := n.b.dev.Stats().Peers["a"].Epoch
	n.a.dev.Rekey()
	waitFor(t, "epoch update", func() bool {
		return n.b.dev.Stats().Peers["a"].Epoch == e0+1 && n.a.dev.Stats().Peers["b"].Epoch == e0+1
	})
	n.outcomes("handshake", HandshakeOutcomes{Established: 1}, HandshakeOutcomes{Established: 1})

	n.restartB()
	if st := readSaved(t, dirB); !st.stream() || st.Epoch != e0+1 || st.LocalIndex != 0 {
		t.Fatalf("B's saved state: transport %q epoch %d index %d, want tcp, %d, 0", st.Transport, st.Epoch, st.LocalIndex, e0+1)
	}
	n.traffic("after B restarted")
	n.outcomes("B restarted", HandshakeOutcomes{Established: 1, Resumed: 1}, HandshakeOutcomes{Resumed: 1})
	if e := n.b.dev.Stats().Peers["a"].Epoch; e != e0+3 {
		t.Fatalf("B resumed at epoch %d, want %d", e, e0+3)
	}

	n.restartA()
	if st := readSaved(t, dirA); !st.stream() || st.Epoch != e0+3 {
		t.Fatalf("A's saved state: transport %q epoch %d, want tcp, %d", st.Transport, st.Epoch, e0+3)
	}
	n.traffic("after A restarted")
	n.outcomes("A restarted", HandshakeOutcomes{Resumed: 1}, HandshakeOutcomes{Resumed: 2})
	if e := n.a.dev.Stats().Peers["b"].Epoch; e != e0+5 {
		t.Fatalf("A resumed at epoch %d, want %d", e, e0+5)
	}
	if d := n.b.dev.Stats().Peers["a"].Dials; d < 2 {
		t.Fatalf("B dialed %d times", d)
	}
}

// TestTCPResumeStale: B restarts with a state three epochs older than
// the session: A rejects its request and B handshakes on the same
// connection, no timer and no second dial involved.
func TestTCPResumeStale(t *testing.T) {
	dirB := t.TempDir()
	n := newTCPResumeNodes(t, t.TempDir(), dirB)
	n.traffic("first session")
	n.b.dev.saver.flush() // the state is written off the owner (saver.go)
	files, _ := filepath.Glob(filepath.Join(dirB, "*.state"))
	if len(files) != 1 {
		t.Fatalf("state files %v", files)
	}
	stale, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	e0 := n.b.dev.Stats().Peers["a"].Epoch
	for e := e0 + 1; e <= e0+3; e++ {
		n.a.dev.Rekey()
		waitFor(t, "epoch update", func() bool {
			return n.b.dev.Stats().Peers["a"].Epoch == e && n.a.dev.Stats().Peers["b"].Epoch == e
		})
	}
	n.b.dev.Close()
	if err := os.WriteFile(files[0], stale, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n.b = startNode(t, n.cfgB, n.b.keys)
	n.traffic("after the stale restart")
	took := time.Since(start)
	n.outcomes("stale state", HandshakeOutcomes{Established: 2, ResumeFailed: 1}, HandshakeOutcomes{Established: 1, ResumeFailed: 1})
	if d := n.b.dev.Stats().Peers["a"].Dials; d != 1 {
		t.Fatalf("B dialed %d times, want one connection", d)
	}
	// Not asserted (no timed assertions), but a fallback that waited for
	// the ResumeTimeout instead of the reject would show here as 4 s.
	t.Logf("traffic %v after the stale restart", took.Round(time.Millisecond))
}

// TestTCPResumeListenerForgot: A restarts with an empty state directory
// and B's connection breaks; A cannot route B's request (it knows no such
// group) and closes the connection without a word, so B dials again with
// a ClientHello.
func TestTCPResumeListenerForgot(t *testing.T) {
	dirA := t.TempDir()
	n := newTCPResumeNodes(t, dirA, t.TempDir())
	n.traffic("first session")
	n.a.dev.Close()
	files, _ := filepath.Glob(filepath.Join(dirA, "*"))
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	n.a = startNode(t, n.cfgA, n.a.keys)
	n.traffic("after A forgot")
	n.outcomes("A forgot", HandshakeOutcomes{Established: 1}, HandshakeOutcomes{Established: 2, Failed: 1, ResumeFailed: 1})
	if got := n.a.dev.Stats().UnknownPeer; got != 1 {
		t.Fatalf("A refused %d hellos of unknown peers, want B's one request", got)
	}
}

// TestTCPResumeReplay: B's sealed ResumptionRequest, captured on the wire
// and replayed on new connections, costs A no asymmetric work: while A
// keeps the route of the hello it opened (the handshake timeout) the
// route refuses it, and after that the keyring's replay set does, both
// before any HPKE open; the connection is closed without an answer, and
// the resumed session goes on.
func TestTCPResumeReplay(t *testing.T) {
	n := newTCPResumeNodes(t, t.TempDir(), t.TempDir(), func(c *Config) { c.HandshakeTimeout = time.Second })
	n.traffic("first session")
	w := new(wireTap)
	n.cfgB.Peers[0].Endpoint = tcpTap(t, w, n.a.dev.ListenAddr().String())
	n.restartB()
	n.traffic("resumed")
	want := HandshakeOutcomes{Established: 1, Resumed: 1}
	n.outcomes("resumed", want, HandshakeOutcomes{Resumed: 1})

	w.mu.Lock()
	if len(w.streams) != 1 {
		t.Fatalf("%d connections through the tap", len(w.streams))
	}
	stream := bytes.Clone(w.streams[0].Bytes())
	w.mu.Unlock()
	// The hello is in the plaintext handshake records at the front.
	plain := 0
	for len(stream)-plain >= plainHeaderLen && stream[plain] == contentHandshake {
		plain += plainHeaderLen + int(binary.BigEndian.Uint16(stream[plain+3:]))
	}
	hs := &helloStream{r: bytes.NewReader(stream[:min(plain, len(stream))])}
	typ, env, err := hs.next()
	if err != nil || typ != session.MsgSealedHello {
		t.Fatalf("first message on the wire: %v %v", typ, err)
	}
	record := stream[:hs.total-len(hs.raw)]
	hash := sha256.Sum256(env)

	d := n.a.dev
	replay := func(stage string, k int) {
		t.Helper()
		before := d.guard.refused[refHelloReplay].Load()
		for range k {
			c, err := net.Dial("tcp", d.ListenAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(record); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := c.Read(make([]byte, 1))
			c.Close()
			// EOF, or a reset if the close beat our write.
			if got != 0 || err == nil || isTimeout(err) {
				t.Fatalf("%s: replay got %d bytes, %v: want a silent close", stage, got, err)
			}
		}
		waitFor(t, stage+": replays refused", func() bool { return d.guard.refused[refHelloReplay].Load() == before+uint64(k) })
	}
	replay("the opened hello's route", 3)
	if d.opened.peerOf(hash) == nil {
		t.Fatal("no route kept for the opened hello")
	}
	waitFor(t, "the route to expire", func() bool { return d.opened.peerOf(hash) == nil })
	replay("the keyring's replay set", 3)
	if d.opened.peerOf(hash) != nil {
		t.Fatal("a replay was opened again: it has a route")
	}

	n.outcomes("after the replays", want, HandshakeOutcomes{Resumed: 1})
	if st := d.Stats(); st.UnknownPeer != 0 || st.BadHello != 0 {
		t.Fatalf("replays opened: unknown peer %d, bad hello %d", st.UnknownPeer, st.BadHello)
	}
	n.traffic("after the replays")
}

// TestAutoTCPResume: a transport=auto peer in TCP fallback restarts and
// resumes over TCP at once, as fallen back (it probes UDP from there),
// instead of trying UDP first and handshaking after the fallback.
func TestAutoTCPResume(t *testing.T) {
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	a := startNode(t, Config{ListenPort: 0, StateDir: t.TempDir(), Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, ka)
	a.dev.udp.bind.Close() // a firewall that drops UDP
	cfgB := Config{ListenPort: -1, StateDir: t.TempDir(), UDPFallback: 300 * time.Millisecond, Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: a.dev.ListenAddr().String(), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportAuto}}}
	b := startNode(t, cfgB, kb)
	deliver(t, b.tun, a.tun, ipPacket("10.0.0.2", "10.0.0.1", "via tcp"))
	if s := b.dev.Stats().Peers["a"]; s.Fallbacks != 1 {
		t.Fatalf("B did not fall back: %+v", s)
	}
	b.dev.Close()
	start := time.Now()
	b = startNode(t, cfgB, kb)
	deliver(t, b.tun, a.tun, ipPacket("10.0.0.2", "10.0.0.1", "resumed over tcp"))
	took := time.Since(start)
	st := peerStatus(t, b.dev, "a")
	if st.Handshake != (HandshakeOutcomes{Resumed: 1}) || st.ActiveTransport != "tcp" || st.TransportReason != ReasonFallback {
		t.Fatalf("B after the restart: handshakes %+v, on %s (%s)", st.Handshake, st.ActiveTransport, st.TransportReason)
	}
	if s := b.dev.Stats().Peers["a"]; s.Dials != 1 || s.Fallbacks != 0 {
		t.Fatalf("B tried UDP first: %d dials, %d fallbacks", s.Dials, s.Fallbacks)
	}
	t.Logf("first packet %v after the restart", took.Round(time.Millisecond))
}

// halfOpenTap relays TCP connections to a, and when the dialer's side
// ends it leaves a's side open: a peer that vanished without a FIN (a
// power cut, a NAT that forgot the connection), which a does not notice.
func halfOpenTap(t *testing.T, a string) string {
	return tcpForwarder(t, a, func(c, s net.Conn) {
		go func() { io.Copy(s, c) }() // s stays open after c ends
		go func() { io.Copy(c, s) }()
	})
}

// TestTCPResumeHalfOpen: B restarts while A still holds B's old
// connection as established. B's ResumptionRequest on a new connection
// is answered by a candidate restored from the established session's
// group, which takes over once B's first record under the new keys
// authenticates.
func TestTCPResumeHalfOpen(t *testing.T) {
	n := newTCPResumeNodes(t, t.TempDir(), t.TempDir())
	n.cfgB.Peers[0].Endpoint = halfOpenTap(t, n.a.dev.ListenAddr().String())
	n.restartB() // from now on B dials through the tap
	n.traffic("through the tap")
	before := peerStatus(t, n.a.dev, "b").Handshake
	n.restartB()
	if !n.a.dev.Stats().Peers["b"].Established {
		t.Fatal("A noticed B's restart: the connection is not half open")
	}
	n.traffic("after B restarted")
	want := before
	want.Resumed++
	n.outcomes("B restarted", want, HandshakeOutcomes{Resumed: 1})
}
