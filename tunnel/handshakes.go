package tunnel

import (
	"sync/atomic"
	"time"

	"github.com/current-vpn/current/session"
)

// Handshake outcomes and the handshake duration histogram, for the
// metrics. The owner fills them when a session establishes or is dropped
// before it did: never on the data path.

// HandshakeBuckets are the upper bounds, in seconds, of the handshake
// duration histogram: from a LAN round trip to a lossy mobile link that
// needs retransmissions (the UDP handshake timeout is seconds).
var HandshakeBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// durationHistogram counts durations into HandshakeBuckets; the last
// count is the +Inf bucket. Owners of many peers write it concurrently.
type durationHistogram struct {
	counts   [13]atomic.Uint64 // len(HandshakeBuckets)+1
	sumNanos atomic.Uint64
}

func (h *durationHistogram) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(HandshakeBuckets) && d.Seconds() > HandshakeBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNanos.Add(uint64(d))
}

// Histogram is a snapshot of a duration histogram in the Prometheus
// shape: Counts[i] is the number of durations of at most Bounds[i]
// seconds (cumulative), Count all of them, Sum their total in seconds.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

func (h *durationHistogram) snapshot() Histogram {
	s := Histogram{Bounds: HandshakeBuckets, Counts: make([]uint64, len(HandshakeBuckets))}
	for i := range h.counts {
		s.Count += h.counts[i].Load()
		if i < len(s.Counts) {
			s.Counts[i] = s.Count
		}
	}
	s.Sum = time.Duration(h.sumNanos.Load()).Seconds()
	return s
}

// HandshakeDurations returns the histogram of the time from a session's
// start to its establishment, over every peer since the device started.
// A responder that waits with restored state for the peer to resume is
// not timed: its wait is the peer's absence, not a handshake.
func (d *Device) HandshakeDurations() Histogram { return d.stats.handshakeTimes.snapshot() }

// handshakeCounters count a peer's handshakes and resumptions by outcome.
type handshakeCounters struct {
	established, timedOut, failed atomic.Uint64
	resumed, resumeFailed         atomic.Uint64
}

// HandshakeOutcomes is a snapshot of handshakeCounters. Established
// counts full handshakes; a resumption that succeeded counts only in
// Resumed. A resumption attempt that did not resume (rejected, timed out,
// or answered by a full handshake) counts in ResumeFailed, and its
// session's end in the handshake outcomes as well.
type HandshakeOutcomes struct {
	Established, TimedOut, Failed uint64
	Resumed, ResumeFailed         uint64
}

func (c *handshakeCounters) snapshot() HandshakeOutcomes {
	return HandshakeOutcomes{
		Established:  c.established.Load(),
		TimedOut:     c.timedOut.Load(),
		Failed:       c.failed.Load(),
		Resumed:      c.resumed.Load(),
		ResumeFailed: c.resumeFailed.Load(),
	}
}

// handshakeAttempt is the owner's record of the session that has not
// established yet.
type handshakeAttempt struct {
	sess  *session.Session
	start time.Time
	// resuming: started from saved state; untimed: not a handshake we
	// can time (a resuming responder waiting for the peer).
	resuming, untimed bool
}

// beginHandshake starts timing s, the peer's new current session, begun
// at start (a promoted candidate establishes after it becomes current).
func (p *peer) beginHandshake(s *session.Session, start time.Time) {
	p.attempt = handshakeAttempt{sess: s, start: start}
}

// markResumption records that the current attempt resumes saved state;
// a responder's wait for the peer is not timed.
func (p *peer) markResumption(initiator bool) {
	p.attempt.resuming = true
	p.attempt.untimed = !initiator
}

// handshakeEstablished counts the current session's establishment.
func (p *peer) handshakeEstablished(now time.Time) {
	a := p.attempt
	if a.sess != p.sess || a.sess == nil {
		return
	}
	p.attempt = handshakeAttempt{}
	hs := &p.stats.hs
	if p.sess.Resumed() {
		hs.resumed.Add(1)
	} else {
		hs.established.Add(1)
		if a.resuming {
			hs.resumeFailed.Add(1)
		}
	}
	if !a.untimed {
		p.dev.stats.handshakeTimes.observe(now.Sub(a.start))
	}
}

// handshakeAbandoned counts the end of a session that never established:
// a timeout or a failure. A connection replaced by a better one, or
// dropped at shutdown, is neither.
func (p *peer) handshakeAbandoned(reason error) {
	a := p.attempt
	if a.sess != p.sess || a.sess == nil || a.sess.Established() {
		return
	}
	p.attempt = handshakeAttempt{}
	if reason == errShutdown || reason == errReplaced {
		return
	}
	hs := &p.stats.hs
	if reason == errTimeout {
		hs.timedOut.Add(1)
	} else {
		hs.failed.Add(1)
	}
	if a.resuming {
		hs.resumeFailed.Add(1)
	}
}
