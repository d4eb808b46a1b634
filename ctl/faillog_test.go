package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogCapture collects the lines of a JSON handler (for the tests of
// package ctl_test too).
type LogCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Logger logs into l, at every level from Info.
func (l *LogCapture) Logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// Text is everything logged so far.
func (l *LogCapture) Text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines is every line logged so far, decoded.
func (l *LogCapture) Lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// WaitLines waits until there are n lines, for at most 5 seconds.
func (l *LogCapture) WaitLines(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := l.Lines(t)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFailLog(t *testing.T) {
	var out LogCapture
	const interval = 250 * time.Millisecond
	f := newFailLog(out.Logger(), interval)
	a := failKind{msg: "m", op: OpPeerAdd, code: CodeBadRequest, uid: 0}
	b := failKind{msg: "m", op: OpPeerAdd, code: CodeConflict, uid: 0}
	c := failKind{msg: "m", op: OpPeerAdd, code: CodeBadRequest, uid: 1000}

	start := time.Now()
	if !f.allow(a, errors.New("first")) {
		t.Fatal("first failure held back")
	}
	for i := range 20 {
		if f.allow(a, fmt.Errorf("repeat %d", i)) {
			t.Fatalf("repeat %d allowed within the interval", i)
		}
	}
	if !f.allow(b, errors.New("other code")) || !f.allow(c, errors.New("other user")) {
		t.Fatal("another kind held back")
	}
	// At the end of the interval, one line counts what was held back.
	lines := out.WaitLines(t, 1)
	if elapsed := time.Since(start); elapsed < interval {
		t.Fatalf("summary after %s, before the interval ended", elapsed)
	}
	if len(lines) != 1 || lines[0]["msg"] != "m (repeated)" || lines[0]["count"] != 20.0 ||
		lines[0]["last_err"] != "repeat 19" || lines[0]["code"] != "bad_request" || lines[0]["op"] != OpPeerAdd || lines[0]["uid"] != 0.0 {
		t.Fatalf("summary %v", lines)
	}
	// The summary opened the next interval: a failure now is held back
	// and reported at its end.
	if f.allow(a, errors.New("after the summary")) {
		t.Fatal("failure right after a summary allowed")
	}
	lines = out.WaitLines(t, 2)
	if len(lines) != 2 || lines[1]["count"] != 1.0 || lines[1]["last_err"] != "after the summary" {
		t.Fatalf("second summary %v", lines)
	}
	// An interval without failures ends quietly, and the next failure is
	// logged at once.
	time.Sleep(interval + interval/2)
	if got := out.Lines(t); len(got) != 2 {
		t.Fatalf("lines after a quiet interval: %v", got)
	}
	if !f.allow(a, errors.New("later")) {
		t.Fatal("failure after a quiet interval held back")
	}

	// close reports what is held back at once, and nothing later. b's
	// interval is over, so the first of these is allowed.
	for range 3 {
		f.allow(b, errors.New("b again"))
	}
	f.close()
	lines = out.Lines(t)
	if len(lines) != 3 || lines[2]["count"] != 2.0 || lines[2]["code"] != "conflict" {
		t.Fatalf("lines after close %v", lines)
	}
	if !f.allow(a, errors.New("after close")) {
		t.Fatal("failure after close held back")
	}
	time.Sleep(2 * interval)
	if got := out.Lines(t); len(got) != 3 {
		t.Fatalf("a timer reported after close: %v", got)
	}
}
