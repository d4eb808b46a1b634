package session

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/current-vpn/current/session/record"
)

// TestSetUpdatePolicy: a running session takes a new interval at once,
// counted from the start of its epoch with jitter, and keeps it for the
// epochs that follow; bytes carried before the change still count.
func TestSetUpdatePolicy(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	if !i.Established() || !r.Established() {
		t.Fatal("not established")
	}
	// Only the initiator updates on its own.
	if err := r.SetUpdatePolicy(t0, -1, -1); err != nil {
		t.Fatal(err)
	}
	if !r.nextUpdate.IsZero() {
		t.Fatalf("disabled interval still armed for %v", r.nextUpdate)
	}
	if d := i.nextUpdate.Sub(t0); d < 9*DefaultUpdateInterval/10 || d > 11*DefaultUpdateInterval/10 {
		t.Fatalf("default update due after %v", d)
	}

	const interval = 20 * time.Second
	now := t0.Add(time.Second)
	if err := i.SetUpdatePolicy(now, interval, -1); err != nil {
		t.Fatal(err)
	}
	inWindow := func(start time.Time) {
		t.Helper()
		if d := i.nextUpdate.Sub(start); d < 9*interval/10 || d >= 11*interval/10 {
			t.Fatalf("update due %v after the epoch started, want %v ±10%%", d, interval)
		}
		if nt := i.NextTimeout(); nt.After(i.nextUpdate) {
			t.Fatalf("NextTimeout %v after the update deadline %v", nt, i.nextUpdate)
		}
	}
	inWindow(t0)
	due := i.nextUpdate
	if err := i.HandleTimeout(due.Add(-time.Millisecond)); err != nil || i.waiting {
		t.Fatalf("update before the deadline: %v, waiting %v", err, i.waiting)
	}
	settle(t, i, r, due.Add(-time.Millisecond))
	if err := i.HandleTimeout(due); err != nil || !i.waiting {
		t.Fatalf("no update at the new interval: %v", err)
	}
	settle(t, i, r, due)
	if i.Epoch() != 2 || r.Epoch() != 2 || i.waiting {
		t.Fatalf("epochs %d %d, waiting %v", i.Epoch(), r.Epoch(), i.waiting)
	}
	// The next epoch uses the new interval too.
	inWindow(due)

	// Bytes: 800 carried, then a threshold below that starts an update
	// at once.
	now = due.Add(time.Second)
	for range 2 {
		if err := i.SendPacket(now, make([]byte, 400)); err != nil {
			t.Fatal(err)
		}
	}
	if err := i.SetUpdatePolicy(now, interval, 1000); err != nil || i.waiting {
		t.Fatalf("threshold above the bytes carried: %v, waiting %v", err, i.waiting)
	}
	if err := i.SetUpdatePolicy(now, interval, 500); err != nil || !i.waiting {
		t.Fatalf("threshold below the bytes carried: %v, waiting %v", err, i.waiting)
	}
	settle(t, i, r, now)
	if i.Epoch() != 3 || r.Epoch() != 3 {
		t.Fatalf("epochs %d %d", i.Epoch(), r.Epoch())
	}
	// Zero restores the defaults.
	if err := i.SetUpdatePolicy(now, 0, 0); err != nil {
		t.Fatal(err)
	}
	if i.cfg.UpdateInterval != DefaultUpdateInterval || i.cfg.UpdateBytes != DefaultUpdateBytes {
		t.Fatalf("defaults: %v %d", i.cfg.UpdateInterval, i.cfg.UpdateBytes)
	}
	i.Close(now)
	if err := i.SetUpdatePolicy(now, interval, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed session: %v", err)
	}
}

// TestSetUpdatePolicyBeforeEstablished: a policy set during the handshake
// is the first epoch's.
func TestSetUpdatePolicyBeforeEstablished(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	if err := i.SetUpdatePolicy(t0, 30*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	settle(t, i, r, t0)
	if d := i.nextUpdate.Sub(t0); d < 27*time.Second || d >= 33*time.Second {
		t.Fatalf("update due after %v", d)
	}
}

// TestReplayCounted: a duplicate record and one left of the window are
// dropped, counted, and say why.
func TestReplayCounted(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	if err := i.SendPacket(t0, []byte{0x45}); err != nil {
		t.Fatal(err)
	}
	first := i.Outgoing()[0]
	if err := r.HandleDatagram(t0, bytes.Clone(first)); err != nil {
		t.Fatal(err)
	}
	if got := r.Stats().Replayed; got != 0 {
		t.Fatalf("replayed %d before any replay", got)
	}
	err := r.HandleDatagram(t0, bytes.Clone(first))
	if !errors.Is(err, ErrDropped) || !errors.Is(err, record.ErrReplay) {
		t.Fatalf("duplicate: %v", err)
	}
	if got := r.Stats().Replayed; got != 1 {
		t.Fatalf("replayed %d, want 1", got)
	}
	if !r.Established() {
		t.Fatal("a replay closed the session")
	}
	// Push the window past the first record.
	for range record.ReplayWindow + 1 {
		if err := i.SendPacket(t0, []byte{0x45}); err != nil {
			t.Fatal(err)
		}
	}
	out := i.Outgoing()
	if err := r.HandleDatagram(t0, out[len(out)-1]); err != nil {
		t.Fatal(err)
	}
	r.Packets()
	err = r.HandleDatagram(t0, bytes.Clone(first))
	if !errors.Is(err, record.ErrTooOld) {
		t.Fatalf("old record: %v", err)
	}
	if got := r.Stats().Replayed; got != 2 {
		t.Fatalf("replayed %d, want 2", got)
	}
}
