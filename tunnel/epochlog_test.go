package tunnel

import (
	"testing"
	"time"
)

func TestEpochLog(t *testing.T) {
	var l epochLog
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if log, held := l.changed(t0); !log || held != 0 {
		t.Fatalf("first change: log %v held %d, want logged with nothing held", log, held)
	}
	// A 100 ms rekey for a minute: no further line until the interval ends.
	for i := 1; i < 600; i++ {
		if log, _ := l.changed(t0.Add(time.Duration(i) * 100 * time.Millisecond)); log {
			t.Fatalf("change %d, %v after the first, logged", i, time.Duration(i)*100*time.Millisecond)
		}
	}
	if log, held := l.changed(t0.Add(epochReportInterval)); !log || held != 599 {
		t.Fatalf("after the interval: log %v held %d, want logged with 599 held", log, held)
	}
	// A quiet link logs each change again.
	if log, held := l.changed(t0.Add(3 * epochReportInterval)); !log || held != 0 {
		t.Fatalf("after a quiet interval: log %v held %d", log, held)
	}
}
