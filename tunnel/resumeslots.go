package tunnel

import (
	"context"
	"slices"
	"sync"
)

// Resumption slots: how many resumptions of known groups the owners work
// on at once. A restart storm is every configured peer resuming within a
// second or two. The resumption budget (ratelimit.go) decides how many of
// them are admitted per second; the slots decide how many run at once, so
// that the admitted ones queue as blocked owners, which cost no CPU and
// are served first come, first served, instead of as thousands of runnable
// owners that share the cores with the data path of the peers already
// back. (Measured before the slots, bench/README.md "Restart storm": with
// a budget above what the cores resume, the peers already back waited
// more than a second for their answers behind the queued work, and each
// such peer started another resumption.)
//
// Half the cores, at least one: the other half carries the traffic of the
// peers already back, and of everyone else, while the storm lasts.

// resumeSlots is a counting semaphore that serves its waiters in arrival
// order (explicitly: a channel's blocked senders are also queued, but as
// an implementation detail nobody promises).
type resumeSlots struct {
	mu      sync.Mutex
	size    int
	free    int
	waiters []chan struct{} // closed when granted a slot
}

func newResumeSlots(cores int) *resumeSlots {
	n := max(cores/2, 1)
	return &resumeSlots{size: n, free: n}
}

// acquire waits for a slot; it fails only when ctx ends first.
func (s *resumeSlots) acquire(ctx context.Context) bool {
	s.mu.Lock()
	if s.free > 0 && len(s.waiters) == 0 {
		s.free--
		s.mu.Unlock()
		return true
	}
	granted := make(chan struct{})
	s.waiters = append(s.waiters, granted)
	s.mu.Unlock()
	select {
	case <-granted:
		return true
	case <-ctx.Done():
	}
	s.mu.Lock()
	if i := slices.Index(s.waiters, granted); i >= 0 {
		s.waiters = slices.Delete(s.waiters, i, i+1)
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	s.release() // granted as ctx ended: the slot goes to the next
	return false
}

// release gives a slot to the first waiter, or back.
func (s *resumeSlots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiters) > 0 {
		close(s.waiters[0])
		s.waiters[0] = nil
		s.waiters = s.waiters[1:]
		return
	}
	s.free++
}
