package record

import (
	"crypto"
	"math/rand/v2"
	"testing"
)

func accept(w *replayWindow, seq uint64) error {
	if err := w.check(seq); err != nil {
		return err
	}
	w.mark(seq)
	return nil
}

func TestReplayWindowSize(t *testing.T) {
	if ReplayWindow < 8192 {
		t.Fatalf("window %d below the required 8192", ReplayWindow)
	}
}

func TestReplayWindowBasics(t *testing.T) {
	var w replayWindow
	for _, c := range []struct {
		seq  uint64
		want error
	}{
		{0, nil},
		{0, ErrReplay},
		{5, nil},
		{3, nil}, // reordered inside the window
		{3, ErrReplay},
		{5, ErrReplay},
		{1 << 40, nil}, // far future: the window jumps
		{5, ErrTooOld}, // far past
		{1<<40 - ReplayWindow + 1, nil},
		{1<<40 - ReplayWindow, ErrTooOld}, // just left of the edge
		{1<<40 - ReplayWindow + 1, ErrReplay},
		{1 << 40, ErrReplay},
	} {
		if err := accept(&w, c.seq); err != c.want {
			t.Fatalf("seq %d: %v, want %v", c.seq, err, c.want)
		}
	}
}

// Every sequence number in a window-sized span arrives once in random order,
// then again: all accepted the first time, all rejected the second.
func TestReplayWindowShuffled(t *testing.T) {
	var w replayWindow
	rng := rand.New(rand.NewPCG(1, 2))
	base := uint64(1000)
	seqs := make([]uint64, ReplayWindow)
	for i := range seqs {
		seqs[i] = base + uint64(i)
	}
	rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
	for _, s := range seqs {
		if err := accept(&w, s); err != nil {
			t.Fatalf("seq %d: %v", s, err)
		}
	}
	for _, s := range seqs {
		if err := accept(&w, s); err == nil {
			t.Fatalf("seq %d accepted twice", s)
		}
	}
}

// The bitmap against a plain set, under random traffic with jumps.
func TestReplayWindowModel(t *testing.T) {
	var w replayWindow
	seen := map[uint64]bool{}
	var top uint64
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		var seq uint64
		switch rng.IntN(10) {
		case 0:
			seq = top + uint64(rng.IntN(3*ReplayWindow)) // jump ahead
		case 1:
			seq = top - min(top, uint64(rng.IntN(2*ReplayWindow)))
		default:
			seq = top + uint64(rng.IntN(64)) - min(top, 40)
		}
		var want error
		switch {
		case seq+ReplayWindow <= top:
			want = ErrTooOld
		case seen[seq]:
			want = ErrReplay
		}
		if err := accept(&w, seq); err != want {
			t.Fatalf("step %d seq %d top %d: %v, want %v", i, seq, top, err, want)
		}
		if want == nil {
			seen[seq] = true
			top = max(top, seq)
		}
	}
}

// The ring costs memory only while an epoch opens records: none before the
// first record authenticates, and none once the epoch is retired (the
// previous epoch after its grace period), which is what an idle peer of a
// hub holds.
func TestReplayRingLifetime(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	snd, rcv := datagramPair(t, s, 1, 1, Config{GraceRecords: 1})
	for i := range rcv.slots {
		if rcv.slots[i].window.bits != nil {
			t.Fatalf("slot %d has a ring before any record", i)
		}
	}
	mustOpen(t, rcv, seal(t, snd, []byte("a")), 0, []byte("a"))
	if rcv.slots[rcv.cur].window.bits == nil {
		t.Fatal("no ring after the first record")
	}
	old := rcv.cur
	advance(t, s, snd, rcv, 2)
	if rcv.slots[old].window.bits == nil {
		t.Fatal("the previous epoch lost its ring during the grace period")
	}
	mustOpen(t, rcv, seal(t, snd, []byte("b")), 0, []byte("b"))
	if _, _, _, ok := rcv.Epochs(); ok {
		t.Fatal("previous epoch kept after GraceRecords")
	}
	if rcv.slots[old].window.bits != nil {
		t.Fatal("the retired epoch still holds its ring")
	}
	// Zero value semantics are unchanged: 0 is fresh until marked.
	var w replayWindow
	if err := w.check(0); err != nil {
		t.Fatalf("check(0) on an empty window: %v", err)
	}
	w.reset()
	if err := accept(&w, 0); err != nil {
		t.Fatal(err)
	}
	if err := accept(&w, 0); err != ErrReplay {
		t.Fatalf("replay of 0: %v", err)
	}
}
