package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testHooks(timeout time.Duration) (hookRunner, *bytes.Buffer) {
	var logBuf bytes.Buffer
	return hookRunner{ifname: "cur7", timeout: timeout, log: slog.New(slog.NewTextHandler(&logBuf, nil))}, &logBuf
}

func TestHooksUp(t *testing.T) {
	h, logBuf := testHooks(10 * time.Second)
	trace := filepath.Join(t.TempDir(), "trace")
	err := h.up("pre_up", []string{
		"echo one %i >> " + trace,
		"echo to stdout; echo to stderr >&2",
		"exit 4",
		"echo never >> " + trace,
	})
	if err == nil || !strings.Contains(err.Error(), `pre_up[2] "exit 4": exit status 4`) {
		t.Fatalf("up: %v", err)
	}
	if b, _ := os.ReadFile(trace); string(b) != "one cur7\n" {
		t.Errorf("trace %q: %%i not replaced, or a hook after the failure ran", b)
	}
	for _, w := range []string{`msg="hook output" hook=pre_up[1] line="to stdout"`, `line="to stderr"`, `command="echo one cur7 >>`} {
		if !strings.Contains(logBuf.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logBuf.String())
		}
	}
}

func TestHooksDownGoOn(t *testing.T) {
	h, logBuf := testHooks(10 * time.Second)
	trace := filepath.Join(t.TempDir(), "trace")
	h.down("post_down", []string{"false", "echo after %i >> " + trace})
	if b, _ := os.ReadFile(trace); string(b) != "after cur7\n" {
		t.Errorf("trace %q: the hook after a failing one did not run", b)
	}
	if !strings.Contains(logBuf.String(), "going on with the shutdown") {
		t.Errorf("failure not logged:\n%s", logBuf.String())
	}
}

// A hook that outlives its timeout is killed with its children, even one
// that keeps the output pipe open.
func TestHooksTimeout(t *testing.T) {
	h, _ := testHooks(200 * time.Millisecond)
	start := time.Now()
	err := h.up("post_up", []string{"sleep 60 & sleep 60"})
	if err == nil || !strings.Contains(err.Error(), "killed after 200ms") {
		t.Fatalf("up: %v", err)
	}
	// Not a timing assertion on the machine's speed: a hook not killed
	// would hold this for a minute.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestHookLogBounded(t *testing.T) {
	h, logBuf := testHooks(10 * time.Second)
	err := h.up("pre_up", []string{"i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done; head -c 5000 /dev/zero | tr '\\0' x"})
	if err != nil {
		t.Fatal(err)
	}
	out := logBuf.String()
	if n := strings.Count(out, `msg="hook output"`); n != hookMaxLines {
		t.Errorf("%d output lines logged, want %d", n, hookMaxLines)
	}
	if !strings.Contains(out, "hook output cut") || strings.Contains(out, "line299") {
		t.Errorf("the cut is not logged, or lines past it are:\n%.2000s", out)
	}
	// One long line is cut at hookMaxLineLen.
	var l hookLog
	l.log = slog.New(slog.NewTextHandler(logBuf, nil))
	logBuf.Reset()
	l.Write(bytes.Repeat([]byte("y"), 3*hookMaxLineLen))
	l.Write([]byte("\n"))
	if got := strings.Count(logBuf.String(), "y"); got != hookMaxLineLen {
		t.Errorf("a long line logged with %d bytes, want %d", got, hookMaxLineLen)
	}
}
