//go:build linux

package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/mls"
)

// The tool's side: N peers in one process, each a session.Session in
// datagram mode with its own UDP socket bound to its own source address
// (the hub sees N hosts, as it would in production, and its per-host
// limits apply to each peer alone). Every peer does what currentd does
// as an initiator towards a hub: sealed hellos (identity hiding), cookie
// answers, retransmissions on the daemon's schedule, and, when its
// traffic goes unanswered, a sealed resumption from its current group,
// next to the silent session (rescue.go).
//
// Concurrency: a peer's session is only touched under its mutex, by its
// socket's reader goroutine, the fleet's timer goroutine and the sender
// goroutine that owns it.

// Session settings of the tool's peers, as currentd's UDP peers have them
// (tunnel/liveness.go): control messages retransmitted at most
// helloRetransmitMax apart, silence after silentAfter counted as a lost
// session.
const (
	retransmitMin      = time.Second
	helloRetransmitMax = 2 * time.Second
	silentAfter        = time.Second
	// resumeTimeout outlasts a hub restart with thousands of state files
	// to read, so that a peer keeps asking to resume while the hub is
	// down instead of falling back to a fresh handshake after
	// session.DefaultResumeTimeout (4 s): falling back would be the
	// measurement's artefact, not the hub's.
	resumeTimeout = 60 * time.Second
)

type peer struct {
	id   int
	priv []byte
	// tun is the peer's tunnel address (its allowed IP at the hub).
	tun netip.Addr
	c   *net.UDPConn

	mu sync.Mutex
	s  *session.Session
	// seq is the next probe sequence number of the current phase; the
	// sink counts what arrives.
	seq uint64
	// epochSeqs are the seqs at which an epoch change happened during
	// the current phase (for attributing losses to updates).
	epochSeqs []uint64
	// binSeqs[b] is seq at the start of timeline bin b of the phase.
	binSeqs  []uint64
	epochs   int
	updateAt time.Time
	// pingAt is when the next ping is due; awaiting says one is
	// unanswered since sentAt.
	pingAt   time.Time
	awaiting bool
	// rescueQueued: p waits in the fleet's rescue queue.
	rescueQueued bool
	sentAt       time.Time
	// cand is a resumption running next to s (rescue.go) until candEnd.
	cand    *session.Session
	candEnd time.Time
	// Outcomes of the peer's sessions.
	handshakes, resumptions, failures int
	// rescues counts the candidates started for a silent session, and
	// rescuesAfterUp those started by a peer whose session had been
	// established since the fleet's mark and had no pong yet (the hub
	// answered its resumption, then not its traffic).
	rescues, rescuesAfterUp int
	// upAt is when the current session was established, and upToPong
	// the time from it to the first pong after the fleet's mark.
	upAt     time.Time
	upToPong time.Duration
	lastErr  error
	// pong is the CLOCK_MONOTONIC time of the last pong, in ns, and
	// firstPong that of the first after the fleet's mark.
	pong, firstPong atomic.Int64
	// up is set once the current session is established.
	up atomic.Bool
}

type fleet struct {
	suite  mls.CipherSuiteID
	hub    *net.UDPAddr
	hubPub []byte
	sinkIP netip.Addr

	helloMu  sync.Mutex
	helloKey []byte

	peers []*peer
	// updateEvery > 0 makes every peer start an epoch update on its own
	// timer, that often ±10 %; pingEvery > 0 makes every peer ping the
	// sink through the tunnel that often and resume when unanswered.
	updateEvery atomic.Int64
	// updateSync arms every peer's first update within ±10 % of the same
	// instant instead of at a random point of the interval.
	updateSync atomic.Bool
	pingEvery  atomic.Int64
	// mark is a CLOCK_MONOTONIC time (ns) from which firstPong counts.
	mark atomic.Int64
	// markWall is the same moment on the wall clock (Unix ns), for the
	// sessions' times.
	markWall atomic.Int64
	// inFlight counts handshakes started and not yet established.
	inFlight atomic.Int64
	quit     chan struct{}
	wg       sync.WaitGroup
	// timerCalls counts HandleTimeout calls (retransmissions mostly).
	timerCalls atomic.Int64
	// rescueQ holds the peers whose rescue is due, for the rescuers
	// (rescue.go).
	rescueQ chan *peer
}

