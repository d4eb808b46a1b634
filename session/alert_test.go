package session

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/record"
)

// establishedStream is a stream link past its handshake.
func establishedStream(tb testing.TB) *link {
	tb.Helper()
	l := newLink(tb, mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519, 1)
	l.pump()
	if !l.a.s.Established() || !l.b.s.Established() {
		tb.Fatal("handshake did not complete")
	}
	return l
}

// alertAfter hands raw to the responder, expects it to fail with want, and
// returns the code of the Alert it sent, as the initiator reads it.
func alertAfter(tb testing.TB, l *link, raw []byte, want error) AlertCode {
	tb.Helper()
	if err := l.b.s.HandleStream(l.now, raw); !errors.Is(err, want) {
		tb.Fatalf("responder: %v, want %v", err, want)
	}
	var stream []byte
	for _, b := range l.b.s.Outgoing() {
		stream = append(stream, b...)
	}
	if err := l.a.s.HandleStream(l.now, stream); err != nil {
		tb.Fatalf("initiator reading the alert: %v", err)
	}
	for _, c := range events[Closed](l.a.s) {
		var ae *AlertError
		if errors.As(c.Reason, &ae) {
			return ae.Code
		}
		tb.Fatalf("initiator closed with %v, not an alert", c.Reason)
	}
	tb.Fatal("initiator got no alert")
	return 0
}

// TestRecordErrorAlerts: docs/protocol.md 7.12. A stream record the
// record layer refuses is answered with the Alert that names the TLS
// error: record_overflow is decode_error, bad_record_mac has its own
// code, an unexpected content type is protocol_violation. None is
// internal_error, which is for our own failures.
func TestRecordErrorAlerts(t *testing.T) {
	t.Run("bad_record_mac", func(t *testing.T) {
		l := establishedStream(t)
		if err := l.a.s.SendPacket(l.now, []byte{0x45, 0, 0, 20}); err != nil {
			t.Fatal(err)
		}
		rec := l.a.s.Outgoing()[0]
		rec[len(rec)-1] ^= 1
		if got := alertAfter(t, l, rec, record.ErrBadRecordMAC); got != AlertBadRecordMAC {
			t.Fatalf("alert %d, want bad_record_mac (%d)", got, AlertBadRecordMAC)
		}
	})
	t.Run("record_overflow", func(t *testing.T) {
		l := establishedStream(t)
		hdr := []byte{23, 3, 3, 0, 0}
		binary.BigEndian.PutUint16(hdr[3:], record.MaxPlaintext+1+record.TagLen+1)
		if got := alertAfter(t, l, hdr, record.ErrRecordOverflow); got != AlertDecodeError {
			t.Fatalf("alert %d, want decode_error (%d)", got, AlertDecodeError)
		}
	})
	t.Run("alert content type", func(t *testing.T) {
		l := establishedStream(t)
		rec, err := l.a.s.writer.SealRecord(nil, record.ContentAlert, []byte{2, 40}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := alertAfter(t, l, rec, ErrBadRecord); got != AlertProtocolViolation {
			t.Fatalf("alert %d, want protocol_violation (%d)", got, AlertProtocolViolation)
		}
	})
}
