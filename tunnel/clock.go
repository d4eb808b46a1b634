package tunnel

import (
	"sync/atomic"
	"time"
)

// The owners' clock. Session ageing (rekey intervals, grace periods,
// handshake deadlines, liveness) must count the time a laptop slept:
// Go's monotonic clock stops while Linux is suspended, so a deadline that
// fell due during a sleep would fire only as long after the wake as it
// had left before the sleep. suspendClock reads a clock that counts
// suspend (CLOCK_BOOTTIME on Linux, clock_linux.go) instead, and notices
// when that clock ran ahead of the monotonic one: the watcher
// (watchSuspend) then wakes every owner, whose timers are recomputed from
// the suspend-counting clock and fire at once.
//
// Times it returns are base plus the elapsed monotonic time plus the
// suspend time found so far, so they compare and subtract like any
// time.Time of this process, and their wall reading stays right across a
// sleep (time.Now's would too, but its monotonic reading, which Sub and
// Before use, would not). Reading CLOCK_BOOTTIME is a system call (x/sys
// has no vDSO path for it), and the owners read the clock for every batch:
// 30,000 system calls per GB. So only the watcher reads it, once a second,
// and the owners add what it found to Go's monotonic clock (vDSO). A wake
// is seen within suspendCheckInterval, when the watcher wakes every owner
// anyway.
type suspendClock struct {
	base time.Time
	// elapsed counts suspend, sinceBase does not; both are durations
	// since base was taken.
	elapsed, sinceBase func() time.Duration
	// slept is how far elapsed was ahead of sinceBase at the last
	// check that found a sleep; only the watcher touches it. suspended
	// is the same for the owners.
	slept     time.Duration
	suspended atomic.Int64
}

// newSuspendClock returns the clock of this machine.
func newSuspendClock() *suspendClock {
	base := time.Now()
	boot0 := bootTime()
	return &suspendClock{
		base:      base,
		elapsed:   func() time.Duration { return bootTime() - boot0 },
		sinceBase: func() time.Duration { return time.Since(base) },
	}
}

func (c *suspendClock) now() time.Time {
	return c.base.Add(c.sinceBase() + time.Duration(c.suspended.Load()))
}

// suspendThreshold is the least lead of the suspend-counting clock over
// the monotonic one that counts as a sleep: the two are read one after
// the other, so they differ by scheduling noise even without one.
const suspendThreshold = time.Second

// sleptFor returns how long the machine was suspended since the last
// call, or 0 if it was not (by at least suspendThreshold).
func (c *suspendClock) sleptFor() time.Duration {
	lead := c.elapsed() - c.sinceBase()
	if d := lead - c.slept; d >= suspendThreshold {
		c.slept = lead
		c.suspended.Store(int64(lead))
		return d
	}
	return 0
}

// suspendCheckInterval is how often watchSuspend compares the clocks: the
// longest a wake can go unnoticed.
const suspendCheckInterval = time.Second

// watchSuspend wakes every owner after the machine was suspended, as an
// underlay change does: a laptop usually wakes on another network, and
// the deadlines that fell due during the sleep fire when the owners
// recompute their timers.
func (d *Device) watchSuspend(c *suspendClock) {
	t := time.NewTicker(suspendCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if slept := c.sleptFor(); slept > 0 {
				d.log.Info("woke from suspend", "slept", slept.Round(time.Second))
				d.UnderlayChanged()
			}
		case <-d.ctx.Done():
			return
		}
	}
}

// processStart anchors monoTime.
var processStart = time.Now()

// monoTime is Go's monotonic clock as a duration since process start.
func monoTime() time.Duration { return time.Since(processStart) }
