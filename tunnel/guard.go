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

	hellos *helloAssembler
	hosts  *hostLimiter
	// global is the fresh-handshake ceiling: every HPKE open of a sealed
	// hello is charged to it until the hello proves to be a resumption
	// of a group we know, which then takes from resumes instead.
	global  *limiter
	resumes *limiter
	// slots bounds the resumptions worked on at once (resumeslots.go).
	slots     *resumeSlots
	refused   [numRefusals]atomic.Uint64
	responded atomic.Uint64 // responder handshakes started
	// keyAnswers counts the HelloKeyAnswers of this second.
	keyAnswers perSecond
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
	refRateResume                    // device over its resumption rate
	numRefusals
)

// refusalNames are the metrics' reason labels.
var refusalNames = [numRefusals]string{
	"bad_datagram", "unknown_index", "bad_hello", "unknown_peer", "hello_budget",
	"rate_host", "rate_global", "rate_peer", "tcp_busy", "hello_replay", "candidate_busy",
	"bad_key_package", "plaintext_hello", "rate_resume",
}

// Noise (scanners, stale sessions) is logged at debug level; refusals that
// mean the device is under load at info.
// A refused KeyPackage is loud too: the responder answers nothing before
// keys exist, so this line is all a peer's operator can find about a
// misconfigured clock or MLS stack.
var refusalLoud = [numRefusals]bool{refHelloBudget: true, refRateHost: true, refRateGlobal: true, refRatePeer: true, refTCPBusy: true, refCandidates: true, refBadKeyPackage: true, refRateResume: true}

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
	cores := max(runtime.GOMAXPROCS(0), 1)
	rate := float64(handshakeCoreRate * cores)
	resume := float64(resumeCoreRate * cores)
	return &guard{
		log:     log,
		hellos:  newHelloAssembler(),
		hosts:   newHostLimiter(handshakeHostRate, handshakeHostBurst, maxLimitedHosts),
		global:  newLimiter(rate, rate),
		resumes: newLimiter(resume, resume),
		slots:   newResumeSlots(cores),
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

// admitCeiling decides whether a new sealed hello, whose host's token
// was taken (admitCopy), may be opened now, as far as the device's
// handshake ceiling goes.
func (g *guard) admitCeiling(now time.Time, from string) bool {
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

// admitResumption moves the charge of an opened sealed hello that
// resumes a group we know from the fresh-handshake ceiling, which
// admitHandshake took it from before the open, to the resumption budget,
// or reports false when that budget is empty; the open then stays charged
// to the ceiling.
func (g *guard) admitResumption(now time.Time) bool {
	if !g.resumes.allow(now) {
		return false
	}
	g.global.refund()
	return true
}

// admitHeldResumption decides whether a resumption opened before, when
// the resumption budget was empty, may go on now; its open was paid.
func (g *guard) admitHeldResumption(now time.Time) bool { return g.resumes.allow(now) }

// underLoad reports whether UDP demands cookies of everyone: hello
// datagrams (unaddressed ones, every fragment counted) come faster this
// second than the budgets behind them can take, more than underLoadHellos
// hello keys were asked for this second (an answer is up to three times
// its request: cookies keep a spoofed flood of requests from reflecting),
// either budget is below half its burst, or the reassembly budget is half
// used. A storm of
// resumptions the device can afford is none of these, so it pays no
// cookie round trip; a spoofed flood of anything is, whichever budget it
// drains.
func (g *guard) underLoad(now time.Time, datagramsThisSecond int64) bool {
	if datagramsThisSecond > g.loadDatagrams() || g.keyAnswers.get(now) > underLoadHellos {
		return true
	}
	if g.global.low(now) || g.resumes.low(now) {
		return true
	}
	bytes, msgs := g.hellos.held()
	return bytes > preHelloBytes/2 || msgs > preHelloMessages/2
}

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

// helloDatagrams is the datagrams a sealed hello takes at the default
// datagram size with the post-quantum suites (a sealed X-Wing
// resumption is three), for the datagram count of underLoad.
const helloDatagrams = 4

// loadDatagrams is how many unaddressed datagrams a second the listener
// takes before it demands cookies: underLoadHellos of anything, and the
// sealed hellos the two budgets can take.
func (g *guard) loadDatagrams() int64 {
	return underLoadHellos + int64(helloDatagrams*(g.global.rate+g.resumes.rate))
}

// perSecond counts events in the current second of the clock.
type perSecond struct {
	sec, n atomic.Int64
}

func (c *perSecond) add(now time.Time) {
	if s := now.Unix(); c.sec.Swap(s) != s {
		c.n.Store(0)
	}
	c.n.Add(1)
}

// get is the count of now's second.
func (c *perSecond) get(now time.Time) int64 {
	if c.sec.Load() != now.Unix() {
		return 0
	}
	return c.n.Load()
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
