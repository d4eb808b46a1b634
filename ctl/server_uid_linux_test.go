package ctl_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/current-vpn/current/ctl"
)

// TestOtherUIDRejected connects as another user. Credentials are changed
// on one OS thread only (a raw setresuid, not the process-wide one Go's
// syscall.Setresuid does); the goroutine exits still locked to that
// thread, so the runtime discards the thread instead of reusing it.
func TestOtherUIDRejected(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change credentials")
	}
	var out ctl.LogCapture
	ts := startServerLog(t, out.Logger())
	const nobody = 65534
	dialAs := func(uid int) (*rawConn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: see above
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
				ch <- result{nil, e}
				return
			}
			c, err := net.Dial("unix", ts.srv.Path())
			ch <- result{c, err}
		}()
		r := <-ch
		if r.err != nil {
			return nil, r.err
		}
		t.Cleanup(func() { r.c.Close() })
		r.c.SetDeadline(time.Now().Add(5 * time.Second))
		return &rawConn{t, r.c, bufio.NewReader(r.c)}, nil
	}

	// With the permissions Listen sets, the kernel refuses.
	if _, err := dialAs(nobody); !errors.Is(err, unix.EACCES) {
		t.Fatalf("dial as uid %d: %v, want EACCES", nobody, err)
	}
	// Loosened permissions: SO_PEERCRED still keeps the user out.
	for p := ts.dir; p != filepath.Dir(os.TempDir()) && p != "/"; p = filepath.Dir(p) {
		if p == os.TempDir() {
			break
		}
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(ts.srv.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	rc, err := dialAs(nobody)
	if err != nil {
		t.Fatalf("dial with loosened permissions: %v", err)
	}
	resp := rc.read()
	if resp.Error == nil || resp.Error.Code != ctl.CodePermissionDenied {
		t.Fatalf("uid %d got %+v", nobody, resp)
	}
	if _, err := rc.r.ReadByte(); err == nil {
		t.Fatal("connection of an unauthorized user left open")
	}
	// Root still gets in.
	if _, err := ts.dial(t).Version(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// A user retrying gets one log line, and the rest are counted.
	for range 4 {
		rc, err := dialAs(nobody)
		if err != nil {
			t.Fatal(err)
		}
		if resp := rc.read(); resp.Error == nil || resp.Error.Code != ctl.CodePermissionDenied {
			t.Fatalf("uid %d got %+v", nobody, resp)
		}
	}
	ts.stop(t)
	lines := out.Lines(t)
	refused := linesWith(lines, "ctl: connection refused")
	rep := linesWith(lines, "ctl: connection refused (repeated)")
	if len(refused) != 1 || refused[0]["uid"] != float64(nobody) || refused[0]["code"] != "permission_denied" ||
		len(rep) != 1 || rep[0]["count"] != 4.0 || len(lines) != 2 {
		t.Fatalf("log:\n%s", out.Text())
	}
}