// peerSource is peer i's source address: 198.18.0.0/15 is routed to the
// tool's namespace and local there (ip route add local), so any address
// in it can be bound without configuring one per peer.
func peerSource(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
}

func newFleet(suite mls.CipherSuiteID, hub *net.UDPAddr, hubPub []byte, sinkIP netip.Addr, privs [][]byte) (*fleet, error) {
	f := &fleet{suite: suite, hub: hub, hubPub: hubPub, sinkIP: sinkIP, quit: make(chan struct{}), rescueQ: make(chan *peer, len(privs))}
	for i, priv := range privs {
		c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(peerSource(i), 0)), hub)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("peer %d socket: %w", i, err)
		}
		p := &peer{id: i, priv: priv, tun: peerTunnelAddr(i), c: c}
		f.peers = append(f.peers, p)
		f.wg.Add(1)
		go f.read(p)
	}
	f.wg.Add(1)
	go f.timers()
	f.startRescuers()
	return f, nil
}

func (f *fleet) close() {
	select {
	case <-f.quit:
		return
	default:
	}
	close(f.quit)
	for _, p := range f.peers {
		p.c.Close()
	}
	f.wg.Wait()
}

// sessionConfig is a peer's initiator configuration.
func (f *fleet) sessionConfig(p *peer) session.Config {
	f.helloMu.Lock()
	hk := f.helloKey
	f.helloMu.Unlock()
	return session.Config{
		Role: session.Initiator, Transport: session.Datagram,
		Suite: f.suite, SigningKey: p.priv, PeerPublicKey: f.hubPub,
		RetransmitMin: retransmitMin, RetransmitMax: helloRetransmitMax,
		ResumeTimeout: resumeTimeout,
		// Updates are the tool's (updateEvery), so that a control run
		// can have none: the session's own schedule is off.
		UpdateInterval: -1, UpdateBytes: -1,
		HideIdentity: true, PeerHelloKey: hk,
	}
}

// handshake starts a fresh session for p. The first peers ask the hub for
// its hello key; once one has it, the others seal at once with it, as a
// peer that cached it from an earlier session does.
func (f *fleet) handshake(p *peer) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return f.startLocked(p, f.sessionConfig(p))
}

func (f *fleet) startLocked(p *peer, cfg session.Config) error {
	s, err := session.New(cfg)
	if err != nil {
		return err
	}
	if err := s.Start(time.Now()); err != nil {
		return err
	}
	if p.up.Swap(false) || p.s == nil {
		f.inFlight.Add(1)
	}
	p.s = s
	p.awaiting = false
	p.flushLocked()
	return nil
}

// read hands every datagram p's socket receives to p's session.
func (f *fleet) read(p *peer) {
	defer f.wg.Done()
	b := make([]byte, 2048)
	for {
		n, err := p.c.Read(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ECONNREFUSED while the hub is down
		}
		f.receive(p, b[:n])
	}
}

func (f *fleet) receive(p *peer, d []byte) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.s == nil {
		return
	}
	if f.toCandidateLocked(p, now, d) {
		return
	}
	pkt, data, err := p.s.ReceiveDatagram(now, d)
	if err != nil && !errors.Is(err, session.ErrDropped) {
		p.lastErr = err
	}
	if data && err == nil {
		f.heardLocked(p, pkt)
	}
	f.afterLocked(p, now)
}

// heardLocked notes an authenticated record carrying pkt: any (a pong,
// the hub's keepalive) shows the session alive, as for currentd's
// liveness rule, and a pong is traffic carried.
func (f *fleet) heardLocked(p *peer, pkt []byte) {
	p.awaiting = false
	if pr, err := parseProbe(udpPayload(pkt)); err == nil && pr.flags&flagEcho != 0 {
		t := monoNow()
		p.pong.Store(t)
		if p.firstPong.Load() <= f.mark.Load() {
			p.firstPong.Store(t)
			p.upToPong = time.Since(p.upAt)
		}
	}
}

