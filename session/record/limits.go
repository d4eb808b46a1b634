package record

import "time"

// Defaults of Config.
const (
	// DefaultRekeyAfter is when a sender starts reporting RekeyNeeded: 2^23
	// records leaves AES-GCM about 15 million records of its 2^24.5 budget,
	// ample time for an MLS update round trip even at line rate.
	DefaultRekeyAfter = 1 << 23
	// DefaultGracePeriod bounds how long the previous epoch's receive keys
	// outlive the first record authenticated under the new epoch.
	DefaultGracePeriod = 10 * time.Second
	// DefaultGraceRecords is the other bound: once this many records of the
	// new epoch have arrived, an old-epoch record would be as stale as one
	// left of the replay window within a single epoch, so it is dropped the
	// same way.
	DefaultGraceRecords = ReplayWindow
)

// Failed authentications a datagram receive key tolerates. DTLS 1.3 (RFC
// 9147 section 4.5.3) caps forgery attempts at 2^36 for AES-GCM and
// ChaCha20-Poly1305 because, unlike a stream, a datagram receiver does not
// die on the first bad MAC. RekeyNeeded turns true at half of it.
const (
	forgeryLimit     = 1 << 36
	forgeryRekeyHint = forgeryLimit / 2
)

// Config tunes the usage limits and the epoch grace period. The zero value
// means the defaults.
type Config struct {
	// RekeyAfter is the number of records after which a sender reports
	// RekeyNeeded. Values above the AEAD's hard limit are lowered to it
	// (then the only warning is exhaustion itself).
	RekeyAfter uint64
	// GracePeriod and GraceRecords end a datagram receiver's previous epoch:
	// whichever is reached first, counted from the first record
	// authenticated under the newer epoch.
	GracePeriod  time.Duration
	GraceRecords uint64
}

func (c Config) withDefaults() Config {
	if c.RekeyAfter == 0 {
		c.RekeyAfter = DefaultRekeyAfter
	}
	if c.GracePeriod <= 0 {
		c.GracePeriod = DefaultGracePeriod
	}
	if c.GraceRecords == 0 {
		c.GraceRecords = DefaultGraceRecords
	}
	return c
}

// sendUsage is the per-key record counter of a sender. The counter is also
// the next sequence number: TLS 1.3 starts it at zero for each key.
type sendUsage struct {
	seq        uint64
	limit      uint64 // hard: the key is exhausted at this count
	rekeyAfter uint64 // soft: RekeyNeeded from this count on
}

func (u *sendUsage) reset(k *TrafficKeys, rekeyAfter uint64) {
	u.seq = 0
	u.limit = k.limit
	u.rekeyAfter = min(rekeyAfter, k.limit)
}

// rekeyNeeded is true from the soft limit on, and also without keys, so a
// session that forgot to install any is told to.
func (u *sendUsage) rekeyNeeded() bool { return u.seq >= u.rekeyAfter }
