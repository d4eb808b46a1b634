package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/current-vpn/current/session/record"
)

// holdingPair runs an update of i's until r, its receiver, holds back its
// switch: r has answered, i has switched, and i's keepalive is lost. It
// returns the commit's datagrams, for duplicates.
func holdingPair(t *testing.T) (i, r *Session, cu [][]byte) {
	t.Helper()
	id := testSuites[0]
	i, r = newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	if err := i.Update(t0); err != nil {
		t.Fatal(err)
	}
	cu = i.Outgoing()
	for _, d := range cu {
		if err := r.HandleDatagram(t0, bytes.Clone(d)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range r.Outgoing() {
		if err := i.HandleDatagram(t0, d); err != nil {
			t.Fatal(err)
		}
	}
	if ka := i.Outgoing(); len(ka) != 1 || len(ka[0]) != record.DatagramOverhead {
		t.Fatalf("committer sent %d datagrams after the confirmation, want one keepalive", len(ka))
	}
	if i.waiting || i.Epoch() != r.Epoch() || !r.holding() {
		t.Fatalf("not holding: waiting %v, epochs %d %d", i.waiting, i.Epoch(), r.Epoch())
	}
	return i, r, cu
}

// sealedEpoch is the epoch in the header of the record s seals next.
func sealedEpoch(t *testing.T, s *Session, now time.Time) uint64 {
	t.Helper()
	if err := s.SendPacket(now, []byte{0x45}); err != nil {
		t.Fatal(err)
	}
	out := s.Outgoing()
	return uint64(binary.BigEndian.Uint16(out[len(out)-1][1:]))
}

// TestHoldEndsOnRetransmission: the committer's keepalive is lost and it
// sends nothing else; the receiver's retransmitted EpochKeyUpdate gets a
// keepalive in answer, which ends the hold.
func TestHoldEndsOnRetransmission(t *testing.T) {
	i, r, _ := holdingPair(t)
	e := r.Epoch()
	if got := sealedEpoch(t, r, t0); got != e-1 {
		t.Fatalf("holding receiver sealed under epoch %d, want %d", got, e-1)
	}
	at := r.NextTimeout()
	if at != t0.Add(DefaultRetransmitMin) {
		t.Fatalf("first retransmission at %v", at.Sub(t0))
	}
	if err := r.HandleTimeout(at); err != nil {
		t.Fatal(err)
	}
	eku := r.Outgoing()
	if len(eku) != 1 {
		t.Fatalf("%d datagrams retransmitted", len(eku))
	}
	if err := i.HandleDatagram(at, eku[0]); err != nil {
		t.Fatal(err)
	}
	ka := i.Outgoing()
	if len(ka) != 1 || len(ka[0]) != record.DatagramOverhead {
		t.Fatal("a repeated EpochKeyUpdate is not answered with a keepalive")
	}
	if err := r.HandleDatagram(at, ka[0]); err != nil {
		t.Fatal(err)
	}
	if r.holding() || r.dg.rtx != nil {
		t.Fatal("still holding after the keepalive")
	}
	if got := sealedEpoch(t, r, at); got != e {
		t.Fatalf("sealed under epoch %d after the switch, want %d", got, e)
	}
}

// TestHoldIsBounded: nothing of the committer's reaches the receiver any
// more. The hold ends after GiveUp, without closing the session, and an
// update asked for meanwhile starts RetransmitMin later.
func TestHoldIsBounded(t *testing.T) {
	_, r, _ := holdingPair(t)
	e := r.Epoch()
	if err := r.Update(t0); err != nil {
		t.Fatal(err)
	}
	if r.waiting || len(r.Outgoing()) != 0 {
		t.Fatal("an update started while holding")
	}
	var last time.Time
	for n := 0; r.holding(); n++ {
		if n > 100 {
			t.Fatal("the hold does not end")
		}
		last = r.NextTimeout()
		if last.IsZero() {
			t.Fatal("holding without a timer")
		}
		if err := r.HandleTimeout(last); err != nil {
			t.Fatalf("HandleTimeout: %v", err)
		}
		r.Outgoing()
	}
	if want := t0.Add(DefaultGiveUp); last != want {
		t.Fatalf("hold ended %v after it started, want %v", last.Sub(t0), DefaultGiveUp)
	}
	if !r.Established() || r.Epoch() != e {
		t.Fatal("the session did not survive the end of the hold")
	}
	if got := sealedEpoch(t, r, last); got != e {
		t.Fatalf("sealed under epoch %d after the hold, want %d", got, e)
	}
	if at := r.NextTimeout(); at != last.Add(DefaultRetransmitMin) {
		t.Fatalf("deferred update due %v after the hold, want %v", at.Sub(last), DefaultRetransmitMin)
	}
	if err := r.HandleTimeout(last.Add(DefaultRetransmitMin)); err != nil {
		t.Fatal(err)
	}
	if !r.waiting {
		t.Fatal("the deferred update did not start")
	}
}

// TestDuplicateCommitWhileHolding: the receiver's confirmation is lost;
// the committer's retransmitted ConnectionUpdate is answered again under
// the old epoch and changes nothing, and a replayed record of it is
// dropped. The second confirmation completes the update.
func TestDuplicateCommitWhileHolding(t *testing.T) {
	id := testSuites[0]
	i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
	settle(t, i, r, t0)
	if err := i.Update(t0); err != nil {
		t.Fatal(err)
	}
	cu := i.Outgoing()
	for _, d := range cu {
		if err := r.HandleDatagram(t0, bytes.Clone(d)); err != nil {
			t.Fatal(err)
		}
	}
	r.Outgoing() // the confirmation is lost
	e := r.Epoch()
	if !r.holding() {
		t.Fatal("not holding")
	}
	if err := r.HandleDatagram(t0, bytes.Clone(cu[0])); !errors.Is(err, ErrDropped) || len(r.Outgoing()) != 0 {
		t.Fatalf("replayed commit record: %v", err)
	}
	at := t0.Add(DefaultRetransmitMin)
	if err := i.HandleTimeout(at); err != nil {
		t.Fatal(err)
	}
	for _, d := range i.Outgoing() {
		if err := r.HandleDatagram(at, d); err != nil {
			t.Fatal(err)
		}
	}
	again := r.Outgoing()
	if len(again) != 1 || uint64(binary.BigEndian.Uint16(again[0][1:])) != e-1 {
		t.Fatalf("duplicate commit answered with %d datagrams, not under epoch %d", len(again), e-1)
	}
	if r.Epoch() != e || !r.holding() {
		t.Fatal("a duplicate commit changed the receiver")
	}
	if err := i.HandleDatagram(at, again[0]); err != nil {
		t.Fatal(err)
	}
	for _, d := range i.Outgoing() {
		if err := r.HandleDatagram(at, d); err != nil {
			t.Fatal(err)
		}
	}
	if i.waiting || i.Epoch() != e || r.holding() {
		t.Fatalf("update not completed: waiting %v, holding %v", i.waiting, r.holding())
	}
}

// TestRestartWhileHolding: a receiver that persists its group while it
// holds back its switch and restarts resumes from it, and data flows both
// ways; the held sender's keys are wiped when the old session closes.
func TestRestartWhileHolding(t *testing.T) {
	i, r, _ := holdingPair(t)
	held := r.dg.nextSend
	state, err := r.State()
	if err != nil {
		t.Fatal(err)
	}
	epoch := r.Epoch()
	cfg := r.cfg
	r.Close(t0)
	r.Outgoing()
	if _, err := held.Seal(nil, record.ContentApplicationData, []byte{1}, 0); err == nil {
		t.Fatal("the held sender still seals after Close")
	}
	cfg.Role, cfg.Resume, cfg.LocalIndex, cfg.PeerIndex = Initiator, state, r.LocalIndex(), i.LocalIndex()
	cfg.Rand = newSeeded(9)
	r2 := startResumed(t, cfg, i, epoch+2)
	for _, p := range [][2]*Session{{r2, i}, {i, r2}} {
		if err := p[0].SendPacket(t0, []byte{0x45, 1}); err != nil {
			t.Fatal(err)
		}
		settle(t, r2, i, t0)
		if got := dataPackets(p[1]); len(got) != 1 {
			t.Fatalf("%d packets after the resumption", len(got))
		}
	}
}
