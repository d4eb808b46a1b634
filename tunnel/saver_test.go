package tunnel

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heldWrites makes a saver's writes wait for release, each then written
// to disk for real; it counts the writes and the most at once.
type heldWrites struct {
	mu      sync.Mutex
	release chan struct{}
	started chan string
	running atomic.Int32
	most    atomic.Int32
	writes  []int64 // epochs written, in order (-1: a removal)
}

func newHeldWrites() *heldWrites {
	return &heldWrites{release: make(chan struct{}), started: make(chan string, 1024)}
}

func (h *heldWrites) write(path string, st *savedState) error {
	n := h.running.Add(1)
	for {
		m := h.most.Load()
		if n <= m || h.most.CompareAndSwap(m, n) {
			break
		}
	}
	h.started <- path
	<-h.release
	e := int64(-1)
	if st != nil {
		e = int64(st.Epoch)
	}
	h.mu.Lock()
	h.writes = append(h.writes, e)
	h.mu.Unlock()
	err := writeStateFile(path, st)
	h.running.Add(-1)
	return err
}

func testJob(epoch uint64, group []byte) *saveJob {
	return &saveJob{
		st:     &savedState{Version: stateVersion, Epoch: epoch, LocalIndex: 1, PeerIndex: 2, Group: group},
		report: &saveLog{}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now,
	}
}

// TestSaverCoalesces: saves submitted while one of the same file is being
// written wait for it, and only the newest of them is written; the
// secrets of those replaced are zeroed at once, those written after the
// write.
func TestSaverCoalesces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.state")
	h := newHeldWrites()
	s := &stateSaver{write: h.write}
	first := testJob(1, []byte("secret-1"))
	s.submit(path, first)
	<-h.started // the first write is running
	var replaced []*saveJob
	for e := uint64(2); e <= 5; e++ {
		j := testJob(e, []byte("secret-"+string(rune('0'+e))))
		if e < 5 {
			replaced = append(replaced, j)
		}
		s.submit(path, j)
	}
	for _, j := range replaced {
		if !bytes.Equal(j.st.Group, make([]byte, len(j.st.Group))) {
			t.Errorf("epoch %d: replaced save's group not zeroed: %q", j.st.Epoch, j.st.Group)
		}
	}
	close(h.release)
	s.flush()
	if len(h.writes) != 2 || h.writes[0] != 1 || h.writes[1] != 5 {
		t.Fatalf("written epochs %v, want [1 5]", h.writes)
	}
	if !bytes.Equal(first.st.Group, make([]byte, len(first.st.Group))) {
		t.Errorf("written save's group not zeroed: %q", first.st.Group)
	}
	st, err := loadStatePath(path)
	if err != nil || st.Epoch != 5 {
		t.Fatalf("file holds %+v, %v; want epoch 5", st, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if len(s.files) != 0 {
		t.Errorf("%d files still tracked after the flush", len(s.files))
	}
}

// TestSaverRemoval: a removal queued behind saves of the file wins, and a
// save after a removal writes the file again.
func TestSaverRemoval(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.state")
	h := newHeldWrites()
	s := &stateSaver{write: h.write}
	s.submit(path, testJob(1, []byte("g")))
	<-h.started
	s.submit(path, testJob(2, []byte("g")))
	s.submit(path, &saveJob{report: &saveLog{}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now})
	close(h.release)
	s.flush()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file still there after the removal (%v); writes %v", err, h.writes)
	}
	s.submit(path, testJob(3, []byte("g")))
	s.flush()
	if st, err := loadStatePath(path); err != nil || st.Epoch != 3 {
		t.Fatalf("after a new save: %+v, %v", st, err)
	}
}

// TestSaverBoundsWriters: many peers' saves at once are written by at
// most maxSaveWriters writers, every one of them.
func TestSaverBoundsWriters(t *testing.T) {
	dir := t.TempDir()
	h := newHeldWrites()
	s := &stateSaver{write: h.write}
	const peers = 40
	for i := range peers {
		s.submit(filepath.Join(dir, strings.Repeat("x", i+1)+".state"), testJob(uint64(i), []byte("g")))
	}
	for range maxSaveWriters {
		<-h.started
	}
	select {
	case p := <-h.started:
		t.Fatalf("a write of %s started beyond the %d writers", p, maxSaveWriters)
	case <-time.After(50 * time.Millisecond):
	}
	close(h.release)
	s.flush()
	if got := h.most.Load(); got != maxSaveWriters {
		t.Errorf("at most %d writes at once, want %d", got, maxSaveWriters)
	}
	if len(h.writes) != peers {
		t.Fatalf("%d writes, want %d", len(h.writes), peers)
	}
}

// TestSaverReportsFailures: a state_dir that cannot be written is
// reported once, then held back, and the shutdown save's failure always.
func TestSaverReportsFailures(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	s := &stateSaver{}
	path := filepath.Join(t.TempDir(), "missing", "p.state")
	report := &saveLog{}
	for e := uint64(1); e <= 3; e++ {
		j := testJob(e, []byte("g"))
		j.report, j.log, j.final = report, log, e == 3
		s.submit(path, j)
		s.flush()
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "saving session state"); n != 2 {
		t.Fatalf("%d failure lines, want 2 (the first and the final):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "more_failures=1") {
		t.Errorf("the final line does not count the failure held back:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
