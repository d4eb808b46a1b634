//go:build linux

package main

import (
	"math"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/current-vpn/current/session"
)

// The load: sender goroutines, each owning every senders-th peer, send
// probes round-robin over their peers, through the tunnel (sealed into
// the peer's session, to the sink's address behind the hub's TUN) or on
// the plain path (the same probe as a UDP datagram straight to the sink
// over the link between the namespaces, for the latency baseline).
// Round-robin at the sender makes the offered load equal per peer, so the
// per-peer delivered rates measure the hub's fairness.

// probeIPLen is the size of a probe's IP packet: with a 1420-byte tunnel
// MTU, 1392 bytes of UDP payload fill it exactly, as bench-tunnel's
// udp1392 run does.
const probeIPLen = 1420

func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// loadSpec is one load phase.
type loadSpec struct {
	peers []*peer // who sends
	// rate is the aggregate offered rate in packets per second; 0 sends
	// as fast as the senders can.
	rate     float64
	duration time.Duration
	senders  int
	// flows > 1 spreads each peer's probes over that many UDP source
	// ports (flows), so that the kernel's UDP GRO on the hub's TUN cannot
	// coalesce them: it isolates the cost of many peers from that of
	// many flows.
	flows int
	// plain sends on the plain path to plainSink instead of the tunnel.
	plain     bool
	plainSink *net.UDPAddr
}

// loadResult is what the senders did.
type loadResult struct {
	sent    []uint64 // per peer of the spec, in order
	elapsed time.Duration
	// errors counts the probes the senders could not send, of sent:
	// notUp while the peer had no established session, sealErrors that
	// the session refused to seal, writeErrors that the socket refused.
	errors                         int
	notUp, sealErrors, writeErrors int
	// behind counts the probes a paced sender skipped because it fell
	// further behind its schedule than maxBehind: never sent, never
	// numbered, so not lost.
	behind int
	// sentBy counts the probes sent in each timelineBin of the phase,
	// by the sender's clock.
	sentBy []int
}

// sendOutcome is what became of one probe at the sender.
type sendOutcome int

const (
	probeSent sendOutcome = iota
	// probeBusy: the peer's session was in use (its commit being made,
	// its peer's answer being read); the probe is owed still, and sent
	// once the round comes back to the peer.
	probeBusy
	probeNotUp
	probeSealError
	probeWriteError
)

// count adds one probe's outcome.
func (r *loadResult) count(o sendOutcome) {
	switch o {
	case probeNotUp:
		r.notUp++
	case probeSealError:
		r.sealErrors++
	case probeWriteError:
		r.writeErrors++
	default:
		return
	}
	r.errors++
}

func (r *loadResult) add(o loadResult) {
	r.behind += o.behind
	for len(r.sentBy) < len(o.sentBy) {
		r.sentBy = append(r.sentBy, 0)
	}
	for i, n := range o.sentBy {
		r.sentBy[i] += n
	}
	r.errors += o.errors
	r.notUp += o.notUp
	r.sealErrors += o.sealErrors
	r.writeErrors += o.writeErrors
}

