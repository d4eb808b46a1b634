package record

import "encoding/binary"

// Stream records are TLS 1.3 TLSCiphertext records, byte for byte (RFC 9846
// section 5.2): the outer header always says application_data and TLS 1.2,
// the real content type travels encrypted at the end of TLSInnerPlaintext,
// and the sequence number is implicit.
const (
	// StreamHeaderLen is the TLSCiphertext header: opaque_type,
	// legacy_record_version, length. It is the AEAD's additional data.
	StreamHeaderLen = 5
	// MaxStreamRecordLen is the largest record a peer may send: the header
	// plus TLS 1.3's 2^14 + 256 bytes of encrypted_record.
	MaxStreamRecordLen = StreamHeaderLen + MaxPlaintext + 256
	// StreamOverhead is the growth of an unpadded stream record: header,
	// inner content type and tag.
	StreamOverhead = StreamHeaderLen + 1 + TagLen

	outerType     = 23 // application_data
	legacyVersion = 0x0303
)

// StreamWriter is the sending half of a stream connection, the counterpart of
// crypto/tls's halfConn: the current keys and the implicit sequence number.
type StreamWriter struct {
	keys  *TrafficKeys
	use   sendUsage
	cfg   Config
	epoch uint64
	keyed bool // an epoch was installed at least once
	nonce [ivLen]byte
}

// NewStreamWriter returns a writer without keys; SetKeys arms it.
func NewStreamWriter(cfg Config) *StreamWriter {
	return &StreamWriter{cfg: cfg.withDefaults()}
}

// SetKeys switches to the keys of a newer epoch. The sequence number restarts
// at zero (RFC 9846 5.3) and the replaced keys are wiped. The writer owns k
// from now on. The caller must switch at a record boundary: records sealed
// before the call use the old keys, all records after it the new ones.
func (w *StreamWriter) SetKeys(k *TrafficKeys) error {
	if err := checkNewEpoch(k, w.keyed, w.epoch); err != nil {
		return err
	}
	k.claim()
	w.keys.Wipe()
	w.keys, w.epoch, w.keyed = k, k.epoch, true
	w.use.reset(k, w.cfg.RekeyAfter)
	return nil
}

// checkNewEpoch accepts keys that were never installed and belong to an epoch
// after the current one, so a sequence number space never restarts under a
// key that was already used.
func checkNewEpoch(k *TrafficKeys, keyed bool, epoch uint64) error {
	if k == nil || k.claimed || k.aead == nil {
		return ErrInvalidArgument
	}
	if keyed && k.epoch <= epoch {
		return ErrEpochOrder
	}
	return nil
}

// SealRecord appends one protected record to dst and returns the extended
// slice, like append. It works in place: if payload already sits at
// dst[len(dst)+StreamHeaderLen:] and dst has capacity for the tail
// (StreamOverhead + padding more bytes), nothing is copied and nothing is
// allocated. padding zero bytes are added inside the encryption to hide the
// content length. On error dst is returned unchanged.
func (w *StreamWriter) SealRecord(dst []byte, ct ContentType, payload []byte, padding int) ([]byte, error) {
	if w.use.seq >= w.use.limit {
		if w.use.limit == 0 {
			return dst, ErrNoKeys
		}
		return dst, ErrKeyExhausted
	}
	k := w.keys
	n := len(payload)
	inner, err := innerLen(ct, n, padding)
	if err != nil {
		return dst, err
	}
	whole, rec := placeAt(dst, StreamHeaderLen+inner+TagLen)
	body := rec[StreamHeaderLen:]
	movePayload(body, payload)
	finishInner(body[:inner], n, ct)
	rec[0] = outerType
	binary.BigEndian.PutUint16(rec[1:], legacyVersion)
	binary.BigEndian.PutUint16(rec[3:], uint16(inner+TagLen))
	k.nonce(&w.nonce, w.use.seq)
	k.aead.Seal(body[:0], w.nonce[:], body[:inner], rec[:StreamHeaderLen])
	w.use.seq++
	if w.use.seq == w.use.limit {
		// The key may never seal again; do not keep it around.
		w.keys.Wipe()
		w.keys = nil
	}
	return whole, nil
}

// RekeyNeeded reports that the current keys passed Config.RekeyAfter records
// (or that there are none): the session should start an MLS update now, well
// before SealRecord fails with ErrKeyExhausted.
func (w *StreamWriter) RekeyNeeded() bool { return w.use.rekeyNeeded() }

// Sequence is the number of records sealed under the current keys, which is
// also the sequence number of the next one.
func (w *StreamWriter) Sequence() uint64 { return w.use.seq }

// Close wipes the keys; the writer cannot seal afterwards.
func (w *StreamWriter) Close() {
	w.keys.Wipe()
	w.keys = nil
	w.use = sendUsage{}
}
