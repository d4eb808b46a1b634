package session

import (
	"encoding/binary"
	"io"
	"time"
)

// Timers. A Session has at most five: the retransmission of an unanswered
// control message (datagram mode; it also bounds how long the receiver of
// a commit holds back its send-key switch, update.go), the expiry of
// partly reassembled control messages (datagram mode), the end of the
// previous epoch's grace period (datagram mode), the resumption fallback
// (stream mode; datagram mode uses the retransmission's deadline) and the
// update schedule (both modes). NextTimeout returns the earliest; the
// caller calls HandleTimeout at or after it.

// NextTimeout is when the caller should call HandleTimeout next; the zero
// time means no timer is pending.
func (s *Session) NextTimeout() time.Time {
	if s.phase == phaseClosed || s.phase == phaseIdle {
		return time.Time{}
	}
	var t time.Time
	earliest := func(u time.Time) {
		if !u.IsZero() && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	if r := s.dg.rtx; r != nil {
		earliest(r.next)
		earliest(r.deadline)
	}
	earliest(s.dg.reasm.deadline(s.cfg.ReassemblyTime))
	earliest(s.dg.graceCheck)
	earliest(s.resumeDeadline)
	if s.phase == phaseEstablished && !s.waiting && !s.holding() {
		earliest(s.nextUpdate)
	}
	return t
}

// HandleTimeout fires every timer due at now: it retransmits, gives up
// (closing with ErrTimeout, or falling back from resumption to a fresh
// handshake), expires partial messages and old keys, and starts scheduled
// updates. A returned error is fatal, as for HandleStream.
func (s *Session) HandleTimeout(now time.Time) error {
	s.now = now
	if s.phase == phaseClosed {
		return ErrClosed
	}
	if s.phase == phaseIdle {
		return nil
	}
	return s.fail(s.onTimers())
}

func (s *Session) onTimers() error {
	now := s.now
	if r := s.dg.rtx; r != nil {
		switch {
		case !now.Before(r.deadline) && r.hold:
			s.endHold()
		case !now.Before(r.deadline):
			s.dg.rtx = nil
			if r.resume {
				return s.resumeFallback()
			}
			return ErrTimeout
		case !now.Before(r.next):
			if err := s.emit(r.msg); err != nil {
				return err
			}
			r.interval = min(2*r.interval, s.cfg.RetransmitMax)
			r.next = now.Add(r.interval)
		}
	}
	if d := s.resumeDeadline; !d.IsZero() && !now.Before(d) {
		s.resumeDeadline = time.Time{}
		if s.phase == phaseWaitHello && s.res.active {
			return s.resumeFallback()
		}
	}
	if s.cfg.Transport == Datagram {
		s.dg.reasm.expire(now, s.cfg.ReassemblyTime)
		if !s.dg.graceCheck.IsZero() && !now.Before(s.dg.graceCheck) {
			s.dg.recv.Expire(s.mono())
			s.dg.graceCheck = time.Time{}
			if _, _, _, prev := s.dg.recv.Epochs(); prev {
				s.dg.graceCheck = now.Add(s.cfg.Record.GracePeriod)
			}
		}
	}
	if s.phase == phaseEstablished && !s.waiting && !s.holding() && !s.nextUpdate.IsZero() && !now.Before(s.nextUpdate) {
		return s.sendUpdate()
	}
	return nil
}

// schedule restarts the update policy for a new epoch: the next update is
// due after UpdateInterval scaled by a random factor in [0.9, 1.1), so that
// the two sides rarely start one at the same time.
func (s *Session) schedule() {
	s.epochBytes = 0
	s.epochStart = s.now
	s.armUpdate()
}

// armUpdate sets the update deadline from the start of the epoch, with
// fresh jitter.
func (s *Session) armUpdate() {
	s.nextUpdate = time.Time{}
	if s.cfg.UpdateInterval < 0 {
		return
	}
	var b [8]byte
	u := 0.5
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err == nil {
		u = float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
	}
	s.nextUpdate = s.epochStart.Add(time.Duration(float64(s.cfg.UpdateInterval) * (0.9 + 0.2*u)))
}

// SetUpdatePolicy changes Config.UpdateInterval and Config.UpdateBytes of
// a session, running or not; the values mean what they mean in Config
// (zero is the default, negative disables). The current epoch keeps its
// age and the payload bytes it carried: the next update is due once the
// epoch is interval old (from when it started, with fresh ±10% jitter; at
// the next HandleTimeout if it already is) or has carried bytes. A
// session past the new byte threshold starts its update at once, queued
// in Outgoing, and a returned error is fatal as for HandleStream. While
// our update awaits its EpochKeyUpdate, the new policy applies from the
// epoch that follows. A closed session returns ErrClosed.
func (s *Session) SetUpdatePolicy(now time.Time, interval time.Duration, bytes int64) error {
	if s.phase == phaseClosed {
		return ErrClosed
	}
	if now.After(s.now) {
		s.now = now
	}
	if interval == 0 {
		interval = DefaultUpdateInterval
	}
	if bytes == 0 {
		bytes = DefaultUpdateBytes
	}
	s.cfg.UpdateInterval, s.cfg.UpdateBytes = interval, bytes
	if s.phase != phaseEstablished || s.waiting {
		return nil // schedule, at the next epoch, reads the new values
	}
	s.armUpdate()
	return s.fail(s.checkPolicy())
}

// checkPolicy starts an update once the epoch carried UpdateBytes or the
// record layer asks for new keys.
func (s *Session) checkPolicy() error {
	if s.phase != phaseEstablished || s.waiting {
		return nil
	}
	if (s.cfg.UpdateBytes > 0 && s.epochBytes >= uint64(s.cfg.UpdateBytes)) || s.rekeyNeeded() {
		return s.sendUpdate()
	}
	return nil
}

func (s *Session) rekeyNeeded() bool {
	if s.cfg.Transport == Stream {
		return s.writer.RekeyNeeded()
	}
	return s.dg.send.RekeyNeeded() || s.dg.recv.RekeyNeeded()
}