// afterLocked acts on the session's events and sends what it queued.
func (f *fleet) afterLocked(p *peer, now time.Time) {
	for _, ev := range p.s.Events() {
		switch ev.(type) {
		case session.Established:
			if p.s.Resumed() {
				p.resumptions++
			} else {
				p.handshakes++
			}
			p.up.Store(true)
			f.inFlight.Add(-1)
			// The first ping goes at once: a peer that just came back
			// has traffic waiting.
			p.pingAt, p.upAt = now, now
			p.epochs++
			f.noteHelloKey(p.s.PeerHelloKey())
		case session.EpochChanged:
			p.epochs++
			if len(p.epochSeqs) < maxEpochSeqs {
				p.epochSeqs = append(p.epochSeqs, p.seq)
			}
		case session.Closed:
			p.failures++
			// A session that failed starts afresh, as currentd's peer
			// would redial.
			if p.up.Swap(false) {
				f.inFlight.Add(1)
			}
			if err := f.startFresh(p); err != nil {
				p.lastErr = err
			}
			return
		}
	}
	p.flushLocked()
}

// maxEpochSeqs bounds the epoch changes one peer records per phase.
const maxEpochSeqs = 4096

func (f *fleet) startFresh(p *peer) error {
	s, err := session.New(f.sessionConfig(p))
	if err == nil {
		err = s.Start(time.Now())
	}
	if err != nil {
		p.s = nil
		return err
	}
	p.s = s
	p.flushLocked()
	return nil
}

func (f *fleet) noteHelloKey(k []byte) {
	if k == nil {
		return
	}
	f.helloMu.Lock()
	if f.helloKey == nil {
		f.helloKey = k
	}
	f.helloMu.Unlock()
}

// flushLocked sends what the session queued.
func (p *peer) flushLocked() {
	// A send fails while the hub is down (ECONNREFUSED from the last
	// ICMP error): the session retransmits what matters.
	if p.s != nil {
		flushSession(p, p.s)
	}
}

// timerTick is how often the timer goroutine looks at every peer: fine
// enough for retransmissions of a second or more, coarse enough that
// 10,000 peers cost the tool little.
const timerTick = 50 * time.Millisecond

// timers fires the sessions' timers, the peers' own update schedule and
// the pings, and resumes a peer whose ping went unanswered.
func (f *fleet) timers() {
	defer f.wg.Done()
	t := time.NewTicker(timerTick)
	defer t.Stop()
	for {
		select {
		case <-f.quit:
			return
		case <-t.C:
		}
		now := time.Now()
		upd, ping := time.Duration(f.updateEvery.Load()), time.Duration(f.pingEvery.Load())
		for _, p := range f.peers {
			p.mu.Lock()
			f.tickLocked(p, now, upd, ping)
			p.mu.Unlock()
		}
	}
}

func (f *fleet) tickLocked(p *peer, now time.Time, upd, ping time.Duration) {
	if p.s == nil {
		return
	}
	f.candidateTimersLocked(p, now)
	if t := p.s.NextTimeout(); !t.IsZero() && !now.Before(t) {
		f.timerCalls.Add(1)
		if err := p.s.HandleTimeout(now); err != nil {
			p.lastErr = err
		}
	}
	if p.s.Established() {
		if upd > 0 {
			if p.updateAt.IsZero() {
				p.updateAt = now.Add(f.firstUpdate(upd))
			} else if !now.Before(p.updateAt) {
				p.updateAt = now.Add(jitter(upd))
				// ErrUpdatePending: the previous one is unconfirmed.
				_ = p.s.Update(now)
			}
		} else {
			p.updateAt = time.Time{}
		}
		if ping > 0 {
			f.pingLocked(p, now, ping)
		}
	}
	f.afterLocked(p, now)
}

