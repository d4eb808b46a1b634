package session

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/current-vpn/current/session/record"
)

// Where a stream message must end its record (docs/protocol.md 7.4,
// 7.7.1): wherever the receiver switches keys right after it.

// TestEpochKeyUpdateEndsRecord: docs/protocol.md 7.7.1. Bytes after an
// EpochKeyUpdate in its record were sealed under the keys it retires; the
// receiver must refuse them rather than take them as sent under the new
// keys.
func TestEpochKeyUpdateEndsRecord(t *testing.T) {
	l := establishedStream(t)
	if err := l.a.s.Update(l.now); err != nil {
		t.Fatal(err)
	}
	l.a.s.Outgoing() // the ConnectionUpdate; the responder never sees it
	eku, err := EncodeControl(&EpochKeyUpdate{Epoch: l.a.s.Epoch() + 1})
	if err != nil {
		t.Fatal(err)
	}
	closeMsg, err := EncodeControl(&Close{})
	if err != nil {
		t.Fatal(err)
	}
	// What a peer that batches envelopes would send: the confirmation and
	// a further message in one record, both under the old keys.
	rec, err := l.b.s.writer.SealRecord(nil, record.ContentHandshake, append(eku, closeMsg...), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.a.s.HandleStream(l.now, rec); !errors.Is(err, errBadUpdate) {
		t.Fatalf("initiator: %v, want a bad update", err)
	}
}

// TestPlaintextEndsAtSwitch: docs/protocol.md 7.4. The plaintext message
// after which its sender switches to protected records must end its
// record. Bytes after it in that record are fatal; the receiver has keys
// by then, so it says so with a protected protocol_violation.
func TestPlaintextEndsAtSwitch(t *testing.T) {
	l := newLink(t, testSuites[0], 1)
	out := l.a.s.Outgoing()
	if len(out) != 1 {
		t.Fatalf("ClientHello in %d records, want 1", len(out))
	}
	rec := append(out[0], 0x00, 0x01, 0x05) // the start of another envelope
	binary.BigEndian.PutUint16(rec[3:], uint16(len(rec)-plainHeaderLen))
	if got := alertAfter(t, l, rec, ErrUnexpectedMessage); got != AlertProtocolViolation {
		t.Fatalf("alert %d, want protocol_violation (%d)", got, AlertProtocolViolation)
	}
}
