package ctl_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/ctl/ctltest"
)

type testServer struct {
	srv  *ctl.Server
	dir  string
	fake *ctltest.Fake
	keys map[string]string
	done chan error
}

func newFake(t testing.TB) (*ctltest.Fake, map[string]string) {
	t.Helper()
	cfg, keys, err := ctltest.NewConfig("alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	hs := now.Add(-90 * time.Minute)
	ep := now.Add(-75 * time.Second)
	return &ctltest.Fake{
		Cfg: cfg,
		Now: now,
		Runtime: map[string]ctl.PeerStatus{
			"alice": {State: ctl.StateEstablished, Epoch: 42, LastHandshake: &hs, LastEpochChange: &ep,
				RemoteAddress: "192.0.2.1:51900", RxBytes: 1 << 20, TxBytes: 3 << 20, RxPackets: 900, TxPackets: 2100,
				Dropped: ctl.DropCounters{Replay: 3, BadSource: 1}},
		},
	}, keys
}

func startServer(t testing.TB) *testServer {
	t.Helper()
	return startServerLog(t, nil)
}

// startServerLog starts a server that logs to log.
func startServerLog(t testing.TB, log *slog.Logger) *testServer {
	t.Helper()
	fake, keys := newFake(t)
	ts := &testServer{dir: filepath.Join(t.TempDir(), "run"), fake: fake, keys: keys, done: make(chan error, 1)}
	srv, err := ctl.Listen("current0", ts.dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	srv.Logger = log
	ts.srv = srv
	go func() { ts.done <- srv.Serve(fake) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t testing.TB) {
	t.Helper()
	if err := ts.srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		ts.done <- nil // for a second stop
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}

func (ts *testServer) dial(t *testing.T) *ctl.Client {
	t.Helper()
	c, err := ctl.Dial(ts.srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestListenPermissionsAndLiveness(t *testing.T) {
	ts := startServer(t)
	fi, err := os.Stat(ts.dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v; want 0700", fi.Mode(), err)
	}
	fi, err = os.Lstat(ts.srv.Path())
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want socket 0600", fi.Mode(), err)
	}
	if ts.srv.Path() != filepath.Join(ts.dir, "current0.sock") {
		t.Fatalf("path %s", ts.srv.Path())
	}
	// A second daemon for the interface refuses to start, and leaves the
	// first one's socket alone.
	if _, err := ctl.Listen("current0", ts.dir, -1); !errors.Is(err, ctl.ErrInUse) {
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}
	if _, err := ts.dial(t).Version(ctx(t)); err != nil {
		t.Fatalf("first server disturbed: %v", err)
	}
	// Another interface is independent.
	other, err := ctl.Listen("current1", ts.dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()

	ts.stop(t)
	if _, err := os.Lstat(ts.srv.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
	if _, err := ctl.Dial(ts.srv.Path()); !errors.Is(err, ctl.ErrNotRunning) {
		t.Fatalf("Dial after Close: %v, want ErrNotRunning", err)
	}
	again, err := ctl.Listen("current0", ts.dir, -1)
	if err != nil {
		t.Fatalf("Listen after Close: %v", err)
	}
	again.Close()
}

func TestListenReplacesStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := ctl.SocketPath(dir, "current0")
	// What a crash leaves: the socket file, nobody listening.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := ctl.Dial(path); !errors.Is(err, ctl.ErrNotRunning) {
		t.Fatalf("Dial stale: %v, want ErrNotRunning", err)
	}
	srv, err := ctl.Listen("current0", dir, -1)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	srv.Close()
}

func TestListenRefusesLiveSocketWithoutLock(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", ctl.SocketPath(dir, "current0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := ctl.Listen("current0", dir, -1); !errors.Is(err, ctl.ErrInUse) {
		t.Fatalf("Listen over a live socket: %v, want ErrInUse", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	dir := t.TempDir()
	path := ctl.SocketPath(dir, "current0")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Listen("current0", dir, -1); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatal("file changed")
	}
	for _, bad := range []string{"", "..", "a/b", "averyveryverylongname"} {
		if _, err := ctl.Listen(bad, dir, -1); err == nil {
			t.Errorf("Listen(%q) accepted", bad)
		}
	}
}

func TestOperations(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	cx := ctx(t)

	st, err := c.Status(cx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 2 || st.Peers[0].Name != "alice" || st.Peers[0].Epoch != 42 || st.Interface.Suite != "mls-xwing-ed25519" {
		t.Fatalf("status %+v", st)
	}
	st, err = c.Status(cx, ts.keys["bob"])
	if err != nil || len(st.Peers) != 1 || st.Peers[0].Name != "bob" {
		t.Fatalf("show by key: %+v, %v", st, err)
	}
	if _, err := c.Status(cx, "carol"); !errors.Is(err, ctl.ErrUnknownPeer) {
		t.Fatalf("show unknown: %v", err)
	}

	k := newKey(t)
	spec := ctl.PeerSpec{Name: "carol", PublicKey: k.String(), Endpoint: "vpn.example.net:51900", AllowedIPs: []string{"10.9.0.0/16"}, PersistentKeepalive: ctl.Seconds(25 * time.Second), Transport: "tcp"}
	if err := c.AddPeer(cx, spec, true); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPeer(cx, spec, false); !errors.Is(err, ctl.ErrConflict) {
		t.Fatalf("duplicate add: %v", err)
	}
	spec2 := spec
	spec2.Name, spec2.PublicKey = "dave", newKey(t).String()
	if err := c.AddPeer(cx, spec2, false); !errors.Is(err, ctl.ErrConflict) {
		t.Fatalf("add with a taken prefix: %v", err)
	}
	spec2.AllowedIPs = []string{"10.9.0.1/16"}
	if err := c.AddPeer(cx, spec2, false); !errors.Is(err, ctl.ErrBadRequest) {
		t.Fatalf("add with host bits: %v", err)
	}
	st, _ = c.Status(cx, "carol")
	if p := st.Peers[0]; p.Endpoint != "vpn.example.net:51900" || p.Transport != "tcp" || p.PersistentKeepalive.Duration() != 25*time.Second {
		t.Fatalf("carol = %+v", p)
	}

	ep := ""
	ka := ctl.Seconds(0)
	tr := "auto"
	if err := c.UpdatePeer(cx, ctl.PeerUpdateParams{Peer: k.String(), Endpoint: &ep, PersistentKeepalive: &ka, Transport: &tr, AllowedIPs: []string{"10.9.0.0/24", "fd00::/64"}}); err != nil {
		t.Fatal(err)
	}
	st, _ = c.Status(cx, "carol")
	if p := st.Peers[0]; p.Endpoint != "" || p.Transport != "auto" || p.PersistentKeepalive != 0 || len(p.AllowedIPs) != 2 {
		t.Fatalf("carol after update = %+v", p)
	}
	if err := c.UpdatePeer(cx, ctl.PeerUpdateParams{Peer: "carol"}); !errors.Is(err, ctl.ErrBadRequest) {
		t.Fatalf("empty update: %v", err)
	}
	if err := c.UpdatePeer(cx, ctl.PeerUpdateParams{Peer: "nobody", Transport: &tr}); !errors.Is(err, ctl.ErrUnknownPeer) {
		t.Fatalf("update unknown: %v", err)
	}
	if err := c.RemovePeer(cx, "carol", true); err != nil {
		t.Fatal(err)
	}
	if err := c.RemovePeer(cx, "carol", false); !errors.Is(err, ctl.ErrUnknownPeer) {
		t.Fatalf("remove twice: %v", err)
	}
	ts.fake.Lock()
	saved := ts.fake.Saved
	ts.fake.Unlock()
	if saved != 2 {
		t.Fatalf("saved %d times, want 2 (add and remove with save)", saved)
	}

	r, err := c.Rekey(cx, "alice", 0)
	if err != nil || len(r.Results) != 1 || r.Results[0].Epoch != 43 {
		t.Fatalf("rekey alice: %+v, %v", r, err)
	}
	if _, err := c.Rekey(cx, "bob", 0); !errors.Is(err, ctl.ErrConflict) {
		t.Fatalf("rekey of a peer without session: %v", err)
	}
	r, err = c.Rekey(cx, "", 0)
	if err != nil || len(r.Results) != 2 || r.Results[0].Epoch != 44 || r.Results[1].Error == nil || r.Results[1].Error.Code != ctl.CodeConflict {
		t.Fatalf("rekey all: %+v, %v", r, err)
	}

	iv := ctl.Seconds(5 * time.Minute)
	by := uint64(1 << 20)
	pol, err := c.SetPolicy(cx, ctl.SetParams{RekeyInterval: &iv, RekeyBytes: &by})
	if err != nil || pol.RekeyInterval != iv || pol.RekeyBytes != by {
		t.Fatalf("set: %+v, %v", pol, err)
	}
	short := ctl.Seconds(time.Second)
	if _, err := c.SetPolicy(cx, ctl.SetParams{RekeyInterval: &short}); !errors.Is(err, ctl.ErrBadRequest) {
		t.Fatalf("set too short: %v", err)
	}
	if _, err := c.SetPolicy(cx, ctl.SetParams{}); !errors.Is(err, ctl.ErrBadRequest) {
		t.Fatalf("set nothing: %v", err)
	}

	text, err := c.Metrics(cx)
	if err != nil || !strings.Contains(text, "current_peer_epoch{") {
		t.Fatalf("metrics: %.200q, %v", text, err)
	}
	v, err := c.Version(cx)
	if err != nil || v.Protocol != ctl.ProtocolVersion || v.Version != "v0.0.0-test" || len(v.Ops) != len(ctl.Ops) {
		t.Fatalf("version: %+v, %v", v, err)
	}
	if err := c.Call(cx, "peer.rename", nil, nil); !errors.Is(err, ctl.ErrUnknownOp) {
		t.Fatalf("unknown op: %v", err)
	}
	if err := c.Call(cx, ctl.OpVersion, map[string]int{"x": 1}, nil); !errors.Is(err, ctl.ErrBadRequest) {
		t.Fatalf("version with params: %v", err)
	}
}

// rawConn speaks the protocol by hand.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (ts *testServer) raw(t testing.TB) *rawConn {
	c, err := net.Dial("unix", ts.srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t, c, bufio.NewReader(c)}
}

func (rc *rawConn) roundTrip(line string) ctl.Response {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(line)); err != nil {
		rc.t.Fatal(err)
	}
	return rc.read()
}

func (rc *rawConn) read() ctl.Response {
	rc.t.Helper()
	l, err := rc.r.ReadBytes('\n')
	if err != nil {
		rc.t.Fatalf("reading response: %v", err)
	}
	var resp ctl.Response
	if err := json.Unmarshal(l, &resp); err != nil {
		rc.t.Fatalf("response %q: %v", l, err)
	}
	return resp
}

func TestMalformedRequests(t *testing.T) {
	ts := startServer(t)
	rc := ts.raw(t)
	for _, tc := range []struct {
		line string
		code ctl.Code
	}{
		{"garbage\n", ctl.CodeBadRequest},
		{"\n", ctl.CodeBadRequest},
		{`{"version":1,"op":"show","params":{"peer":"alice","verbose":true}}` + "\n", ctl.CodeBadRequest},
		{`{"version":1,"op":"peer.add","params":{"peer":{"name":"x","public_key":"ed25519:AAAA","allowed_ips":["10.1.0.0/16"]}}}` + "\n", ctl.CodeBadRequest},
		{`{"version":1,"op":"rekey","params":{"peer":"alice","all":true}}` + "\n", ctl.CodeBadRequest},
		{`{"version":1,"op":"rekey","params":{"all":true,"timeout_seconds":3600}}` + "\n", ctl.CodeBadRequest},
		{`{"version":1,"op":"peer.remove","params":{"peer":"ed25519:broken"}}` + "\n", ctl.CodeBadRequest},
		{`{"version":9,"id":"v9","op":"show"}` + "\n", ctl.CodeUnsupportedVersion},
		{`{"version":1,"id":"x","op":"reboot"}` + "\n", ctl.CodeUnknownOp},
	} {
		resp := rc.roundTrip(tc.line)
		if resp.OK || resp.Error == nil || resp.Error.Code != tc.code || resp.Version != ctl.ProtocolVersion {
			t.Errorf("%q: %+v %v, want %s", tc.line, resp, resp.Error, tc.code)
		}
	}
	// The connection and the daemon are fine.
	resp := rc.roundTrip(`{"version":1,"id":"after","op":"show"}` + "\n")
	if !resp.OK || resp.ID != "after" {
		t.Fatalf("show after errors: %+v", resp)
	}
	// Several requests in one write are answered in order.
	if _, err := rc.c.Write([]byte(`{"version":1,"id":"a","op":"version"}` + "\n" + `{"version":1,"id":"b","op":"version"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if a, b := rc.read(), rc.read(); a.ID != "a" || b.ID != "b" || !a.OK || !b.OK {
		t.Fatalf("pipelined: %+v %+v", a, b)
	}

	// An oversized line is answered and ends the connection.
	big := `{"version":1,"op":"show","params":{"peer":"` + strings.Repeat("a", ctl.MaxLineSize) + "\"}}\n"
	go rc.c.Write([]byte(big)) // the server stops reading, so this may block
	resp = rc.read()
	if resp.Error == nil || resp.Error.Code != ctl.CodeTooLarge {
		t.Fatalf("oversized: %+v", resp)
	}
	if _, err := rc.r.ReadByte(); err == nil {
		t.Fatal("connection still open after an oversized request")
	}
	// And the daemon still answers others.
	if _, err := ts.dial(t).Status(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	// A last line without newline is still answered.
	rc2 := ts.raw(t)
	rc2.c.Write([]byte(`{"version":1,"op":"version"}`))
	rc2.c.(*net.UnixConn).CloseWrite()
	if resp := rc2.read(); !resp.OK {
		t.Fatalf("unterminated last line: %+v", resp)
	}
}

func TestBackendPanicIsContained(t *testing.T) {
	ts := startServer(t)
	ts.fake.Lock()
	ts.fake.PanicOn = "Status"
	ts.fake.Unlock()
	c := ts.dial(t)
	if _, err := c.Status(ctx(t), ""); !errors.Is(err, ctl.ErrInternal) {
		t.Fatalf("panicking backend: %v", err)
	}
	if _, err := c.Version(ctx(t)); err != nil {
		t.Fatalf("after panic: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	defer func(d time.Duration) { ctl.IdleTimeout = d }(ctl.IdleTimeout)
	ctl.IdleTimeout = 100 * time.Millisecond
	ts := startServer(t)
	rc := ts.raw(t)
	rc.c.Write([]byte(`{"version":1,`)) // and nothing more
	if resp := rc.read(); resp.Error == nil {
		t.Fatalf("partial request after the deadline: %+v", resp)
	}
	if _, err := rc.r.ReadByte(); err == nil {
		t.Fatal("idle connection not closed")
	}
}

func TestRekeyTimeout(t *testing.T) {
	ts := startServer(t)
	ts.fake.Lock()
	ts.fake.RekeyBlock = true
	ts.fake.Unlock()
	start := time.Now()
	_, err := ts.dial(t).Rekey(ctx(t), "alice", 200*time.Millisecond)
	if !errors.Is(err, ctl.ErrTimeout) {
		t.Fatalf("blocked rekey: %v, want timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %s", d)
	}
	// The client's own deadline is a timeout too.
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := ts.dial(t).Rekey(short, "", time.Minute); !errors.Is(err, ctl.ErrTimeout) {
		t.Fatalf("client deadline: %v", err)
	}
}

func TestBusy(t *testing.T) {
	defer func(n int) { ctl.MaxConns = n }(ctl.MaxConns)
	ctl.MaxConns = 2
	ts := startServer(t)
	for range 2 {
		if _, err := ts.dial(t).Version(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.dial(t).Version(ctx(t)); !errors.Is(err, ctl.ErrBusy) {
		t.Fatalf("third connection: %v, want busy", err)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ts := startServer(t)
	ts.fake.Lock()
	ts.fake.RekeyBlock = true
	ts.fake.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	// One request blocked in the Backend, idle connections, a half-sent
	// request.
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ctl.Dial(ts.srv.Path())
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		_, err = c.Rekey(context.Background(), "alice", time.Minute)
		errs <- err
	}()
	for range 3 {
		ts.dial(t)
	}
	ts.raw(t).c.Write([]byte(`{"version"`))
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.fake.Lock()
		n := ts.fake.RekeyCalls
		ts.fake.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rekey never reached the backend")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.stop(t)
	wg.Wait()
	if err := <-errs; err == nil {
		t.Fatal("rekey succeeded across Close")
	}
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAuthorize(t *testing.T) {
	for _, tc := range []struct {
		uid, owner uint32
		ok         bool
	}{{0, 0, true}, {0, 998, true}, {998, 998, true}, {1000, 998, false}, {1000, 0, false}} {
		err := ctl.Authorize(&ctl.Cred{Uid: tc.uid, Pid: 1}, int(tc.owner))
		if (err == nil) != tc.ok {
			t.Errorf("Authorize(uid %d, owner %d) = %v", tc.uid, tc.owner, err)
		}
		if err != nil && !errors.Is(err, ctl.ErrPermissionDenied) {
			t.Errorf("untyped error %v", err)
		}
	}
	if ctl.Authorize(nil, 0) == nil {
		t.Error("nil credentials accepted")
	}
}
