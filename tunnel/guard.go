package tunnel

import (
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/current-vpn/current/session"
)

// guard is the device's defence against unauthenticated input: what
// strangers may make it hold (hello fragments, half-open TCP connections)
// and how often they may make it work (handshakes), the counters of every
// refusal, and one rate-limited log line per kind of refusal instead of one
// per packet.
type guard struct {
	log *slog.Logger

	hellos    *helloAssembler
	hosts     *hostLimiter
	global    *limiter
	refused   [numRefusals]atomic.Uint64
	responded atomic.Uint64 // responder handshakes started
	// candidates counts the peers' candidate sessions (candidate.go):
	// responder groups for a ClientHello that has not proved itself yet.
	candidates atomic.Int64

	// Half-open TCP connections per host; the total is helloSlots.
	tcpMu   sync.Mutex
	tcpOpen map[netip.Prefix]int

	logMu sync.Mutex
	logs  [numRefusals]refusalLog
}

// refusal is a kind of refused unauthenticated input.
type refusal uint8

const (
	refBadDatagram    refusal = iota // no protocol datagram
	refUnknownIndex                  // record or control datagram for no session
	refBadHello                      // malformed ClientHello, or no hello on a connection
	refUnknownPeer                   // ClientHello signed by a key no peer has
	refHelloBudget                   // reassembly budget of unidentified hellos full
	refRateHost                      // host over its handshake rate
	refRateGlobal                    // device over its handshake ceiling
	refRatePeer                      // peer over its handshake rate
	refTCPBusy                       // too many half-open connections (host or total)
	refHelloReplay                   // a ClientHello already answered
	refCandidates                    // too many unproven replacement sessions
	refBadKeyPackage                 // a pinned peer's KeyPackage that fails validation
	refPlaintextHello                // a hello in the clear: identity hiding is on
	numRefusals
)

// refusalNames are the metrics' reason labels.
var refusalNames = [numRefusals]string{
	"bad_datagram", "unknown_index", "bad_hello", "unknown_peer", "hello_budget",
	"rate_host", "rate_global", "rate_peer", "tcp_busy", "hello_replay", "candidate_busy",
	"bad_key_package", "plaintext_hello",
}

// Noise (scanners, stale sessions) is logged at debug level; refusals that
// mean the device is under load at info.
// A refused KeyPackage is loud too: the responder answers nothing before
// keys exist, so this line is all a peer's operator can find about a
// misconfigured clock or MLS stack.
var refusalLoud = [numRefusals]bool{refHelloBudget: true, refRateHost: true, refRateGlobal: true, refRatePeer: true, refTCPBusy: true, refCandidates: true, refBadKeyPackage: true}

// refusalLogEvery is how often each kind of refusal may be logged; the
// line says how many were refused since the last one.
const refusalLogEvery = 10 * time.Second

// maxCandidates bounds the candidate sessions of all peers together. Each
// holds a group until it proves itself or its handshake timeout passes; a
// replay of a hello older than a peer's hello log could otherwise make
// every peer of a hub hold one.
const maxCandidates = 64

// maxHalfOpenPerHost bounds one host's share of the half-open TCP
// connections (maxUnidentified in all), so a slowloris from one host
// cannot lock everyone else out.
const maxHalfOpenPerHost = 8

type refusalLog struct {
	last       time.Time
	suppressed uint64
}

func newGuard(log *slog.Logger) *guard {
	rate := float64(handshakeCoreRate * max(runtime.GOMAXPROCS(0), 1))
	return &guard{
		log:     log,
		hellos:  newHelloAssembler(),
		hosts:   newHostLimiter(handshakeHostRate, handshakeHostBurst, maxLimitedHosts),
		global:  newLimiter(rate, rate),
		tcpOpen: map[netip.Prefix]int{},
	}
}

// refuse counts a refusal and logs it, at most once per refusalLogEvery
// for each kind. from is the source, if known.
func (g *guard) refuse(now time.Time, r refusal, from string) { g.refuseErr(now, r, from, nil) }

