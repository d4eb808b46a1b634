package record

import "encoding/binary"

// Datagram record format (docs/protocol.md, "Datagram records"):
//
//	offset  size  field
//	0       1     type: DatagramTypeRecord (0x80)
//	1       2     epoch: low 16 bits of the MLS epoch
//	3       4     receiver index, chosen by the receiver
//	7       8     sequence number, below 2^62
//	15      n     AEAD(TLSInnerPlaintext) || 16-byte tag
//
// The 15 header bytes are the additional data. With the inner content type
// byte and the tag, an unpadded record adds 32 bytes to the payload.
const (
	DatagramHeaderLen = 15
	// DatagramOverhead is what an unpadded datagram record adds to its
	// payload: header, inner content type and tag.
	DatagramOverhead = DatagramHeaderLen + 1 + TagLen
	// MaxDatagramLen is the largest datagram record: a maximal inner
	// plaintext (content and padding within 2^14 + 1 bytes).
	MaxDatagramLen = DatagramHeaderLen + maxInner + TagLen

	// DatagramTypeRecord marks a record protected with traffic keys. Types
	// 0x81-0xff are reserved for later protected formats.
	DatagramTypeRecord = 0x80
	// Types MinControlType..MaxControlType are control datagrams of the
	// session layer (handshake messages, cookies), defined by later issues;
	// the record layer only reserves the range. Type 0 is never valid.
	MinControlType = 0x01
	MaxControlType = 0x7f

	offEpoch = 1
	offIndex = 3
	offSeq   = 7
)

// DatagramReceiverIndex returns the receiver index of a protected datagram so
// the session layer can find the session before any cryptography, whatever
// address the datagram came from.
func DatagramReceiverIndex(b []byte) (uint32, bool) {
	if len(b) < DatagramHeaderLen || b[0] != DatagramTypeRecord {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[offIndex:]), true
}

// DatagramSender seals datagram records to one peer.
type DatagramSender struct {
	keys      *TrafficKeys
	use       sendUsage
	cfg       Config
	epoch     uint64
	keyed     bool
	peerIndex uint32
	// ticket is Seal's, kept here so that its nonce does not escape.
	ticket SealTicket
}

// NewDatagramSender returns a sender addressing the peer's receiver index,
// without keys; SetKeys arms it.
func NewDatagramSender(peerIndex uint32, cfg Config) *DatagramSender {
	return &DatagramSender{peerIndex: peerIndex, cfg: cfg.withDefaults()}
}

// SetKeys switches to our keys of a newer epoch, restarting the sequence
// number at zero and wiping the old keys: the sender never needs them again
// (the receiver keeps its own copy of the previous epoch for reordering).
func (s *DatagramSender) SetKeys(k *TrafficKeys) error {
	if err := checkNewEpoch(k, s.keyed, s.epoch); err != nil {
		return err
	}
	k.claim()
	s.keys.Wipe()
	s.keys, s.epoch, s.keyed = k, k.epoch, true
	s.use.reset(k, s.cfg.RekeyAfter)
	return nil
}

// Seal appends one datagram record carrying payload to dst and returns the
// extended slice, like append. To seal in place, read the payload to
// dst[len(dst)+DatagramHeaderLen:] and give dst capacity for
// DatagramOverhead + padding bytes more than the payload: then nothing is
// copied and nothing allocated. On error dst is returned unchanged.
func (s *DatagramSender) Seal(dst []byte, ct ContentType, payload []byte, padding int) ([]byte, error) {
	if s.use.seq < s.use.limit {
		// A bad length must not use up a sequence number.
		if _, err := innerLen(ct, len(payload), padding); err != nil {
			return dst, err
		}
	}
	var err error
	if s.ticket, err = s.Reserve(); err != nil {
		return dst, err
	}
	whole, err := s.ticket.Seal(dst, ct, payload, padding)
	if s.use.seq == s.use.limit {
		s.keys.Wipe()
		s.keys = nil
	}
	return whole, err
}

// RekeyNeeded reports that the current keys passed Config.RekeyAfter records
// (or that there are none): time to start an MLS update, long before Seal
// fails with ErrKeyExhausted.
func (s *DatagramSender) RekeyNeeded() bool { return s.use.rekeyNeeded() }

// Sequence is the number of records sealed under the current keys, which is
// also the sequence number of the next one.
func (s *DatagramSender) Sequence() uint64 { return s.use.seq }

// Epoch is the epoch of the current keys; false before the first SetKeys.
func (s *DatagramSender) Epoch() (uint64, bool) { return s.epoch, s.keyed }

// Close wipes the keys; the sender cannot seal afterwards.
func (s *DatagramSender) Close() {
	s.keys.Wipe()
	s.keys = nil
	s.use = sendUsage{}
}
