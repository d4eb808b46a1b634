package record

import "encoding/binary"

// streamBufLen holds two maximal records, so that after the complete records
// are drained there is always room for a whole further record.
const streamBufLen = 2 * MaxStreamRecordLen

// StreamReader is the receiving half of a stream connection and the
// incremental parser in front of it: bytes go in as TCP delivers them, whole
// records come out, decrypted in place in the reader's own buffer.
//
// Every decoding or authentication failure is fatal, as TLS requires: the
// reader wipes its keys and returns the same error from then on.
type StreamReader struct {
	keys  *TrafficKeys
	seq   uint64
	epoch uint64
	keyed bool
	buf   []byte
	r, w  int // buf[r:w] is received but not yet consumed
	err   error
	nonce [ivLen]byte
}

// NewStreamReader returns a reader without keys, with its fixed buffer.
func NewStreamReader() *StreamReader {
	return &StreamReader{buf: make([]byte, streamBufLen)}
}

// SetKeys switches to the peer's keys of a newer epoch; the sequence number
// restarts at zero and the old keys are wiped. Bytes already buffered but not
// yet returned by Next are decrypted with the new keys, so the caller switches
// right after Next returned the record that announced the change.
func (s *StreamReader) SetKeys(k *TrafficKeys) error {
	if err := checkNewEpoch(k, s.keyed, s.epoch); err != nil {
		return err
	}
	k.claim()
	s.keys.Wipe()
	s.keys, s.epoch, s.keyed, s.seq = k, k.epoch, true, 0
	return nil
}

// compact makes room at the end of the buffer. It moves the unconsumed bytes
// (less than a record once Next has been drained) only when the tail has no
// room for a whole record, so most reads cost no copy.
func (s *StreamReader) compact() {
	switch {
	case s.r == s.w:
		s.r, s.w = 0, 0
	case s.r > 0 && len(s.buf)-s.w < MaxStreamRecordLen:
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
}

// Buffer returns free space to read transport bytes into; report how many
// were written with Advance. It is empty only while complete records wait for
// Next. Calling it invalidates content returned by earlier Next calls.
func (s *StreamReader) Buffer() []byte {
	s.compact()
	return s.buf[s.w:]
}

// Advance accounts for n bytes written into the slice from Buffer.
func (s *StreamReader) Advance(n int) error {
	if n < 0 || n > len(s.buf)-s.w {
		return ErrInvalidArgument
	}
	s.w += n
	return nil
}

// Feed copies as much of p as fits into the buffer and returns how much that
// was. Like Buffer, it invalidates content returned by earlier Next calls.
func (s *StreamReader) Feed(p []byte) int {
	s.compact()
	n := copy(s.buf[s.w:], p)
	s.w += n
	return n
}

// Next opens the next complete record. It returns ErrNeedMore when no whole
// record is buffered yet. content aliases the reader's buffer and stays valid
// until the next Buffer or Feed call. Header errors are detected as soon as
// the five header bytes are in, before the rest of the record arrives.
func (s *StreamReader) Next() (ct ContentType, content []byte, err error) {
	if s.err != nil {
		return 0, nil, s.err
	}
	avail := s.buf[s.r:s.w]
	if len(avail) < StreamHeaderLen {
		return 0, nil, ErrNeedMore
	}
	n, err := parseStreamHeader(avail)
	if err != nil {
		return 0, nil, s.fail(err)
	}
	if len(avail) < StreamHeaderLen+n {
		return 0, nil, ErrNeedMore
	}
	k := s.keys
	if k == nil {
		return 0, nil, ErrNoKeys
	}
	if s.seq >= MaxRecords {
		return 0, nil, s.fail(ErrKeyExhausted)
	}
	rec := avail[:StreamHeaderLen+n]
	body := rec[StreamHeaderLen:]
	k.nonce(&s.nonce, s.seq)
	inner, aerr := k.aead.Open(body[:0], s.nonce[:], body, rec[:StreamHeaderLen])
	if aerr != nil {
		return 0, nil, s.fail(ErrBadRecordMAC)
	}
	s.seq++
	s.r += len(rec)
	ct, content, err = parseInner(inner)
	if err != nil {
		return 0, nil, s.fail(err)
	}
	return ct, content, nil
}

// parseStreamHeader validates a TLSCiphertext header and returns the length of
// its encrypted_record.
func parseStreamHeader(h []byte) (int, error) {
	if h[0] != outerType || binary.BigEndian.Uint16(h[1:]) != legacyVersion {
		return 0, ErrMalformed
	}
	n := int(binary.BigEndian.Uint16(h[3:]))
	// RFC 9846 allows 2^14 + 256 for any AEAD expansion up to 255 bytes. All
	// our AEADs add exactly TagLen, so anything longer than a maximal inner
	// plaintext plus the tag already overflows; say so before decrypting.
	if n > maxInner+TagLen {
		return 0, ErrRecordOverflow
	}
	// Shorter than a content type plus a tag: it cannot authenticate.
	if n < 1+TagLen {
		return 0, ErrBadRecordMAC
	}
	return n, nil
}

func (s *StreamReader) fail(err error) error {
	s.err = err
	s.keys.Wipe()
	s.keys = nil
	return err
}

// Err returns the fatal error that stopped the reader, if any.
func (s *StreamReader) Err() error { return s.err }

// Sequence is the number of records opened under the current keys.
func (s *StreamReader) Sequence() uint64 { return s.seq }

// Close wipes the keys and the buffered bytes; Next fails afterwards.
func (s *StreamReader) Close() {
	s.keys.Wipe()
	s.keys = nil
	clear(s.buf)
	s.r, s.w = 0, 0
	if s.err == nil {
		s.err = ErrNoKeys
	}
}
