package session

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/current-vpn/current/session/record"
)

// Before the first epoch's keys exist, control messages travel in TLS 1.3
// TLSPlaintext records (RFC 8446 section 5.1) of type handshake. The record
// package only implements protected records, so this file frames the two
// plaintext messages of the handshake (one each way) itself; after them
// every byte on the stream belongs to a protected record.
const (
	plainHeaderLen    = 5
	contentHandshake  = byte(record.ContentHandshake)
	legacyRecordVer   = 0x0303
	maxPlainFragment  = record.MaxPlaintext
	maxBufferedStream = maxControlLen + plainHeaderLen*(maxControlLen/maxPlainFragment+1)
)

// ErrBadRecord: the peer sent a record the session cannot accept.
var ErrBadRecord = errors.New("session: bad record")

// appendPlainRecords appends msg split into plaintext handshake records. TLS
// lets a handshake message span records, which a post-quantum ServerHello
// needs.
func appendPlainRecords(out [][]byte, msg []byte) [][]byte {
	for len(msg) > 0 {
		n := min(len(msg), maxPlainFragment)
		rec := make([]byte, plainHeaderLen, plainHeaderLen+n)
		rec[0] = contentHandshake
		binary.BigEndian.PutUint16(rec[1:], legacyRecordVer)
		binary.BigEndian.PutUint16(rec[3:], uint16(n))
		out = append(out, append(rec, msg[:n]...))
		msg = msg[n:]
	}
	return out
}

// nextPlainRecord splits the first complete plaintext record off b. It
// returns n == 0 when more bytes are needed.
func nextPlainRecord(b []byte) (fragment []byte, n int, err error) {
	if len(b) < plainHeaderLen {
		return nil, 0, nil
	}
	if b[0] != contentHandshake || binary.BigEndian.Uint16(b[1:]) != legacyRecordVer {
		return nil, 0, fmt.Errorf("%w: plaintext record type %d version %#04x", ErrBadRecord, b[0], binary.BigEndian.Uint16(b[1:]))
	}
	l := int(binary.BigEndian.Uint16(b[3:]))
	if l == 0 || l > maxPlainFragment {
		return nil, 0, fmt.Errorf("%w: plaintext record of %d bytes", ErrBadRecord, l)
	}
	if len(b) < plainHeaderLen+l {
		return nil, 0, nil
	}
	return b[plainHeaderLen : plainHeaderLen+l], plainHeaderLen + l, nil
}

// appendProtected seals msg into protected records of content type ct.
func appendProtected(out [][]byte, w *record.StreamWriter, ct record.ContentType, msg []byte) ([][]byte, error) {
	for {
		n := min(len(msg), record.MaxPlaintext)
		rec, err := w.SealRecord(make([]byte, 0, record.StreamOverhead+n), ct, msg[:n], 0)
		if err != nil {
			return out, err
		}
		out = append(out, rec)
		msg = msg[n:]
		if len(msg) == 0 {
			return out, nil
		}
	}
}

// handshakeBuffer reassembles control envelopes from handshake record
// contents, which may split or join envelopes arbitrarily.
type handshakeBuffer struct{ buf []byte }

func (h *handshakeBuffer) add(b []byte) error {
	if len(h.buf)+len(b) > maxBufferedStream {
		return ErrTooLarge
	}
	h.buf = append(h.buf, b...)
	return nil
}

// next returns the next complete envelope, or nil if none is complete.
func (h *handshakeBuffer) next() ([]byte, error) {
	n, err := controlLen(h.buf)
	if err != nil || n == 0 || n > len(h.buf) {
		return nil, err
	}
	msg := h.buf[:n:n]
	h.buf = h.buf[n:]
	if len(h.buf) == 0 {
		h.buf = nil
	}
	return msg, nil
}

func (h *handshakeBuffer) pending() bool { return len(h.buf) > 0 }
