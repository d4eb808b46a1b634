//go:build linux

package main

import (
	"errors"
	"runtime"
	"time"

	"github.com/current-vpn/current/session"
)

// The rescue of a silent session, as currentd's peer does it
// (tunnel/liveness.go): make-before-break. A peer whose traffic got no
// authenticated answer for silentAfter starts a candidate next to its
// session, here a sealed resumption of the session's group (a real peer
// that kept its state resumes; currentd itself handshakes afresh, see
// bench/README.md). The old session goes on carrying whatever still gets
// through; the candidate replaces it once established, or is dropped
// after candidateLifetime, and only then may the next rescue start. So a
// hub that is merely slow gets one extra resumption per peer and
// lifetime, not one per second of slowness.

// candidateLifetime is how long a rescue may take: the session's GiveUp
// (it retransmits the request until then). currentd's rescue lives for
// its HandshakeTimeout (10 s) and then starts another; for a resumption
// from the same group that is the same request again, and building it
// anew every 10 s for 10,000 peers while the hub is down would make the
// tool's CPU, not the hub's, the figure.
const candidateLifetime = session.DefaultGiveUp

// A rescue builds a resumption commit and seals it (about 2 ms with
// X-Wing): the timer goroutine, which runs every peer's pings and
// retransmissions in one loop, must not build 10,000 of them in a row,
// or every peer's next ping waits for the last rescue (all pongs of a
// restart then came at once, seconds late, whenever the hub answered).
// So it only queues them, and one rescuer per core builds them, as a real
// fleet builds each on its own machine at the same time.

// startRescuers starts the rescuer goroutines.
func (f *fleet) startRescuers() {
	for range max(runtime.GOMAXPROCS(0), 1) {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				select {
				case <-f.quit:
					return
				case p := <-f.rescueQ:
					p.mu.Lock()
					p.rescueQueued = false
					f.rescueLocked(p, time.Now())
					p.mu.Unlock()
				}
			}
		}()
	}
}

// queueRescueLocked hands p to the rescuers, unless a rescue is under
// way or queued. The silence is measured afresh either way.
func (f *fleet) queueRescueLocked(p *peer, now time.Time) {
	p.sentAt = now
	if p.cand != nil || p.rescueQueued {
		return
	}
	p.rescueQueued = true
	// The queue holds every peer, and a peer is in it at most once.
	f.rescueQ <- p
}

// rescueLocked starts the candidate, unless one is under way.
func (f *fleet) rescueLocked(p *peer, now time.Time) {
	if p.cand != nil || p.s == nil || !p.awaiting {
		return
	}
	p.sentAt = now
	cfg := f.sessionConfig(p)
	st, err := p.s.State()
	if err != nil {
		p.lastErr = err
		return
	}
	// A fresh local index tells the candidate's datagrams from the old
	// session's; the hub learns it from the request.
	cfg.Resume, cfg.PeerIndex = st, p.s.PeerIndex()
	cfg.HelloFloor = p.s.HelloTime()
	c, err := session.New(cfg)
	if err == nil {
		err = c.Start(now)
	}
	if err != nil {
		p.lastErr = err
		return
	}
	p.cand, p.candEnd = c, now.Add(candidateLifetime)
	p.rescues++
	if mark := f.mark.Load(); mark != 0 && p.upAt.UnixNano() > f.markWall.Load() && p.firstPong.Load() <= mark {
		p.rescuesAfterUp++
	}
	flushSession(p, c)
}

// toCandidateLocked hands d to the candidate if it is addressed to it.
func (f *fleet) toCandidateLocked(p *peer, now time.Time, d []byte) bool {
	if p.cand == nil {
		return false
	}
	info, ok := session.ParseDatagram(d)
	if !ok || info.Receiver != p.cand.LocalIndex() {
		return false
	}
	c := p.cand
	pkt, data, err := c.ReceiveDatagram(now, d)
	if err != nil && !errors.Is(err, session.ErrDropped) {
		p.lastErr = err
	}
	f.candidateEventsLocked(p)
	if data && err == nil && p.s == c {
		// Established by this very datagram's predecessor: the
		// candidate is the session now, and this is its traffic.
		f.heardLocked(p, pkt)
	}
	return true
}

// candidateTimersLocked runs the candidate's retransmissions and ends it
// after its lifetime.
func (f *fleet) candidateTimersLocked(p *peer, now time.Time) {
	if p.cand == nil {
		return
	}
	if !now.Before(p.candEnd) {
		p.cand = nil
		return
	}
	if t := p.cand.NextTimeout(); !t.IsZero() && !now.Before(t) {
		f.timerCalls.Add(1)
		if err := p.cand.HandleTimeout(now); err != nil {
			p.lastErr = err
		}
	}
	f.candidateEventsLocked(p)
}

// candidateEventsLocked promotes an established candidate.
func (f *fleet) candidateEventsLocked(p *peer) {
	c := p.cand
	for _, ev := range c.Events() {
		switch ev.(type) {
		case session.Established:
			if c.Resumed() {
				p.resumptions++
			} else {
				p.handshakes++
			}
			f.noteHelloKey(c.PeerHelloKey())
			p.s, p.cand = c, nil
			p.awaiting = false
			p.epochs++
			// The first ping goes at once.
			p.pingAt = time.Now()
			p.upAt = p.pingAt
		case session.Closed:
			p.cand = nil
			p.failures++
		}
	}
	flushSession(p, c)
}

// flushSession sends what s queued, on p's socket.
func flushSession(p *peer, s *session.Session) {
	for _, b := range s.Outgoing() {
		_, _ = p.c.Write(b)
	}
}
