package tunnel

import (
	"testing"
	"time"
)

// fakeClocks stand for CLOCK_BOOTTIME and Go's monotonic clock: a suspend
// advances only the first.
type fakeClocks struct{ boot, mono time.Duration }

func (f *fakeClocks) run(d time.Duration)     { f.boot += d; f.mono += d }
func (f *fakeClocks) suspend(d time.Duration) { f.boot += d }

func (f *fakeClocks) clock(base time.Time) *suspendClock {
	return &suspendClock{base: base, elapsed: func() time.Duration { return f.boot }, sinceBase: func() time.Duration { return f.mono }}
}

func TestSuspendClock(t *testing.T) {
	base := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	var f fakeClocks
	c := f.clock(base)

	// A rekey deadline two minutes out, taken before the sleep.
	deadline := c.now().Add(2 * time.Minute)
	f.run(30 * time.Second)
	if got := c.sleptFor(); got != 0 {
		t.Fatalf("awake: slept %v", got)
	}
	if !c.now().Before(deadline) {
		t.Fatal("deadline passed after 30 s")
	}

	// Two hours of suspend: the deadline is past on wake, and the wall
	// reading is the real time.
	f.suspend(2 * time.Hour)
	if got := c.sleptFor(); got != 2*time.Hour {
		t.Fatalf("after a 2 h suspend: slept %v", got)
	}
	if !c.now().After(deadline) {
		t.Fatalf("on wake, now %v is not after the deadline %v", c.now(), deadline)
	}
	if want := base.Add(2*time.Hour + 30*time.Second); !c.now().Equal(want) {
		t.Fatalf("on wake, now = %v, want %v", c.now(), want)
	}
	// The same sleep is reported once.
	f.run(time.Second)
	if got := c.sleptFor(); got != 0 {
		t.Fatalf("second look after the wake: slept %v", got)
	}

	// The clock never reads the suspend-counting one itself: between the
	// watcher's looks it runs with the monotonic clock, so it never goes
	// back.
	before := c.now()
	f.suspend(time.Hour)
	if !c.now().Equal(before) {
		t.Fatalf("the clock moved with no monotonic time and no look: %v -> %v", before, c.now())
	}
	f.run(time.Second)
	if got, want := c.now(), before.Add(time.Second); !got.Equal(want) {
		t.Fatalf("a second later, before the watcher looked: %v, want %v", got, want)
	}
	if got := c.sleptFor(); got != time.Hour {
		t.Fatalf("the hour's suspend: slept %v", got)
	}
	if got, want := c.now(), before.Add(time.Hour+time.Second); !got.Equal(want) {
		t.Fatalf("after the look: %v, want %v", got, want)
	}

	// Scheduling noise between the two readings is no suspend; a second
	// sleep is measured from the end of the first.
	f.suspend(suspendThreshold / 2)
	if got := c.sleptFor(); got != 0 {
		t.Fatalf("half a threshold counted as a sleep of %v", got)
	}
	f.suspend(10 * time.Minute)
	if got := c.sleptFor(); got != 10*time.Minute+suspendThreshold/2 {
		t.Fatalf("second sleep: %v", got)
	}
}

// TestBootTimeAdvances: the real CLOCK_BOOTTIME reading moves with the
// monotonic clock while the machine is awake.
func TestBootTimeAdvances(t *testing.T) {
	b0, m0 := bootTime(), monoTime()
	time.Sleep(20 * time.Millisecond)
	db, dm := bootTime()-b0, monoTime()-m0
	if db < 20*time.Millisecond || db-dm > suspendThreshold || dm-db > suspendThreshold {
		t.Fatalf("boot clock advanced %v while the monotonic one advanced %v", db, dm)
	}
}
