package session

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// parallel3 is a Parallel that really runs on three goroutines, so that
// the race detector sees any state the batch calls share.
func parallel3(n int, f func(i int)) {
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := w; i < n; i += 3 {
				f(i)
			}
		})
	}
	wg.Wait()
}

// TestBatchCalls runs an established datagram pair through SealPackets
// and ReceiveDatagrams only, with epoch updates in both directions mixed
// into the data batches, shuffled, with duplicates: every packet must be
// delivered exactly once, and the epochs must move on.
func TestBatchCalls(t *testing.T) {
	for _, id := range testSuites {
		t.Run(fmt.Sprintf("%#04x", uint16(id)), func(t *testing.T) {
			i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
			settle(t, i, r, t0)
			rng := rand.New(rand.NewPCG(uint64(id), 1))
			now := t0
			sent, got := map[string]bool{}, map[string]int{}
			startEpoch := i.Epoch()
			for round := range 24 {
				now = now.Add(10 * time.Millisecond)
				switch round % 4 {
				case 1:
					mustUpdateNow(t, i, now)
				case 3:
					mustUpdateNow(t, r, now)
				}
				n := 1 + rng.IntN(64)
				ips, dsts, out := make([][]byte, n), make([][]byte, n), make([][]byte, n)
				for k := range ips {
					ips[k] = fmt.Appendf(nil, "packet %d/%d", round, k)
					sent[string(ips[k])] = true
				}
				if err := i.SealPackets(now, out, dsts, ips, parallel3); err != nil {
					t.Fatal(err)
				}
				ds := append(out, i.Outgoing()...)
				for range rng.IntN(8) {
					ds = append(ds, bytes.Clone(ds[rng.IntN(len(ds))]))
				}
				rng.Shuffle(len(ds), func(a, b int) { ds[a], ds[b] = ds[b], ds[a] })
				res := make([]Received, len(ds))
				if err := r.ReceiveDatagrams(now, ds, res, parallel3); err != nil {
					t.Fatal(err)
				}
				for k, rc := range res {
					if rc.Err != nil && !errors.Is(rc.Err, ErrDropped) {
						t.Fatalf("datagram %d: %v", k, rc.Err)
					}
					if rc.Data {
						got[string(rc.Packet)]++
					}
				}
				// The answers go back the same way; then whatever the
				// updates still need.
				back := r.Outgoing()
				if err := i.ReceiveDatagrams(now, back, make([]Received, len(back)), parallel3); err != nil {
					t.Fatal(err)
				}
				settle(t, i, r, now)
			}
			for p := range sent {
				if got[p] != 1 {
					t.Errorf("%q delivered %d times", p, got[p])
				}
			}
			for p := range got {
				if !sent[p] {
					t.Errorf("%q delivered but never sent", p)
				}
			}
			if i.Epoch() != r.Epoch() || i.Epoch() < startEpoch+10 {
				t.Fatalf("epochs %d and %d after 12 updates from %d", i.Epoch(), r.Epoch(), startEpoch)
			}
		})
	}
}

func mustUpdateNow(t *testing.T, s *Session, now time.Time) {
	t.Helper()
	if err := s.Update(now); err != nil && !errors.Is(err, ErrUpdatePending) {
		t.Fatal(err)
	}
}

// TestBatchTooLargeAndClosed: an oversized packet is skipped, not fatal,
// and a batch that contains the peer's Close stops there.
func TestBatchTooLargeAndClosed(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	ips := [][]byte{[]byte("small"), make([]byte, 20000), []byte("after")}
	out := make([][]byte, 3)
	if err := i.SealPackets(t0, out, make([][]byte, 3), ips, nil); err != nil {
		t.Fatal(err)
	}
	if out[0] == nil || out[1] != nil || out[2] == nil {
		t.Fatalf("sealed %v %v %v, want the middle one skipped", out[0] != nil, out[1] != nil, out[2] != nil)
	}
	i.Close(t0)
	ds := [][]byte{out[0]}
	ds = append(ds, i.Outgoing()...)
	ds = append(ds, out[2])
	res := make([]Received, len(ds))
	if err := r.ReceiveDatagrams(t0, ds, res, nil); err != nil {
		t.Fatal(err)
	}
	if !res[0].Data || string(res[0].Packet) != "small" {
		t.Fatalf("first datagram: %+v", res[0])
	}
	if last := res[len(res)-1]; last.Data || !errors.Is(last.Err, ErrDropped) {
		t.Fatalf("datagram after Close: %+v", last)
	}
	if r.Established() {
		t.Fatal("still established after the peer's Close")
	}
}

// TestBatchAllocations: sealing and opening a batch in place allocates
// nothing, per packet or per batch.
func TestBatchAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (sync.Pool drops at random); the run without -race checks them")
	}
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	const n, size = 64, 1400
	head, over := PacketHeadroom(Datagram), PacketOverhead(Datagram)
	bufs := make([][]byte, n)
	for k := range bufs {
		bufs[k] = make([]byte, head+size+over)
	}
	out, dsts, ips := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	res := make([]Received, n)
	seal := func() {
		for k, b := range bufs {
			dsts[k], ips[k] = b[:0], b[head:head+size]
		}
		if err := i.SealPackets(t0, out, dsts, ips, nil); err != nil {
			t.Fatal(err)
		}
	}
	open := func() {
		if err := r.ReceiveDatagrams(t0, out, res, nil); err != nil {
			t.Fatal(err)
		}
		for k := range res {
			if !res[k].Data || len(res[k].Packet) != size {
				t.Fatalf("datagram %d: %+v", k, res[k].Err)
			}
		}
	}
	a := testing.AllocsPerRun(50, func() { seal(); open() })
	t.Logf("%.1f allocations per sealed and opened batch of %d", a, n)
	if a > 0 {
		t.Errorf("SealPackets and ReceiveDatagrams of %d packets: %.1f allocations", n, a)
	}
}