// runLoad runs one phase. Every peer's seq restarts at 0, so the sink's
// counts for the phase are comparable with sent.
func runLoad(f *fleet, spec loadSpec) (loadResult, error) {
	for _, p := range spec.peers {
		p.mu.Lock()
		p.seq = 0
		p.epochSeqs = p.epochSeqs[:0]
		p.binSeqs = p.binSeqs[:0]
		p.mu.Unlock()
	}
	senders := min(max(spec.senders, 1), len(spec.peers))
	res := loadResult{sent: make([]uint64, len(spec.peers))}
	var plains []*net.UDPConn
	if spec.plain {
		for range senders {
			c, err := net.DialUDP("udp4", nil, spec.plainSink)
			if err != nil {
				for _, c := range plains {
					c.Close()
				}
				return res, err
			}
			plains = append(plains, c)
		}
		defer func() {
			for _, c := range plains {
				c.Close()
			}
		}()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	for w := range senders {
		var idx []int
		for i := w; i < len(spec.peers); i += senders {
			idx = append(idx, i)
		}
		s := &sender{f: f, spec: &spec, idx: idx, rate: spec.rate / float64(senders)}
		if spec.plain {
			s.plain = plains[w]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := s.run(start)
			mu.Lock()
			res.add(out)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	for i, p := range spec.peers {
		p.mu.Lock()
		res.sent[i] = p.seq
		p.mu.Unlock()
	}
	return res, nil
}

type sender struct {
	f     *fleet
	spec  *loadSpec
	idx   []int
	rate  float64
	plain *net.UDPConn
	buf   []byte
}

// pacingTick is how often a paced sender catches up with its schedule.
const pacingTick = time.Millisecond

// maxBehind is how far a paced sender may fall behind its schedule and
// still send what it owes. The tool's 1,000 peers share one process and
// the hub's two cores: when the process does not get a core for a while
// (its peers' commits, other work on the machine), a sender that made up
// for the whole delay at once would send a burst no fleet of separate
// machines sends, as if every peer had saved its packets for that
// moment, and the burst alone overflows the hub's socket. Beyond
// maxBehind the sender skips ahead, and counts what it skipped.
const maxBehind = 20 * time.Millisecond

func (s *sender) run(start time.Time) (out loadResult) {
	h := session.PacketHeadroom(session.Datagram)
	s.buf = make([]byte, h+probeIPLen+session.PacketOverhead(session.Datagram))
	end := start.Add(s.spec.duration)
	next := 0
	var sent float64
	bin := -1
	for {
		now := time.Now()
		if !now.Before(end) {
			return out
		}
		if b := int(now.Sub(start) / timelineBin); b > bin {
			bin = b
			s.markBin(bin)
			for len(out.sentBy) <= bin {
				out.sentBy = append(out.sentBy, 0)
			}
		}
		owed := 64 // a burst between clock reads when unpaced
		if s.rate > 0 {
			var skipped int
			owed, skipped = pace(now.Sub(start).Seconds()*s.rate, sent, s.rate*maxBehind.Seconds())
			out.behind += skipped
			sent += float64(skipped)
			if owed <= 0 {
				time.Sleep(pacingTick)
				continue
			}
		}
		done := 0
		for range owed {
			if o := s.send(s.spec.peers[s.idx[next]]); o != probeBusy {
				out.count(o)
				done++
			}
			next = (next + 1) % len(s.idx)
		}
		sent += float64(done)
		out.sentBy[bin] += done
	}
}

// pace is what a paced sender does when due probes should have been
// sent by now and sent were: it sends owed now, and skips those it owes
// beyond slack.
func pace(due, sent, slack float64) (owed, skipped int) {
	if due-sent > slack {
		skipped = int(math.Floor(due - sent - slack))
	}
	return int(due - sent - float64(skipped)), skipped
}

// markBin notes, for each of the sender's peers, the sequence number
// that starts timeline bin b, so that a lost probe's number tells when
// it was sent.
func (s *sender) markBin(b int) {
	for _, i := range s.idx {
		p := s.spec.peers[i]
		p.mu.Lock()
		for len(p.binSeqs) <= b {
			p.binSeqs = append(p.binSeqs, p.seq)
		}
		p.mu.Unlock()
	}
}

// send sends one probe from p.
func (s *sender) send(p *peer) sendOutcome {
	h := session.PacketHeadroom(session.Datagram)
	ip := s.buf[h : h+probeIPLen]
	payload := ip[ipv4Header+udpHeader:]
	// Waiting for a busy peer would hold up every peer behind it in the
	// round: one commit of 1,000 (a millisecond of CPU, longer when the
	// process waits for a core meanwhile) would stall the whole load.
	if !p.mu.TryLock() {
		return probeBusy
	}
	pr := probe{peer: uint32(p.id), seq: p.seq, sent: monoNow()}
	p.seq++
	if s.plain != nil {
		p.mu.Unlock()
		putProbe(payload, pr)
		if _, err := s.plain.Write(payload); err != nil {
			return probeWriteError
		}
		return probeSent
	}
	if p.s == nil || !p.s.Established() {
		p.mu.Unlock()
		return probeNotUp
	}
	putProbe(payload, pr)
	sport := uint16(probeSrcPort)
	if s.spec.flows > 1 {
		sport += uint16(pr.seq % uint64(s.spec.flows))
	}
	buildUDP4(ip, p.tun, s.f.sinkIP, sport, sinkPort, len(payload))
	rec, err := p.s.SealPacketTo(time.Now(), s.buf[:0], ip)
	p.mu.Unlock()
	if err != nil {
		return probeSealError
	}
	if _, err := p.c.Write(rec); err != nil {
		return probeWriteError
	}
	return probeSent
}
