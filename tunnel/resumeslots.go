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
//
// A rescue goes first: a resumption for a session that is established
// here (its peer's liveness rule counted it dead after a second without
// an answer, and resumes next to it, tunnel/liveness.go). Its owner
// carries that peer's traffic, and while it waits for a slot nothing of
// that traffic is answered: behind thousands of restored sessions' first
// resumptions, for many seconds, so that the peer gave up on the rescue's
// answer too and resumed again (bench/README.md, "Restart storm (session
// 10)"). Only a peer can make a request for its own group, and its owner
// takes at most its handshake rate of them, so the rescues cannot starve
// the queue behind them.

// resumeSlots is a counting semaphore that serves its waiters in arrival
// order, rescues before the rest (explicitly: a channel's blocked senders
// are also queued, but as an implementation detail nobody promises).
type resumeSlots struct {
	mu   sync.Mutex
	size int
	free int
	// waiters are closed when granted a slot: the first urgent of
	// them are rescues.
	waiters []chan struct{}
	urgent  int
}

func newResumeSlots(cores int) *resumeSlots {
	n := max(cores/2, 1)
	return &resumeSlots{size: n, free: n}
}

// acquire waits for a slot, ahead of every waiter but the rescues when
// rescue is set; it fails only when ctx ends first.
func (s *resumeSlots) acquire(ctx context.Context, rescue bool) bool {
	s.mu.Lock()
	if s.free > 0 && len(s.waiters) == 0 {
		s.free--
		s.mu.Unlock()
		return true
	}
	granted := make(chan struct{})
	if rescue {
		s.waiters = slices.Insert(s.waiters, s.urgent, granted)
		s.urgent++
	} else {
		s.waiters = append(s.waiters, granted)
	}
	s.mu.Unlock()
	select {
	case <-granted:
		return true
	case <-ctx.Done():
	}
	s.mu.Lock()
	if i := slices.Index(s.waiters, granted); i >= 0 {
		s.waiters = slices.Delete(s.waiters, i, i+1)
		if i < s.urgent {
			s.urgent--
		}
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
		if s.urgent > 0 {
			s.urgent--
		}
		return
	}
	s.free++
}
