package tunnel

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestResumeSlotsBoundAndOrder: no more resumptions run at once than the
// slots allow, the waiting ones go on in the order they came, and a peer
// closed while it waits gives up its place without taking a slot.
func TestResumeSlotsBoundAndOrder(t *testing.T) {
	if n := newResumeSlots(1).size; n != 1 {
		t.Fatalf("one core: %d slots, want 1", n)
	}
	s := newResumeSlots(4)
	if s.size != 2 {
		t.Fatalf("four cores: %d slots, want 2", s.size)
	}
	ctx := context.Background()
	s.acquire(ctx)
	s.acquire(ctx) // both slots taken

	cancelled, cancel := context.WithCancel(ctx)
	gaveUp := make(chan bool)
	go func() { gaveUp <- s.acquire(cancelled) }()
	waitQueued(t, s, 1)

	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !s.acquire(ctx) {
				t.Error("acquire failed without a cancelled context")
				return
			}
			mu.Lock()
			order = append(order, i)
			if b := s.busy(); b > s.size {
				t.Errorf("%d resumptions at once", b)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			s.release()
		}()
		waitQueued(t, s, i+2) // each starts once the one before waits
	}
	cancel()
	if <-gaveUp {
		t.Fatal("a waiter whose context ended got a slot")
	}
	if q := s.queued(); q != 5 {
		t.Fatalf("%d waiting after one gave up, want 5", q)
	}
	s.release() // one slot: the five go one after another
	wg.Wait()
	if b := s.busy(); b != 1 {
		t.Fatalf("%d slots taken, want the one still held", b)
	}
	s.release()
	for i, got := range order {
		if got != i {
			t.Fatalf("slots went in the order %v, want arrival order", order)
		}
	}
	if b, q := s.busy(), s.queued(); b != 0 || q != 0 {
		t.Fatalf("%d slots taken and %d waiting at the end", b, q)
	}
}

// TestResumeSlotsGrantedAsCancelled: a slot granted to a waiter whose
// context ends at the same moment is passed on, not lost.
func TestResumeSlotsGrantedAsCancelled(t *testing.T) {
	for range 200 {
		s := newResumeSlots(1)
		s.acquire(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan bool)
		go func() { done <- s.acquire(ctx) }()
		waitQueued(t, s, 1)
		go cancel()
		s.release()
		if <-done {
			s.release()
		}
		if b, q := s.busy(), s.queued(); b != 0 || q != 0 {
			t.Fatalf("%d slots taken and %d waiting, want none", b, q)
		}
	}
}

// waitQueued waits until n wait for a slot.
func waitQueued(t *testing.T, s *resumeSlots, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d waiters queued", s.queued(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// queued is how many wait for a slot (for the tests).
func (s *resumeSlots) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters)
}

// busy is how many slots are taken.
func (s *resumeSlots) busy() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size - s.free
}
