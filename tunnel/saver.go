package tunnel

import (
	"log/slog"
	"os"
	"sync"
	"time"
)

// The state saver writes the peers' state files off their owner
// goroutines. A save is two fsyncs (the file, then its directory), several
// milliseconds each on a disk, and a hub whose peers rekey on their own
// timers changes epochs a hundred times a second or more: written by the
// owner, every save stalled that peer's packets for the fsyncs and the
// queue of fsyncs ahead of it, and each blocked write held an OS thread.
//
// Saves of one file are written one at a time, in order, and coalesce: a
// save submitted while an older one still waits replaces it (only the
// newest state matters, and the older one's secrets are zeroed at once).
// At most maxSaveWriters files are written at a time; what waits is one
// entry per peer, so the backlog is bounded by the number of peers.
//
// Durability. A state reaches the disk a little after its epoch change,
// not before the owner sends under the new keys; that is safe because a
// resumption never sends under a saved epoch's keys (both sides move two
// epochs on first, docs/protocol.md 7.10) and a peer rejects a request
// from an epoch older than its own, after which both handshake afresh. A
// kill -9 in the moment between an epoch change and its save therefore
// costs a handshake instead of a resumption, never a reused key. Device.Close
// waits for every pending save (the shutdown save included), so SIGTERM
// leaves the newest state.

// maxSaveWriters bounds the files written at once. Concurrent fsyncs of
// different files on one file system share journal commits, so a few in
// flight keep up with far more epoch changes than one; each holds an OS
// thread while it blocks, so not many more.
const maxSaveWriters = 4

// stateSaver queues and writes state files. The zero value is ready.
type stateSaver struct {
	mu sync.Mutex
	// idle is signalled when the saver has nothing left to write.
	idle  sync.Cond
	files map[string]*saveFile
	// ready are the files with a job waiting and no write running, in
	// the order their jobs arrived.
	ready   []*saveFile
	writers int
	// write replaces a file; writeStateFile outside tests.
	write func(path string, st *savedState) error
}

// saveFile is one state file's queue.
type saveFile struct {
	path string
	next *saveJob // waiting; nil if none
	busy bool     // a writer has it
}

// saveJob is one save, or with st nil, the removal of the file (the peer
// closed its session: nothing to resume).
type saveJob struct {
	st *savedState
	// final: the save at shutdown, always reported if it fails.
	final bool
	// report is the peer's record of outcomes: only the writer that has
	// the file touches it, one at a time.
	report *saveLog
	log    *slog.Logger
	now    func() time.Time
}

// wipe zeroes the job's secrets.
func (j *saveJob) wipe() {
	if j.st != nil {
		clear(j.st.Group)
	}
}

// submit queues j for path, replacing a job still waiting there.
func (s *stateSaver) submit(path string, j *saveJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = map[string]*saveFile{}
		s.idle.L = &s.mu
	}
	f := s.files[path]
	if f == nil {
		f = &saveFile{path: path}
		s.files[path] = f
	}
	if f.next != nil {
		f.next.wipe()
	} else if !f.busy {
		s.ready = append(s.ready, f)
	}
	f.next = j
	if s.writers < maxSaveWriters && len(s.ready) > 0 {
		s.writers++
		go s.writer()
	}
}

// writer writes files until none is ready.
func (s *stateSaver) writer() {
	s.mu.Lock()
	for len(s.ready) > 0 {
		f := s.ready[0]
		s.ready[0] = nil
		s.ready = s.ready[1:]
		j := f.next
		f.next, f.busy = nil, true
		write := s.write
		s.mu.Unlock()
		if write == nil {
			write = writeStateFile
		}
		j.finish(write(f.path, j.st))
		j.wipe()
		s.mu.Lock()
		f.busy = false
		switch {
		case f.next != nil:
			s.ready = append(s.ready, f) // submitted while we wrote
		default:
			// Nothing queued: an idle peer costs no entry.
			delete(s.files, f.path)
		}
	}
	s.writers--
	if s.writers == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// finish logs j's outcome as saveLog decides.
func (j *saveJob) finish(err error) {
	if j.st == nil {
		return // a removal: a missing file is what we wanted
	}
	now := j.now()
	if err != nil {
		if log, held, since := j.report.failed(now, j.final); log {
			j.log.Warn("saving session state", append(heldArgs(held, since), "epoch", j.st.Epoch, "err", err)...)
		}
		return
	}
	if log, held, since := j.report.saved(now, j.final); log {
		j.log.Info("saving session state works again", append(heldArgs(held, since), "epoch", j.st.Epoch)...)
	}
	j.log.Debug("session state saved", "epoch", j.st.Epoch)
}

// flush waits until every job submitted so far is written.
func (s *stateSaver) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.writers > 0 {
		s.idle.Wait()
	}
}

// writeStateFile writes st to path, or removes path when st is nil.
func writeStateFile(path string, st *savedState) error {
	if st == nil {
		err := os.Remove(path)
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	return writeStatePath(path, st)
}
