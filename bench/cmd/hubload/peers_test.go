//go:build linux

package main

import (
	"testing"
	"time"
)

// The peers' first updates of a phase: spread evenly over the interval
// (independent timers), or, with updateSync, all within ±10 % of it.
func TestFirstUpdate(t *testing.T) {
	const every = 5 * time.Second
	var f fleet
	var deciles [10]int
	for range 10000 {
		d := f.firstUpdate(every)
		if d < 0 || d >= every {
			t.Fatalf("first update after %v, outside [0, %v)", d, every)
		}
		deciles[d*10/every]++
	}
	// 1,000 expected in each; 800 is more than six standard deviations
	// away.
	for i, n := range deciles {
		if n < 800 || n > 1200 {
			t.Errorf("decile %d holds %d of 10000 first updates: %v", i, n, deciles)
		}
	}
	f.updateSync.Store(true)
	for range 1000 {
		if d := f.firstUpdate(every); d < every*9/10 || d > every*11/10 {
			t.Fatalf("synchronized first update after %v, outside 5 s ± 10 %%", d)
		}
	}
}

func TestPace(t *testing.T) {
	for _, c := range []struct {
		due, sent, slack float64
		owed, skipped    int
	}{
		{100.5, 100, 20, 0, 0}, // on schedule
		{115, 100, 20, 15, 0},  // behind within the slack: all sent
		{1100, 100, 20, 20, 980},
		{99, 100, 20, -1, 0}, // ahead: nothing owed
	} {
		owed, skipped := pace(c.due, c.sent, c.slack)
		if owed != c.owed || skipped != c.skipped {
			t.Errorf("pace(%v, %v, %v) = %d, %d; want %d, %d", c.due, c.sent, c.slack, owed, skipped, c.owed, c.skipped)
		}
	}
}