// pingLocked sends a ping when due, and resumes when the last one is
// unanswered after silentAfter: the hub forgot the session (it restarted).
func (f *fleet) pingLocked(p *peer, now time.Time, every time.Duration) {
	if p.awaiting && now.Sub(p.sentAt) >= silentAfter {
		f.queueRescueLocked(p, now)
	}
	if p.pingAt.IsZero() {
		p.pingAt = now.Add(time.Duration(rand.Int64N(int64(every))))
		return
	}
	if now.Before(p.pingAt) {
		return
	}
	p.pingAt = now.Add(every)
	var buf [ipv4Header + udpHeader + 64]byte
	putProbe(buf[ipv4Header+udpHeader:], probe{peer: uint32(p.id), seq: p.seq, sent: monoNow(), flags: flagEcho})
	p.seq++
	pkt := buildUDP4(buf[:], p.tun, f.sinkIP, probeSrcPort, sinkPort, 64)
	if err := p.s.SendPacket(now, pkt); err != nil {
		return
	}
	if !p.awaiting {
		p.awaiting, p.sentAt = true, now
	}
}

// probeSrcPort is the UDP source port of the probes inside the tunnel.
const probeSrcPort = 40000

// firstUpdate is when a peer's first update of the phase is due. Peers
// with timers of their own, started whenever each peer's epoch did, are
// at independent points of their interval: the first update falls at a
// uniformly random point of it, and the updates of all peers are spread
// evenly over time, N per interval. Arming every peer at the same tick
// with only the ±10 % of the next ones (updateSync, the tool before
// session 10) makes them a storm instead: all N commits within a fifth of
// the interval, five times the average rate, twice per 10 s phase at 5 s.
func (f *fleet) firstUpdate(every time.Duration) time.Duration {
	if f.updateSync.Load() {
		return jitter(every)
	}
	return time.Duration(rand.Int64N(int64(every)))
}

// jitter is d ± 10 %.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

// peerTunnelAddr is peer i's address inside the tunnel: 10.128.0.0/9
// holds 2^23 of them, 10.128.0.1 is the hub's.
func peerTunnelAddr(i int) netip.Addr {
	n := i + 2
	return netip.AddrFrom4([4]byte{10, byte(128 + n>>16), byte(n >> 8), byte(n)})
}

// establish starts a handshake for every peer, window at a time, and
// waits until every one is up.
func (f *fleet) establish(window int, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	for _, p := range f.peers {
		for f.inFlight.Load() >= int64(window) {
			if time.Now().After(deadline) {
				return time.Since(t0), fmt.Errorf("%d of %d peers up after %v", f.countUp(), len(f.peers), timeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := f.handshake(p); err != nil {
			return 0, fmt.Errorf("peer %d: %w", p.id, err)
		}
	}
	for f.countUp() < len(f.peers) {
		if time.Now().After(deadline) {
			return time.Since(t0), fmt.Errorf("%d of %d peers up after %v (%s)", f.countUp(), len(f.peers), timeout, f.firstError())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(t0), nil
}

func (f *fleet) countUp() int {
	n := 0
	for _, p := range f.peers {
		if p.up.Load() {
			n++
		}
	}
	return n
}

func (f *fleet) firstError() string {
	for _, p := range f.peers {
		p.mu.Lock()
		err := p.lastErr
		p.mu.Unlock()
		if err != nil {
			return fmt.Sprintf("peer %d: %v", p.id, err)
		}
	}
	return "no session error"
}

// outcomes sums the peers' session outcomes.
func (f *fleet) outcomes() (handshakes, resumptions, failures, epochs int) {
	for _, p := range f.peers {
		p.mu.Lock()
		handshakes += p.handshakes
		resumptions += p.resumptions
		failures += p.failures
		epochs += p.epochs
		p.mu.Unlock()
	}
	return
}

// rescuesAfterUp sums the rescues of sessions established since the
// mark that carried no pong.
func (f *fleet) rescuesAfterUp() int {
	n := 0
	for _, p := range f.peers {
		p.mu.Lock()
		n += p.rescuesAfterUp
		p.mu.Unlock()
	}
	return n
}

// rescues sums the peers' rescue candidates.
func (f *fleet) rescues() int {
	n := 0
	for _, p := range f.peers {
		p.mu.Lock()
		n += p.rescues
		p.mu.Unlock()
	}
	return n
}
