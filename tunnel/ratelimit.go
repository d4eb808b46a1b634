package tunnel

import (
	"net/netip"
	"sync"
	"time"
)

// Handshake rate limits. A responder handshake costs a signature, an HPKE
// encapsulation and a Welcome (about a millisecond); a ClientHello costs
// its sender nothing and can be replayed by anyone who saw one. So every
// ClientHello that would start responder work passes three token buckets,
// over UDP and TCP alike:
//
//   - per host: one address, or one /64 for IPv6, since a host can use
//     65,535 ports and an IPv6 host a whole /64 of addresses;
//   - global: a ceiling for the whole device, scaled by the core count;
//     nearing it, UDP demands cookies of everyone, beyond it hellos are
//     refused. A sealed hello is charged to it for its HPKE open; one that
//     then proves to resume a group we know moves its charge to the
//     resumption budget (resumeCoreRate), so that garbage sealed to our
//     hello key meets the ceiling and a restart storm does not;
//   - per peer (peerHandshakes): work that lands on one peer's owner
//     goroutine, the one that carries its traffic, so that a flood of
//     hellos for one key cannot starve that peer's data.
const (
	handshakeHostRate  = 10 // per second
	handshakeHostBurst = 32
	// handshakeCoreRate is the global ceiling per core: at about 1 ms a
	// handshake it keeps a flood to a tenth of the machine.
	handshakeCoreRate = 100
	// resumeCoreRate is the per-core rate of resumptions of groups the
	// device knows, in place of the ceiling: their HPKE open is paid
	// like a hello's, and the rest (two commits and the state save, about
	// 1.5 ms of hub CPU here, bench/README.md "Restart storm") is work
	// for a peer we configured, whose every distinct request the
	// session's replay rules admit once and whose own bucket
	// (handshakePeerRate) bounds. What keeps a storm from taking the
	// machine is the resumption slots (resumeslots.go), which let half
	// the cores work on resumptions and queue the rest in arrival order;
	// this budget is set above what they get through, so that it refuses
	// only what they could not serve in time anyway. (At 200 per core,
	// before the slots, it held a 10,000-peer storm to 25 s on two cores
	// by itself.)
	resumeCoreRate     = 1000
	handshakePeerRate  = 2
	handshakePeerBurst = 8
	// maxLimitedHosts bounds the per-host table; when full, hosts whose
	// buckets refilled are forgotten first (they lose nothing), then the
	// new host is refused rather than an old one forgotten early.
	maxLimitedHosts = 16384
)

// hostOf is the rate-limiting key of a source address: the IPv4 address,
// or the /64 of an IPv6 address.
func hostOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// tokenBucket is the classic token bucket; the caller locks.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (b *tokenBucket) take(now time.Time, rate, burst float64) bool {
	b.refill(now, rate, burst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *tokenBucket) refill(now time.Time, rate, burst float64) {
	if b.last.IsZero() {
		b.tokens = burst
	} else if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(burst, b.tokens+dt*rate)
	}
	if now.After(b.last) {
		b.last = now
	}
}

// limiter is one bucket, safe for concurrent use.
type limiter struct {
	mu          sync.Mutex
	rate, burst float64
	b           tokenBucket
}

func newLimiter(rate, burst float64) *limiter { return &limiter{rate: rate, burst: burst} }

func (l *limiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.take(now, l.rate, l.burst)
}

// refund gives back a token taken by allow (never beyond the burst): the
// work it paid for is charged to another budget.
func (l *limiter) refund() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.tokens = min(l.burst, l.b.tokens+1)
}

// low reports whether fewer than half the burst is left: the device is
// nearing its ceiling.
func (l *limiter) low(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.refill(now, l.rate, l.burst)
	return l.b.tokens < l.burst/2
}

// hostLimiter is a bucket per host, in a bounded table that sweep empties
// of refilled buckets on a timer.
type hostLimiter struct {
	mu          sync.Mutex
	rate, burst float64
	max         int
	hosts       map[netip.Prefix]*tokenBucket
}

func newHostLimiter(rate, burst float64, maxHosts int) *hostLimiter {
	return &hostLimiter{rate: rate, burst: burst, max: maxHosts, hosts: map[netip.Prefix]*tokenBucket{}}
}

func (l *hostLimiter) allow(now time.Time, host netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.hosts[host]
	if b == nil {
		if len(l.hosts) >= l.max {
			l.sweepLocked(now)
			if len(l.hosts) >= l.max {
				return false
			}
		}
		b = new(tokenBucket)
		l.hosts[host] = b
	}
	return b.take(now, l.rate, l.burst)
}

// sweep forgets the hosts whose buckets are full again.
func (l *hostLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
}

func (l *hostLimiter) sweepLocked(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for h, b := range l.hosts {
		if now.Sub(b.last) >= full {
			delete(l.hosts, h)
		}
	}
}

func (l *hostLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hosts)
}
