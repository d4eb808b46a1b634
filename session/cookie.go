package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"sync"
	"time"
)

// CookieJar is a datagram listener's defence against spoofed handshakes,
// shared by all its sessions. The listener asks it about every datagram
// that would create a responder Session (a DatagramHandshake with
// receiver index 0 that matches no session) before creating one:
//
//   - under load (CookieJarConfig.UnderLoad), a datagram without a valid
//     cookie gets a stateless CookieChallenge carrying
//     cookie = timestamp || HMAC-SHA256(secret, address || timestamp)[:16],
//     and nothing is stored and no asymmetric crypto is done: the source
//     address must prove it can receive before it costs us anything;
//   - then a token bucket per source address (a bounded map) limits how
//     fast one source may open sessions.
//
// The address is the caller's opaque encoding of the source (e.g.
// netip.AddrPort.MarshalBinary), so neither the jar nor the Session knows
// about sockets. The HMAC secret rotates every CookieLifetime; cookies made
// with the current or the previous secret are accepted while younger than
// CookieLifetime. A CookieJar is safe for concurrent use.
type CookieJar struct {
	mu      sync.Mutex
	cfg     CookieJarConfig
	secret  [2][32]byte // current, previous
	rotated time.Time
	buckets map[string]*bucket
}

// CookieJarConfig configures a CookieJar; the zero value means defaults.
type CookieJarConfig struct {
	// UnderLoad says whether cookies are required now; nil means always.
	UnderLoad func() bool
	// CookieLifetime is how long a cookie is valid and how often the
	// secret rotates; default 2 minutes.
	CookieLifetime time.Duration
	// Rate (handshakes per second) and Burst bound how fast one source
	// address may create sessions; defaults 2 and 8. A negative Rate
	// turns the jar's limit off, for a listener that limits whole
	// handshakes itself (the jar sees every fragment of a hello, and the
	// listener may key its limit by host rather than by address).
	Rate  float64
	Burst float64
	// MaxSources bounds the rate limiter's map; default 65536. When it is
	// full, idle sources are forgotten first, then arbitrary ones.
	MaxSources int
	// Rand is the source of secrets; nil means crypto/rand.
	Rand io.Reader
}

// Admission is the jar's verdict on a datagram.
type Admission uint8

const (
	// AdmitDrop: ignore the datagram (malformed, not an initiation, or the
	// source exceeded its rate).
	AdmitDrop Admission = iota
	// AdmitChallenge: send the returned CookieChallenge to the source,
	// create nothing.
	AdmitChallenge
	// AdmitAccept: create a responder Session and feed it the datagram.
	AdmitAccept
)

const (
	cookieTimeLen = 8
	cookieMACLen  = 16
	cookieLen     = cookieTimeLen + cookieMACLen
)

type bucket struct {
	tokens float64
	last   time.Time
}

