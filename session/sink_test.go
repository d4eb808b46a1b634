package session

import (
	"bytes"
	"testing"
)

// TestPacketSink: with a sink, stream packets reach it in order, across
// epoch updates and TCP-like chunking, and Packets stays empty; the sink's
// slice is only valid during the call, so what it keeps is a copy.
func TestPacketSink(t *testing.T) {
	l := newLink(t, testSuites[0], 7)
	l.pump()
	var got [][]byte
	l.b.s.SetPacketSink(func(pkt []byte) { got = append(got, bytes.Clone(pkt)) })
	for round := range 4 {
		l.send(l.a, 50)
		if round%2 == 1 {
			mustUpdate(t, l.a)
		}
		l.pump()
	}
	if len(got) != len(l.a.sent) {
		t.Fatalf("sink got %d packets, %d sent", len(got), len(l.a.sent))
	}
	for i := range got {
		if !bytes.Equal(got[i], l.a.sent[i]) {
			t.Fatalf("packet %d altered or out of order", i)
		}
	}
	if l.a.next != 0 {
		t.Fatalf("%d packets went to Packets despite the sink", l.a.next)
	}
	if l.b.s.Epoch() < 3 {
		t.Fatalf("epoch %d: the updates did not happen", l.b.s.Epoch())
	}
}
