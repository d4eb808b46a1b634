package record

import (
	"time"
)

// recvEpoch is one epoch's receive keys with their own replay window:
// sequence numbers restart at zero in every epoch, so windows cannot be
// shared.
type recvEpoch struct {
	keys      *TrafficKeys
	epoch     uint64
	wire      uint16 // low epoch bits as carried in the header
	accepted  uint64 // records authenticated
	failures  uint64 // records that failed authentication
	exhausted bool   // retired by the forgery limit rather than by age
	window    replayWindow
}

func (e *recvEpoch) live() bool { return e.keys != nil }

func (e *recvEpoch) install(k *TrafficKeys) {
	*e = recvEpoch{keys: k, epoch: k.epoch, wire: uint16(k.epoch)}
	// The window array is zeroed by the struct assignment above.
}

func (e *recvEpoch) retire() {
	e.keys.Wipe()
	e.keys = nil
	// A retired epoch opens nothing more; its ring goes back to the heap
	// instead of waiting in the slot for the epoch after next.
	e.window = replayWindow{}
}

// DatagramReceiver opens datagram records addressed to one local receiver
// index. It holds at most two epochs: the current one, and the previous one
// for a grace period so that datagrams reordered across a key change are not
// lost. Every error is a drop of that datagram only; the receiver keeps
// working, and its state (windows, grace period) changes only for datagrams
// that authenticate.
type DatagramReceiver struct {
	slots [2]recvEpoch
	cur   int // index of the current epoch in slots; the other is previous
	index uint32
	cfg   Config
	epoch uint64 // newest epoch installed
	keyed bool
	// The previous epoch's grace period starts with the first record that
	// authenticates under the current epoch: only then has the peer
	// demonstrably switched. Before that the previous epoch is still the
	// one the peer sends with (the two-party profile switches the two
	// directions at different times), and must not time out.
	graceOn    bool
	graceStart time.Duration
	graceCount uint64
	// ticket is Open's, kept here so that its nonce does not escape.
	ticket OpenTicket
}

// NewDatagramReceiver returns a receiver for datagrams carrying our receiver
// index, without keys; SetKeys arms it.
func NewDatagramReceiver(localIndex uint32, cfg Config) *DatagramReceiver {
	return &DatagramReceiver{index: localIndex, cfg: cfg.withDefaults()}
}

// SetKeys installs the peer's keys of a newer epoch. The current epoch becomes
// the previous one (whose grace period starts once the new epoch is in use);
// an older previous epoch is wiped at once.
//
// Keys for the current epoch number may replace the current keys as long as
// no record authenticated under them: the two-party profile lets a responder
// drop its pending commit for the initiator's, and both lead to the same epoch
// number with different keys.
func (r *DatagramReceiver) SetKeys(k *TrafficKeys) error {
	if k == nil || k.claimed || k.aead == nil {
		return ErrInvalidArgument
	}
	cur := &r.slots[r.cur]
	if r.keyed && k.epoch == r.epoch && cur.live() && cur.accepted == 0 {
		k.claim()
		cur.retire()
		cur.install(k)
		return nil
	}
	if r.keyed && k.epoch <= r.epoch {
		return ErrEpochOrder
	}
	k.claim()
	r.slots[r.cur^1].retire()
	if cur.live() && cur.wire == uint16(k.epoch) {
		// The header could not tell the two apart; keep only the new one.
		cur.retire()
	}
	r.cur ^= 1
	r.slots[r.cur].install(k)
	r.epoch, r.keyed = k.epoch, true
	r.graceOn, r.graceCount = false, 0
	return nil
}

// Open authenticates and decrypts one datagram record in place and returns its
// content type and content, which alias b. now is a monotonic time from an
// origin of the caller's choosing; it only drives the grace period. b's
// contents are undefined after a failed Open.
//
// The checks run cheapest first — header fields, epoch, replay window — and
// only then the AEAD, so replays and stale datagrams cost no cryptography. The
// window is updated only after the AEAD accepted the record, so forgeries
// cannot move it.
func (r *DatagramReceiver) Open(b []byte, now time.Duration) (ContentType, []byte, error) {
	var err error
	if r.ticket, err = r.Prepare(b, now); err != nil {
		return 0, nil, err
	}
	r.ticket.Decrypt(b)
	ct, content, err := r.Settle(&r.ticket, now)
	r.ticket.inner = nil // the caller's buffer, not ours to keep
	return ct, content, err
}

// advanceGrace counts a record of the current epoch against the previous
// epoch's grace period and retires the previous epoch once it is over.
// The caller checks that there is a previous epoch, which keeps the steady
// state (no epoch change in progress) free of the call.
func (r *DatagramReceiver) advanceGrace(now time.Duration) {
	prev := &r.slots[r.cur^1]
	if !r.graceOn {
		r.graceOn, r.graceStart = true, now
	}
	r.graceCount++
	if r.graceCount >= r.cfg.GraceRecords || now-r.graceStart >= r.cfg.GracePeriod {
		prev.retire()
	}
}

// epochError tells apart an epoch whose keys hit the forgery limit from one
// we simply do not hold.
func (r *DatagramReceiver) epochError(wire uint16) error {
	for i := range r.slots {
		if e := &r.slots[i]; e.exhausted && e.wire == wire {
			return ErrKeyExhausted
		}
	}
	return ErrUnknownEpoch
}

// Expire wipes the previous epoch's keys if its grace period is over. Open
// does this lazily; a session calls Expire from its timer so that keys do not
// outlive the grace period on an idle link. It reports whether keys were
// wiped.
func (r *DatagramReceiver) Expire(now time.Duration) bool {
	prev := &r.slots[r.cur^1]
	if prev.live() && r.graceOn && now-r.graceStart >= r.cfg.GracePeriod {
		prev.retire()
		return true
	}
	return false
}

// Epochs reports the epochs whose keys are held: the current one and, during
// its grace period, the previous one.
func (r *DatagramReceiver) Epochs() (current uint64, hasCurrent bool, previous uint64, hasPrevious bool) {
	c, p := &r.slots[r.cur], &r.slots[r.cur^1]
	return c.epoch, c.live(), p.epoch, p.live()
}

// RekeyNeeded reports that so many forged records failed under the current
// keys that the session should move to a new epoch before the forgery limit
// retires them.
func (r *DatagramReceiver) RekeyNeeded() bool {
	return r.slots[r.cur].failures >= forgeryRekeyHint
}

// Close wipes all keys; Open fails afterwards.
func (r *DatagramReceiver) Close() {
	for i := range r.slots {
		r.slots[i].retire()
	}
}