// NewCookieJar returns a jar with a fresh secret.
func NewCookieJar(cfg CookieJarConfig) (*CookieJar, error) {
	if cfg.CookieLifetime <= 0 {
		cfg.CookieLifetime = 2 * time.Minute
	}
	if cfg.Rate == 0 {
		cfg.Rate = 2
	}
	if cfg.Burst < 1 {
		cfg.Burst = 8
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 1 << 16
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	j := &CookieJar{cfg: cfg, buckets: make(map[string]*bucket)}
	if _, err := io.ReadFull(cfg.Rand, j.secret[0][:]); err != nil {
		return nil, err
	}
	j.secret[1] = j.secret[0]
	return j, nil
}

// Admit decides what to do with datagram d from source addr, which matched
// no existing session. reply is the CookieChallenge to send for
// AdmitChallenge. Admit never does asymmetric cryptography and, while
// cookies are required, stores nothing for a datagram without a valid one.
func (j *CookieJar) Admit(now time.Time, addr, d []byte) (Admission, []byte) {
	sender, receiver, cookie, frag, ok := parsePlainHeader(d)
	if !ok || receiver != 0 {
		return AdmitDrop, nil
	}
	if _, _, _, _, ok := parseFragment(frag); !ok {
		return AdmitDrop, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !now.Before(j.rotated.Add(j.cfg.CookieLifetime)) {
		if err := j.rotate(now); err != nil {
			return AdmitDrop, nil
		}
	}
	if j.cfg.UnderLoad == nil || j.cfg.UnderLoad() {
		if !j.valid(now, addr, cookie) {
			return AdmitChallenge, j.challenge(now, addr, sender)
		}
	}
	if j.cfg.Rate > 0 && !j.allow(now, addr) {
		return AdmitDrop, nil
	}
	return AdmitAccept, nil
}

func (j *CookieJar) rotate(now time.Time) error {
	var next [32]byte
	if _, err := io.ReadFull(j.cfg.Rand, next[:]); err != nil {
		return err
	}
	j.secret[1], j.secret[0] = j.secret[0], next
	j.rotated = now
	return nil
}

func (j *CookieJar) mac(secret *[32]byte, addr []byte, ts uint64) []byte {
	h := hmac.New(sha256.New, secret[:])
	h.Write(addr)
	h.Write(binary.BigEndian.AppendUint64(nil, ts))
	return h.Sum(nil)[:cookieMACLen]
}

func (j *CookieJar) challenge(now time.Time, addr []byte, sender uint32) []byte {
	ts := uint64(now.Unix())
	d := make([]byte, 0, 6+cookieLen)
	d = append(d, DatagramCookie)
	d = binary.BigEndian.AppendUint32(d, sender)
	d = append(d, cookieLen)
	d = binary.BigEndian.AppendUint64(d, ts)
	return append(d, j.mac(&j.secret[0], addr, ts)...)
}

func (j *CookieJar) valid(now time.Time, addr, cookie []byte) bool {
	if len(cookie) != cookieLen {
		return false
	}
	ts := binary.BigEndian.Uint64(cookie)
	age := now.Unix() - int64(ts)
	if int64(ts) < 0 || age < -1 || age > int64(j.cfg.CookieLifetime/time.Second) {
		return false
	}
	for i := range j.secret {
		if hmac.Equal(cookie[cookieTimeLen:], j.mac(&j.secret[i], addr, ts)) {
			return true
		}
	}
	return false
}

// allow takes a token from addr's bucket.
func (j *CookieJar) allow(now time.Time, addr []byte) bool {
	b := j.buckets[string(addr)]
	if b == nil {
		if len(j.buckets) >= j.cfg.MaxSources {
			j.evict(now)
		}
		b = &bucket{tokens: j.cfg.Burst, last: now}
		j.buckets[string(addr)] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(j.cfg.Burst, b.tokens+dt*j.cfg.Rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// evict forgets sources whose buckets have refilled (they lose nothing),
// and if none has, an arbitrary eighth of the map.
func (j *CookieJar) evict(now time.Time) {
	full := time.Duration(j.cfg.Burst / j.cfg.Rate * float64(time.Second))
	for k, b := range j.buckets {
		if now.Sub(b.last) >= full {
			delete(j.buckets, k)
		}
	}
	n := max(1, len(j.buckets)/8)
	for k := range j.buckets {
		if len(j.buckets) < j.cfg.MaxSources || n <= 0 {
			break
		}
		delete(j.buckets, k)
		n--
	}
}

// Sources is the number of source addresses the rate limiter tracks.
func (j *CookieJar) Sources() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.buckets)
}

// DatagramInfo is what a listener needs to route a datagram, read without
// cryptography.
type DatagramInfo struct {
	Type uint8
	// Receiver is the receiver index: the session it is for. Zero for a
	// ClientHello, which the listener routes by source and Sender.
	Receiver uint32
	// Sender is the sender's index (control datagrams only).
	Sender uint32
}

// ParseDatagram reads the routing fields of any datagram of this protocol.
func ParseDatagram(d []byte) (DatagramInfo, bool) {
	if len(d) == 0 {
		return DatagramInfo{}, false
	}
	switch d[0] {
	case DatagramHandshake:
		sender, receiver, _, _, ok := parsePlainHeader(d)
		return DatagramInfo{Type: d[0], Receiver: receiver, Sender: sender}, ok
	case DatagramCookie:
		if len(d) < 6 {
			return DatagramInfo{}, false
		}
		return DatagramInfo{Type: d[0], Receiver: binary.BigEndian.Uint32(d[1:])}, true
	}
	if idx, ok := datagramRecordIndex(d); ok {
		return DatagramInfo{Type: d[0], Receiver: idx}, true
	}
	return DatagramInfo{}, false
}
