package tunnel

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLog(t *testing.T) {
	var s saveLog
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type outcome struct {
		log   bool
		held  int
		since time.Time
	}
	check := func(step string, log bool, held int, since time.Time, want outcome) {
		t.Helper()
		if held == 0 {
			since = time.Time{} // meaningless without held failures
		}
		if got := (outcome{log, held, since}); got != want {
			t.Fatalf("%s: got %+v, want %+v", step, got, want)
		}
	}

	log, held, since := s.failed(at(0), false)
	check("first failure", log, held, since, outcome{log: true})
	for i := range 20 {
		if log, _, _ := s.failed(at(time.Duration(i+1)*100*time.Millisecond), false); log {
			t.Fatalf("failure %d within the interval logged", i+1)
		}
	}
	log, held, since = s.saved(at(3*time.Second), false)
	check("first success after a warning", log, held, since, outcome{true, 20, at(0)})
	log, held, since = s.saved(at(4*time.Second), false)
	check("second success", log, held, since, outcome{})

	// Flapping: failures and successes within the interval are quiet, and
	// counted in the next line, which may be a success.
	log, held, since = s.failed(at(5*time.Second), false)
	check("failure after recovery, within the interval", log, held, since, outcome{})
	log, held, since = s.saved(at(6*time.Second), false)
	check("success after a held failure", log, held, since, outcome{})
	s.failed(at(7*time.Second), false)
	log, held, since = s.saved(at(3*time.Second+saveReportInterval), false)
	check("success after the interval", log, held, since, outcome{true, 2, at(3 * time.Second)})

	// After a quiet interval, a failure is logged at once.
	log, held, since = s.failed(at(3*time.Second+2*saveReportInterval), false)
	check("failure after a quiet interval", log, held, since, outcome{log: true})
	base := 3*time.Second + 2*saveReportInterval
	s.failed(at(base+time.Second), false)
	// The save at shutdown: a failure is logged whatever the interval...
	log, held, since = s.failed(at(base+2*time.Second), true)
	check("final failure", log, held, since, outcome{true, 1, at(base)})
	// ... and so is a success that has held failures to report.
	s.saved(at(base+3*time.Second), false)
	s.failed(at(base+4*time.Second), false)
	log, held, since = s.saved(at(base+5*time.Second), true)
	check("final success with a held failure", log, held, since, outcome{true, 1, at(base + 3*time.Second)})
	log, held, since = s.saved(at(base+6*time.Second), true)
	check("final success with nothing to report", log, held, since, outcome{})
}

// jsonLog collects a JSON handler's lines.
type jsonLog struct{ syncBuffer }

// count returns the number of lines with message msg and the last one.
func (l *jsonLog) count(t *testing.T, msg string) (int, map[string]any) {
	t.Helper()
	n, last := 0, map[string]any(nil)
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			n, last = n+1, m
		}
	}
	return n, last
}

// TestSaveStateFailuresLogged: a state directory that cannot be written
// costs one warning however many epochs fail to save, and saving again
// is logged once, with the count of the failures in between.
func TestSaveStateFailuresLogged(t *testing.T) {
	var logs jsonLog
	ka, kb := newKeys(t, testSuite), newKeys(t, testSuite)
	// A missing directory rather than a read-only one: root may write to
	// a read-only directory.
	dir := filepath.Join(t.TempDir(), "state")
	// Not startNode, which logs to the test's output: A logs to logs.
	cfg := Config{
		ListenPort: 0, StateDir: dir, RekeyInterval: 50 * time.Millisecond, Suite: testSuite, PrivateKey: ka.priv,
		Logger:    slog.New(slog.NewJSONHandler(&logs, nil)),
		RedialMin: 20 * time.Millisecond, RedialMax: 200 * time.Millisecond,
		Peers: []PeerConfig{{Name: "b", PublicKey: kb.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}},
	}
	dev, err := New(cfg, newFakeTUN(), newFakeLink())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	startNode(t, Config{ListenPort: 0, RekeyInterval: -1,
		Peers: []PeerConfig{{Name: "a", PublicKey: ka.pub, Endpoint: fmt.Sprintf("127.0.0.1:%d", dev.UDPPort()), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}}}, kb)

	waitFor(t, "ten epochs", func() bool { return dev.Stats().Peers["b"].Epochs >= 10 })
	if n, last := logs.count(t, "saving session state"); n != 1 || !strings.Contains(fmt.Sprint(last["err"]), "no such file or directory") {
		t.Fatalf("%d warnings for a missing state directory, want 1 (last %v)", n, last)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "saving to work again", func() bool { n, _ := logs.count(t, "saving session state works again"); return n > 0 })
	epochs := dev.Stats().Peers["b"].Epochs
	waitFor(t, "five more epochs", func() bool { return dev.Stats().Peers["b"].Epochs >= epochs+5 })
	n, last := logs.count(t, "saving session state works again")
	if held, _ := last["more_failures"].(float64); n != 1 || held < 9 {
		t.Fatalf("%d recovery lines, the last %v; want one, with at least 9 failures", n, last)
	}
	if n, _ := logs.count(t, "saving session state"); n != 1 {
		t.Fatalf("%d warnings after recovery, want still 1", n)
	}
	// A save may be under way (its temporary file is a dot file).
	if files, err := filepath.Glob(filepath.Join(dir, "[^.]*.state")); err != nil || len(files) != 1 {
		t.Fatalf("state files after recovery: %v, %v", files, err)
	}
}