// refuseErr is refuse with the error that explains the refusal, logged
// with it when the line is not suppressed.
func (g *guard) refuseErr(now time.Time, r refusal, from string, err error) {
	g.refused[r].Add(1)
	g.logMu.Lock()
	l := &g.logs[r]
	if !l.last.IsZero() && now.Sub(l.last) < refusalLogEvery {
		l.suppressed++
		g.logMu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	g.logMu.Unlock()
	level := slog.LevelDebug
	if refusalLoud[r] {
		level = slog.LevelInfo
	}
	attrs := []any{"reason", refusalNames[r], "more_since_last_line", n}
	if from != "" {
		attrs = append(attrs, "remote", from)
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	g.log.Log(nil, level, "refused unauthenticated input", attrs...)
}

// refusedKeyPackage counts and logs a session error that is a refused
// KeyPackage (session.ErrBadKeyPackage) and reports whether it was one.
func (g *guard) refusedKeyPackage(now time.Time, c carrier, err error) bool {
	if !errors.Is(err, session.ErrBadKeyPackage) {
		return false
	}
	from := ""
	if c != nil {
		from = c.remote()
	}
	g.refuseErr(now, refBadKeyPackage, from, err)
	return true
}

// admitHandshake decides whether a ClientHello from host may start
// responder work now, as far as the host and global limits go.
func (g *guard) admitHandshake(now time.Time, host netip.Prefix, from string) bool {
	if !g.admitCopy(now, host, from) {
		return false
	}
	if !g.global.allow(now) {
		g.refuse(now, refRateGlobal, from)
		return false
	}
	return true
}

// admitCopy decides whether a copy of a hello already opened may reach
// its peer: only the host's limit applies (sealed.go).
func (g *guard) admitCopy(now time.Time, host netip.Prefix, from string) bool {
	if !g.hosts.allow(now, host) {
		g.refuse(now, refRateHost, from)
		return false
	}
	return true
}

// nearCeiling reports whether the device is close to its handshake
// ceiling, so that UDP demands cookies of everyone.
func (g *guard) nearCeiling(now time.Time) bool { return g.global.low(now) }

// takeCandidate reserves a candidate session, or reports false.
func (g *guard) takeCandidate() bool {
	if g.candidates.Add(1) > maxCandidates {
		g.candidates.Add(-1)
		return false
	}
	return true
}

// openTCP takes a half-open slot of host, or reports false.
func (g *guard) openTCP(host netip.Prefix) bool {
	g.tcpMu.Lock()
	defer g.tcpMu.Unlock()
	if g.tcpOpen[host] >= maxHalfOpenPerHost {
		return false
	}
	g.tcpOpen[host]++
	return true
}

func (g *guard) closeTCP(host netip.Prefix) {
	g.tcpMu.Lock()
	defer g.tcpMu.Unlock()
	if g.tcpOpen[host]--; g.tcpOpen[host] <= 0 {
		delete(g.tcpOpen, host)
	}
}

// sweep is the timer side of the budget: partial hellos past their
// lifetime go, and so do refilled rate buckets.
func (g *guard) sweep(now time.Time) {
	g.hellos.expire(now)
	g.hosts.sweep(now)
}

// sweepLoop runs sweep until the device closes.
func (d *Device) sweepLoop() {
	t := time.NewTicker(preHelloSweepEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			now := d.clock()
			d.guard.sweep(now)
			d.rotateHelloKeyIfDue(now)
			d.opened.expire(now)
		case <-d.ctx.Done():
			return
		}
	}
}

// GuardStats are the counters of the defence against unauthenticated
// input.
type GuardStats struct {
	// Refused counts refusals by reason (the metrics' label values).
	Refused map[string]uint64
	// HandshakesResponded counts responder handshakes started (ClientHellos
	// that reached a session: asymmetric work done).
	HandshakesResponded uint64
	// HeldBytes and HeldHellos are what partial unidentified ClientHellos
	// hold now; HalfOpen counts TCP connections not identified yet.
	HeldBytes, HeldHellos, HalfOpen int
	CookiesSent                     uint64
}

// GuardStats returns the counters.
func (d *Device) GuardStats() GuardStats {
	g := d.guard
	st := GuardStats{Refused: map[string]uint64{}, HandshakesResponded: g.responded.Load(), CookiesSent: d.stats.cookiesSent.Load()}
	for i := range g.refused {
		st.Refused[refusalNames[i]] = g.refused[i].Load()
	}
	st.HeldBytes, st.HeldHellos = g.hellos.held()
	st.HalfOpen = len(d.helloSlots)
	return st
}
