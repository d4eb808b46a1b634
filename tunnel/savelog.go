package tunnel

import "time"

// saveReportInterval is the least time between two log lines about a
// peer's state saves, after the first. A read-only or full state_dir fails
// at every epoch change, which a short rekey interval makes several per
// second.
const saveReportInterval = time.Minute

// saveLog decides which of a peer's state-save outcomes are logged: the
// first failure at once, and the first success after it; after that at
// most one line per saveReportInterval, which counts the failures held
// back since the previous line, so that none goes unreported. A save at
// shutdown is always reported if it fails or if failures are held back:
// it is what a restart resumes from, and the last chance to report.
//
// The state saver's writers use it (saver.go), one at a time for a peer,
// so it needs no lock of its own.
type saveLog struct {
	lastReport time.Time // of the last line logged; zero before any
	warned     bool      // a failure was logged and no success since
	held       int       // failures since lastReport not logged
}

func (s *saveLog) quiet(now time.Time) bool {
	return !s.lastReport.IsZero() && now.Sub(s.lastReport) < saveReportInterval
}

// failed records a failure and reports whether to log it, with the
// failures held back since the previous line (logged at since).
func (s *saveLog) failed(now time.Time, final bool) (log bool, held int, since time.Time) {
	if !final && s.quiet(now) {
		s.held++
		return false, 0, time.Time{}
	}
	held, since = s.held, s.lastReport
	s.lastReport, s.warned, s.held = now, true, 0
	return true, held, since
}

// saved records a success and reports whether to log that saving works,
// with the failures held back since the previous line (logged at since).
func (s *saveLog) saved(now time.Time, final bool) (log bool, held int, since time.Time) {
	if !s.warned && (s.held == 0 || !final && s.quiet(now)) {
		return false, 0, time.Time{}
	}
	held, since = s.held, s.lastReport
	s.lastReport, s.warned, s.held = now, false, 0
	return true, held, since
}
