package tunnel

import "time"

// epochReportInterval is the least time between two INFO lines about a
// peer's epoch changes. A small rekey_bytes on a fast link changes epochs
// many times a second; each change is still logged at DEBUG, and the
// current epoch and the time of the last change are in the metrics
// (current_peer_epoch, current_peer_last_epoch_change_seconds).
const epochReportInterval = time.Minute

// epochLog decides which epoch changes get an INFO line: the first, then
// at most one per epochReportInterval, which says how many went unlogged
// since the previous one. It is owner state (in peerTimers).
type epochLog struct {
	lastReport time.Time
	held       int
}

// changed records an epoch change and reports whether to log it at INFO,
// with the changes held back since the previous line.
func (l *epochLog) changed(now time.Time) (log bool, held int) {
	if !l.lastReport.IsZero() && now.Sub(l.lastReport) < epochReportInterval {
		l.held++
		return false, 0
	}
	held = l.held
	l.lastReport, l.held = now, 0
	return true, held
}
