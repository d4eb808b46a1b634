package ctl

import (
	"log/slog"
	"sync"
	"time"
)

// failureLogInterval is how often one kind of failure may be logged. A
// script retrying a refused request in a loop, or a client of the wrong
// user reconnecting, would otherwise write a WARN line per attempt.
// Successful changes are never held back: each one changed the tunnel, and
// the log is their record.
var failureLogInterval = 10 * time.Second

// failKind is what makes two failures the same for the log: the same line,
// operation and error code from the same user. Messages differ (a name, a
// prefix) and are not part of it, or a loop varying its input would never
// be summarised. Only root and the daemon's user get past authorization,
// and operations and codes are fixed sets, so there are few kinds.
// Refused connections have uid -1: their uid is whoever asked, and a map
// keyed by it would grow with every user on the host.
type failKind struct {
	msg  string
	op   string
	code Code
	uid  int64
}

// failWindow is one kind's current interval.
type failWindow struct {
	since      time.Time // when the line that opened the interval was logged
	end        time.Time
	suppressed int
	lastErr    string
	timer      *time.Timer // set while suppressed > 0
}

// failLog decides which failures are logged: the first of a kind at once,
// then none until the interval ends, when one line reports how many were
// held back and the last one's error. That line opens the next interval,
// so a steady stream of failures costs one line per kind per interval,
// and a burst still gets its count within an interval of its end.
type failLog struct {
	log      *slog.Logger
	interval time.Duration

	mu     sync.Mutex
	closed bool
	kinds  map[failKind]*failWindow
}

func newFailLog(log *slog.Logger, interval time.Duration) *failLog {
	return &failLog{log: log, interval: interval, kinds: map[failKind]*failWindow{}}
}

// allow reports whether a failure of kind k is to be logged now. If not,
// it is counted, with err for the summary.
func (f *failLog) allow(k failKind, err error) bool {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return true
	}
	w := f.kinds[k]
	if w == nil || !now.Before(w.end) {
		// The interval is over and held nothing back (else its timer
		// would have reported and reopened it): log, and start one.
		f.kinds[k] = &failWindow{since: now, end: now.Add(f.interval)}
		return true
	}
	w.suppressed++
	w.lastErr = logError(err)
	if w.timer == nil {
		w.timer = time.AfterFunc(w.end.Sub(now), func() { f.report(k) })
	}
	return false
}

// report logs what kind k held back, at the end of its interval.
func (f *failLog) report(k failKind) {
	f.mu.Lock()
	w := f.kinds[k]
	if f.closed || w == nil || w.suppressed == 0 {
		f.mu.Unlock()
		return
	}
	now := time.Now()
	args := summary(k, w)
	f.kinds[k] = &failWindow{since: now, end: now.Add(f.interval)}
	f.mu.Unlock()
	f.log.Warn(k.msg+" (repeated)", args...)
}

// close reports what every kind held back, so that a shutdown loses no
// count, and logs every later failure.
func (f *failLog) close() {
	f.mu.Lock()
	f.closed = true
	var lines [][]any
	var msgs []string
	for k, w := range f.kinds {
		if w.timer != nil {
			w.timer.Stop()
		}
		if w.suppressed > 0 {
			msgs = append(msgs, k.msg+" (repeated)")
			lines = append(lines, summary(k, w))
		}
	}
	f.kinds = nil
	f.mu.Unlock()
	for i, args := range lines {
		f.log.Warn(msgs[i], args...)
	}
}

func summary(k failKind, w *failWindow) []any {
	args := []any{}
	if k.uid >= 0 {
		args = append(args, "uid", k.uid)
	}
	if k.op != "" {
		args = append(args, "op", k.op)
	}
	return append(args, "code", k.code, "count", w.suppressed, "since", w.since, "last_err", w.lastErr)
}
