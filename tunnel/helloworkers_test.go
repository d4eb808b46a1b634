package tunnel

import (
	"net/netip"
	"testing"
	"time"
)

// TestHelloQueueBounded: no more new sealed hellos wait for the workers
// than the queue holds, and none of them has cost the ceiling yet; one
// that finds the queue full is the reader's to open, and is opened.
func TestHelloQueueBounded(t *testing.T) {
	h := newStormHub(t)
	d, g := h.d, h.d.guard
	// A queue nobody reads: the workers read the device's own.
	const room = 3
	q := make(helloQueue, room)
	var overflow []helloJob
	for i := range room + 2 {
		env := h.request()
		v, open := d.screenHello(h.now, hostN(i), env, 1, d.cfg.MaxDatagramSize)
		if !open {
			t.Fatalf("hello %d: not left to the workers: %+v", i, v)
		}
		j := helloJob{src: hostN(i), env: env, raws: [][]byte{env}, sender: 1, hash: v.hash}
		if !q.offer(j) {
			overflow = append(overflow, j)
		}
	}
	if len(q) != room || len(overflow) != 2 {
		t.Fatalf("%d hellos queued and %d over, want %d and 2", len(q), len(overflow), room)
	}
	if left := tokens(g.global, h.now); left != g.global.burst {
		t.Fatalf("queued hellos took the ceiling's tokens: %v of %v left", left, g.global.burst)
	}
	for _, j := range overflow {
		d.openQueued(j)
		if d.opened.peerOf(j.hash) == nil {
			t.Fatal("a hello over the queue was not opened")
		}
	}
	if st := d.GuardStats(); st.Refused["hello_replay"] != 0 || st.Refused["bad_hello"] != 0 {
		t.Fatalf("hellos over the queue refused: %v", st.Refused)
	}
}

// TestQueuedCopyFindsItsRoute: a retransmission that reached the queue
// behind its original (no route yet when the reader screened it) is
// routed as a copy once the original is open, not opened again and
// refused as a replay; and it does not pay its host's token twice.
func TestQueuedCopyFindsItsRoute(t *testing.T) {
	h := newStormHub(t)
	d, g := h.d, h.d.guard
	q := make(helloQueue, 4)
	env := h.request()
	src := hostN(7)
	for range 2 {
		v, open := d.screenHello(h.now, src, env, 1, d.cfg.MaxDatagramSize)
		if !open {
			t.Fatalf("a hello not opened yet was not left to the workers: %+v", v)
		}
		if !q.offer(helloJob{src: src, env: env, raws: [][]byte{env}, sender: 1, hash: v.hash}) {
			t.Fatal("queue full")
		}
	}
	first, second := <-q, <-q
	hostBefore := hostTokens(g.hosts, h.now, hostOf(src.Addr()))
	d.openQueued(first)
	d.openQueued(second)
	if left := tokens(g.resumes, h.now); left != g.resumes.burst-1 {
		t.Fatalf("%v resumption tokens taken, want 1 (one open)", g.resumes.burst-left)
	}
	if left := tokens(g.global, h.now); left != g.global.burst {
		t.Fatalf("the ceiling kept %v tokens", g.global.burst-left)
	}
	if after := hostTokens(g.hosts, h.now, hostOf(src.Addr())); after != hostBefore {
		t.Fatalf("the workers took host tokens: %v, then %v", hostBefore, after)
	}
	if st := d.GuardStats(); st.Refused["hello_replay"] != 0 || st.Refused["bad_hello"] != 0 || st.Refused["rate_host"] != 0 {
		t.Fatalf("the queued copy was refused: %v", st.Refused)
	}
	if d.opened.peerOf(first.hash) == nil {
		t.Fatal("no route for the opened hello")
	}
}

// hostTokens is what host has left in l at now.
func hostTokens(l *hostLimiter, now time.Time, host netip.Prefix) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.hosts[host]
	if b == nil {
		return l.burst
	}
	b.refill(now, l.rate, l.burst)
	return b.tokens
}
