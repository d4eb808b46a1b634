package session

import (
	"encoding/binary"
	"testing"

	"github.com/current-vpn/current/session/mls"
)

// TestMessageIDs: docs/protocol.md 7.5. A ClientHello resent after a
// CookieChallenge keeps its message_id and sender_index, and one counter
// numbers a session's messages whatever their framing.
func TestMessageIDs(t *testing.T) {
	suite := mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519
	ik, rk := newKeys(t, suite), newKeys(t, suite)
	i, r := newDatagramPair(t, suite, ik, rk)
	first := i.Outgoing()
	challenge := binary.BigEndian.AppendUint32([]byte{DatagramCookie}, i.LocalIndex())
	challenge = append(challenge, 24)
	challenge = append(challenge, make([]byte, 24)...)
	if err := i.HandleDatagram(t0, challenge); err != nil {
		t.Fatal(err)
	}
	again := i.Outgoing()
	if len(again) < len(first) {
		t.Fatalf("resent in %d datagrams, first sent in %d", len(again), len(first))
	}
	for _, d := range append(first, again...) {
		f, ok := ParseHandshakeFragment(d)
		if !ok {
			t.Fatal("unparsable hello fragment")
		}
		if f.MessageID != 0 || f.Sender != i.LocalIndex() {
			t.Fatalf("hello fragment of message %d from %#x, want message 0 from %#x", f.MessageID, f.Sender, i.LocalIndex())
		}
	}
	for _, d := range again {
		if err := r.HandleDatagram(t0, d); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, i, r, t0)
	if err := i.Update(t0); err != nil {
		t.Fatal(err)
	}
	settle(t, i, r, t0)
	// ClientHello (plaintext) and ConnectionUpdate (protected) took ids 0
	// and 1; the next message gets 2.
	if i.dg.nextID != 2 {
		t.Fatalf("initiator's next message_id %d after a hello and an update, want 2", i.dg.nextID)
	}
}
