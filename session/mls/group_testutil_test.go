package mls

import (
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func marshalMessage(m *MLSMessage) ([]byte, error) { return wire.Marshal(m) }

func decodeMessageTB(t testing.TB, b []byte) *MLSMessage {
	t.Helper()
	var m MLSMessage
	if err := wire.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding message: %v", err)
	}
	return &m
}
