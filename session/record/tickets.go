package record

import (
	"encoding/binary"
	"time"
)

// Tickets split datagram protection into the part that needs the sender's
// or receiver's state (sequence numbers, epochs, replay windows), which
// one goroutine owns, and the AEAD itself, which may run anywhere. A batch
// is handled in three steps: the owner reserves a ticket per record, any
// number of goroutines seal or open with their tickets concurrently, and
// the owner settles the receive tickets in order.
//
// The keys a ticket refers to stay valid only while the owner makes no
// other call on the sender or receiver: SetKeys, Close and an exhausted
// limit wipe them. So the owner must wait for every Seal or Decrypt of a
// batch before it touches the sender or receiver again (fork and join).

// SealTicket is one reserved datagram record: its keys and its sequence
// number.
type SealTicket struct {
	keys      *TrafficKeys
	epoch     uint16
	peerIndex uint32
	seq       uint64
	// nonce lives in the ticket, not on the stack: a slice of a local
	// passed to the AEAD interface would escape and allocate.
	nonce [ivLen]byte
}

// Reserve takes the next sequence number for a record that the returned
// ticket seals. Records are numbered in the order of Reserve calls,
// whatever order they are sealed in. Errors are those of Seal.
func (s *DatagramSender) Reserve() (SealTicket, error) {
	if s.use.seq >= s.use.limit {
		if s.use.limit == 0 {
			return SealTicket{}, ErrNoKeys
		}
		// Reserve leaves the wiping of exhausted keys to this call, as
		// an outstanding ticket may still be using them.
		s.keys.Wipe()
		s.keys = nil
		return SealTicket{}, ErrKeyExhausted
	}
	t := SealTicket{keys: s.keys, epoch: uint16(s.epoch), peerIndex: s.peerIndex, seq: s.use.seq}
	s.use.seq++
	return t, nil
}

// Seal is DatagramSender.Seal with the ticket's keys and sequence number;
// it may run on any goroutine, concurrently with other tickets' Seal. A
// ticket seals one record; on error (a bad content type or length) its
// sequence number is simply never sent.
func (t *SealTicket) Seal(dst []byte, ct ContentType, payload []byte, padding int) ([]byte, error) {
	n := len(payload)
	inner, err := innerLen(ct, n, padding)
	if err != nil {
		return dst, err
	}
	whole, d := placeAt(dst, DatagramHeaderLen+inner+TagLen)
	body := d[DatagramHeaderLen:]
	movePayload(body, payload)
	finishInner(body[:inner], n, ct)
	d[0] = DatagramTypeRecord
	binary.BigEndian.PutUint16(d[offEpoch:], t.epoch)
	binary.BigEndian.PutUint32(d[offIndex:], t.peerIndex)
	binary.BigEndian.PutUint64(d[offSeq:], t.seq)
	t.keys.nonce(&t.nonce, t.seq)
	t.keys.aead.Seal(body[:0], t.nonce[:], body[:inner], d[:DatagramHeaderLen])
	return whole, nil
}

// OpenTicket is one received record that passed the checks that need no
// cryptography: header, epoch, replay window.
type OpenTicket struct {
	keys  *TrafficKeys
	slot  int
	seq   uint64
	nonce [ivLen]byte
	inner []byte
	err   error // of Decrypt
}

// Prepare runs Open's checks on b that need no cryptography and returns a
// ticket to decrypt it with; errors are Open's.
func (r *DatagramReceiver) Prepare(b []byte, now time.Duration) (OpenTicket, error) {
	if len(b) < DatagramHeaderLen+1+TagLen || b[0] != DatagramTypeRecord {
		return OpenTicket{}, ErrMalformed
	}
	if len(b) > MaxDatagramLen {
		return OpenTicket{}, ErrRecordOverflow
	}
	if binary.BigEndian.Uint32(b[offIndex:]) != r.index {
		return OpenTicket{}, ErrUnknownReceiver
	}
	seq := binary.BigEndian.Uint64(b[offSeq:])
	if seq >= MaxRecords {
		return OpenTicket{}, ErrMalformed
	}
	wire := binary.BigEndian.Uint16(b[offEpoch:])
	slot := r.cur
	e := &r.slots[slot]
	if e.wire != wire || !e.live() {
		slot ^= 1
		e = &r.slots[slot]
		if e.wire != wire || !e.live() {
			return OpenTicket{}, r.epochError(wire)
		}
		if r.graceOn && now-r.graceStart >= r.cfg.GracePeriod {
			e.retire()
			return OpenTicket{}, ErrUnknownEpoch
		}
	}
	if err := e.window.check(seq); err != nil {
		return OpenTicket{}, err
	}
	return OpenTicket{keys: e.keys, slot: slot, seq: seq}, nil
}

// Decrypt authenticates and decrypts b, the datagram Prepare checked, in
// place. It may run on any goroutine, concurrently with other tickets'
// Decrypt; its outcome is kept for Settle.
func (t *OpenTicket) Decrypt(b []byte) {
	body := b[DatagramHeaderLen:]
	t.keys.nonce(&t.nonce, t.seq)
	t.inner, t.err = t.keys.aead.Open(body[:0], t.nonce[:], body, b[:DatagramHeaderLen])
}

// Settle records the outcome of a decrypted ticket, in the order the
// datagrams arrived, and returns what Open would have: the content type
// and content, or the error. It checks the replay window again (a batch
// may carry two copies of one record) and drops a record whose keys were
// replaced since Prepare.
func (r *DatagramReceiver) Settle(t *OpenTicket, now time.Duration) (ContentType, []byte, error) {
	e := &r.slots[t.slot]
	if e.keys != t.keys || t.keys == nil {
		return 0, nil, ErrUnknownEpoch
	}
	// The window first, as in Open: a forged copy of a record accepted
	// earlier in the batch is a replay, and costs no forgery count.
	if err := e.window.check(t.seq); err != nil {
		return 0, nil, err
	}
	if t.err != nil {
		e.failures++
		if e.failures >= forgeryLimit {
			e.retire()
			e.exhausted = true
		}
		return 0, nil, ErrBadRecordMAC
	}
	e.window.mark(t.seq)
	e.accepted++
	if t.slot == r.cur && r.slots[r.cur^1].keys != nil {
		r.advanceGrace(now)
	}
	return parseInner(t.inner)
}
